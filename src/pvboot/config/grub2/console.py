"""What the console menu gets from a GRUB 2 session's command line (`Grub2Session.command`).

GRUB's editor runs the edited text as the entry's body, in the environment the menu had; GRUB's command
line (`c`) runs commands one line at a time in that environment, keeping what they set, and `boot`
boots whatever `linux`/`initrd` loaded. Output of `echo`, `ls`, `cat` is collected for the screen (at
most GRUB_MAX_CONSOLE_OUTPUT characters a line).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvboot.menu import BootSpec


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
