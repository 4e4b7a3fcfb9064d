"""`blscfg` (Fedora/RHEL's commands/blscfg.c): BLS entries on `$root` become ordinary menu entries.

The entries' text comes from `pvboot.config.bls` (blscfg.c's generation rules); their commands run in
the interpreter like any other entry's, so `$root`, `linux` and `initrd` behave exactly as in grub.cfg.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pvboot.config.bls import BlscfgState, blscfg_command, blscfg_menuentry
from pvboot.config.grub2.context import CommandContext, fail
from pvboot.config.grub2.extcmd import Command
from pvboot.config.grub2.options import Parsed
from pvboot.config.grub2.words import quote_word
from pvboot.errors import GuestDataError, NotFoundError
from pvboot.menu import Entry


class _Env(Mapping[str, str]):
    """The variables as a read-only mapping."""

    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx

    def __getitem__(self, name: str) -> str:
        value = self.ctx.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def run_blscfg(ctx: CommandContext, args: list[str]) -> None:
    """Add the menu entries `blscfg ARGS` adds, reading the entries from `$root`'s volume."""
    root = (ctx.get("root") or ctx.volume).strip("()")
    if args and args[0].startswith("("):
        root = args[0][1 : args[0].index(")")] if ")" in args[0] else root
    if ctx.view.find_volume(root) is None:
        raise NotFoundError(f"blscfg: no such device ({root})")
    state = ctx.bls_state
    if state is None:
        state = ctx.bls_state = BlscfgState()
    env = _Env(ctx)
    for entry in blscfg_command(state, ctx.config_files(root), args, env):
        generated = blscfg_menuentry(entry.handle, env)
        if generated is None:
            continue
        params = [generated.title, *generated.extra_args]
        prefix = "setparams " + " ".join(quote_word(a) for a in params) + "\n"
        ctx.add_entry(
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


def blscfg(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    try:
        run_blscfg(ctx, opts.args)
    except GuestDataError as exc:
        return fail(ctx, str(exc))
    return 0


COMMANDS = [Command("blscfg", blscfg)]
