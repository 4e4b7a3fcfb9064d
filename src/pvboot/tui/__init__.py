"""The console menu on the terminal libxl gives the bootloader (`xl create -c`): GRUB 2's text menu,
its entry editor, its command line, its countdown and its password checks, drawn with curses.

The parent runs it; every guest byte it shows came back from the confined child as JSON and is cleaned
before it reaches the terminal (tui.text). `interact` returns the child's boot reply, exactly what the
non-interactive path gets, so the same checks and answer follow. (Imports are local so that the child,
which only needs `tui.legacyauth`, never loads curses.)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pvboot.tui.console import ChildLike

log = logging.getLogger(__name__)


def interact(
    child: ChildLike, wall_timeout: float, default: dict[str, Any], max_wait: float | None = None
) -> dict[str, Any]:
    """Show the guest's menu and return the child's reply to the boot the user (or the timeout) chose.

    `default` is the non-interactive boot request (the default entry, or --entry): what the timeout
    boots, and what boots at once when the terminal cannot run the menu. `max_wait` (--max-menu-wait)
    bounds every wait for a key, whatever the guest's timeout says: then the default boots."""
    from pvboot.tui.console import Session
    from pvboot.tui.screen import NoTerminal, opened

    menu = child.request({"op": "menu"}, wall_timeout)
    try:
        with opened() as screen:
            return Session(screen, child, wall_timeout, menu, default, max_wait).run()
    except NoTerminal as exc:
        log.info("no console menu (%s): booting the default", exc)
    return child.request(default, wall_timeout)


__all__ = ["interact"]
