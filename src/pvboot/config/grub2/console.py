"""What the console menu needs from a GRUB 2 session: run an edited entry, run a command line.

GRUB's editor runs the edited text as the entry's body, in the environment the menu had; GRUB's command
line (`c`) runs commands one line at a time in that environment, keeping what they set, and `boot`
boots whatever `linux`/`initrd` loaded. Output of `echo`, `ls`, `cat` is collected for the screen.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pvboot.config.grub2.commands import BootNow
from pvboot.menu import BootSpec

if TYPE_CHECKING:
    from pvboot.config.grub2.session import Grub2Session

MAX_OUTPUT = 64 * 1024


@dataclass
class CommandResult:
    """A command line's screen output, its status, and what `boot` would boot (None: not booting)."""

    output: str
    status: int
    boot: BootSpec | None = None


@dataclass
class ConsoleState:
    """The command line's own loader state: what `linux`/`initrd` typed there have loaded."""

    spec: BootSpec = field(default_factory=BootSpec)
    started: bool = False


def run_edited(session: Grub2Session, path: list[int], source: str) -> BootSpec:
    """Run `source` (the editor's text) as the body of the entry at `path` would run."""
    session._restore()
    try:
        entries = session.top
        for index in path[:-1]:
            entries = session._enter_submenu(entries[index])
        title = entries[path[-1]].title if path and 0 <= path[-1] < len(entries) else ""
        spec = BootSpec()
        session.recorder = spec
        session.menus.append([])  # a menuentry in the edited text does not join the real menu
        with contextlib.suppress(BootNow):
            session.interp.run_new_scope(source, [title], filename="<edited entry>")
        return spec
    finally:
        session.recorder = None
        session._restore()


def run_command(session: Grub2Session, state: ConsoleState, line: str) -> CommandResult:
    """One line typed at GRUB's command line; the environment it changes persists to the next line."""
    if not state.started:
        session._restore()
        state.started = True
    out: list[str] = []
    size = [0]

    def collect(text: str) -> None:
        if size[0] < MAX_OUTPUT:
            out.append(text[: MAX_OUTPUT - size[0]])
            size[0] += len(text)

    session.interp.console = collect
    session.recorder = state.spec
    session.menus.append([])  # menuentry typed at the command line stays out of the real menu
    booting = False
    try:
        status = session.interp.run_source(line, "<command line>")
    except BootNow:
        status, booting = 0, True
    finally:
        session.interp.console = None
        session.recorder = None
        session.menus.pop()
    errors = state.spec.errors
    if errors:
        collect("".join(f"error: {e}.\n" for e in errors))
        state.spec.errors = []
    return CommandResult("".join(out), status, state.spec if booting else None)
