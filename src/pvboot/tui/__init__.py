"""The console menu on the terminal libxl gives the bootloader (`xl create -c`): GRUB 2's text menu,
its entry editor, its command line, its countdown and its password checks, drawn with curses.

The parent runs it; every guest byte it shows came back from the confined child as JSON and is cleaned
before it reaches the terminal (tui.text). `interact` returns the child's boot reply, exactly what the
non-interactive path gets, so the same checks and answer follow. (Imports are local: importing the
package loads no curses.)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pvboot.sandbox.protocol import BootEntryRequest, BootReply, Reader

log = logging.getLogger(__name__)


def interact(reader: Reader, default: BootEntryRequest, max_wait: float | None = None) -> BootReply:
    """Show the guest's menu and return the reader's reply to the boot the user (or the timeout) chose.

    `default` is the non-interactive boot request (the default entry, or --entry): what the timeout
    boots, and what boots at once when the terminal cannot run the menu. `max_wait` (--max-menu-wait)
    bounds every wait for a key, whatever the guest's timeout says: then the default boots. The console
    speaks the protocol's wire documents, every reply checked (`protocol.CheckedChild`)."""
    from pvboot.sandbox.protocol import BootReply, CheckedChild, validate_reply
    from pvboot.tui.console import Session
    from pvboot.tui.screen import NoTerminal, opened

    menu = reader.menu().to_json()
    try:
        with opened() as screen:
            session = Session(
                screen, CheckedChild(reader.child), reader.timeout, menu, default.to_json(), max_wait
            )
            reply = validate_reply("boot", session.run())
            assert isinstance(reply, BootReply)
            return reply
    except NoTerminal as exc:
        log.info("no console menu (%s): booting the default", exc)
    return reader.boot(default)


__all__ = ["interact"]
