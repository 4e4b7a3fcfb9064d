"""GRUB's command line (`c` in the menu, F2 in the editor): `grub> ` lines run by the guest's interpreter.

Each line goes to the confined child (`{"op": "command"}`), which runs it in the menu's environment
(what a line sets persists to the next); its output is shown cleaned. `boot`, once `linux` (and `initrd`)
loaded something, boots it through the same checks and extraction as a menu entry. Esc leaves.
"""

from __future__ import annotations

from typing import Any

from pvboot.errors import PvbootError
from pvboot.tui.tty import Tty

BANNER = (
    "Minimal BASH-like line editing is supported. Commands run in the guest's GRUB environment "
    "(ls, set, echo, cat, linux, initrd, boot, ...). ESC at any time exits."
)


class CommandLine:
    def __init__(self, tty: Tty, session: Any) -> None:
        self.tty = tty
        self.session = session  # tui.console.Session: ask() and boot()
        self.history: list[str] = []

    def run(self) -> dict[str, Any] | None:
        """Read and run lines until Esc (None) or until a `boot` succeeds (the child's boot reply)."""
        tty = self.tty
        tty.clear()
        tty.write(f" {BANNER}\n\n")
        while True:
            line = tty.read_line("grub> ", history=self.history)
            if line is None:
                return None
            if not line.strip():
                continue
            self.history.append(line)
            del self.history[:-100]
            try:
                result = self.session.ask({"op": "command", "line": line})
            except PvbootError as exc:
                if self.session.child_gone():
                    raise
                tty.write(f"error: {exc}.\n")
                continue
            output = str(result.get("output", ""))
            tty.write(output)
            if output and not output.endswith("\n"):
                tty.write("\n")
            if result.get("boot"):
                reply: dict[str, Any] | None = self.session.boot_request(
                    {"op": "boot", "console": True}, "command line", tty
                )
                if reply is not None:
                    return reply
