"""GRUB's `blscfg` command (Fedora/RHEL): BLS entries on `$root` become ordinary menu entries.

The entries' text comes from `pvboot.config.bls` (blscfg.c's generation rules); their commands run in
the interpreter like any other entry's, so `$root`, `linux` and `initrd` behave exactly as in grub.cfg.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from pvboot.config.bls import BlscfgState, blscfg_command, blscfg_menuentry
from pvboot.config.flatreaders import VolumeFiles
from pvboot.errors import NotFoundError
from pvboot.menu import Entry

if TYPE_CHECKING:
    from pvboot.config.grub2.session import Grub2Session


class _Env(Mapping[str, str]):
    """The interpreter's variables as a read-only mapping."""

    def __init__(self, session: Grub2Session) -> None:
        self.session = session

    def __getitem__(self, name: str) -> str:
        value = self.session.interp.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def run_blscfg(session: Grub2Session, args: list[str]) -> None:
    """Add the menu entries `blscfg ARGS` adds, reading the entries from `$root`'s volume."""
    root = (session.interp.get("root") or session.volume).strip("()")
    if args and args[0].startswith("("):
        root = args[0][1 : args[0].index(")")] if ")" in args[0] else root
    if session.view.find_volume(root) is None:
        raise NotFoundError(f"blscfg: no such device ({root})")
    state = session.bls_state
    if state is None:
        state = session.bls_state = BlscfgState()
    env = _Env(session)
    files = VolumeFiles(session.view, root, session.limits)
    for entry in blscfg_command(state, files, args, env):
        generated = blscfg_menuentry(entry.handle, env)
        if generated is None:
            continue
        params = [generated.title, *generated.extra_args]
        prefix = "setparams " + " ".join("'" + a.replace("'", "'\\''") + "'" for a in params) + "\n"
        session.add_entry(
            Entry(
                title=generated.title,
                id=generated.id,
                classes=generated.classes,
                users=generated.users,
                unrestricted=generated.users is None,
                hotkey=generated.hotkey,
                source=prefix + generated.source,
                handle=(generated.source, params),
            )
        )
