"""Turn the configs discovery found into one menu: the first config that yields entries wins.

A config that is absent or unreadable is passed over (logged) for the next one; a config that hits a
limit is an error, never silently replaced by another menu.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pvboot.config.discover import BLS, EXTLINUX, GRUB2, GRUB_LEGACY, FoundConfig
from pvboot.config.guestview import GuestView
from pvboot.config.menusource import FlatMenu, MenuSource
from pvboot.errors import GuestDataError, LimitError, NotFoundError
from pvboot.limits import Limits

if TYPE_CHECKING:
    from pvboot.config.grub2.session import Grub2Session


def open_menu(view: GuestView, found: FoundConfig, limits: Limits, log: Callable[[str], None]) -> MenuSource:
    """The menu of one config, loaded (GRUB 2 configs are run)."""
    if found.kind == GRUB2:
        from pvboot.config.grub2.session import Grub2Session

        session = Grub2Session(view, found.volume, found.path, limits, log)
        session.load()
        if not session.top:
            raise NotFoundError(f"({found.volume}){found.path}: the config defines no menu entries")
        return session
    from pvboot.config import flatreaders

    readers = {
        BLS: flatreaders.bls_menu,
        EXTLINUX: flatreaders.extlinux_menu,
        GRUB_LEGACY: flatreaders.legacy_menu,
    }
    menu = readers[found.kind](view, found, limits)
    if not menu.entries:
        raise NotFoundError(f"({found.volume}){found.path}: the config defines no menu entries")

    def scratch() -> Grub2Session:
        from pvboot.config.grub2.session import Grub2Session

        session = Grub2Session(view, found.volume, "", limits, log)
        session.load()
        return session

    return FlatMenu(menu, scratch)


def load_menu(
    view: GuestView, configs: list[FoundConfig], limits: Limits, log: Callable[[str], None]
) -> tuple[FoundConfig, MenuSource]:
    """The first config, in discovery order, that yields a menu."""
    problems: list[str] = []
    for found in configs:
        log(f"reading {found.kind} config ({found.volume}){found.path}")
        try:
            return found, open_menu(view, found, limits, log)
        except LimitError:
            raise
        except GuestDataError as exc:
            log(f"passed over: {exc}")
            problems.append(str(exc))
    if not configs:
        raise NotFoundError(
            "no boot configuration (grub.cfg, BLS entries, extlinux.conf, menu.lst) on the guest disk"
        )
    raise NotFoundError(f"no usable boot menu on the guest disk: {problems[0]}")
