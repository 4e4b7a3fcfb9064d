"""Turn the configs discovery found into one menu: the first config that yields entries wins.

A config that is absent or unreadable is passed over (logged) for the next one; a config that hits a
limit is an error, never silently replaced by another menu.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from pvboot.config.discover import FoundConfig
from pvboot.config.formats import BY_KIND
from pvboot.config.guestview import GuestView
from pvboot.config.menusource import MenuSource
from pvboot.errors import GuestDataError, LimitError, NotFoundError
from pvboot.limits import Limits

if TYPE_CHECKING:
    from pvboot.config.grub2.session import Grub2Session

Log = Callable[[str], None]
MenuReader = Callable[[GuestView, FoundConfig, Limits, Log], MenuSource]


def open_menu(view: GuestView, found: FoundConfig, limits: Limits, log: Log) -> MenuSource:
    """The menu of one config, loaded by its format's reader (`config/formats.py`)."""
    module, _, function = BY_KIND[found.kind].reader.partition(":")
    reader: MenuReader = getattr(importlib.import_module(module), function)
    return reader(view, found, limits, log)


def grub2_menu(view: GuestView, found: FoundConfig, limits: Limits, log: Log) -> Grub2Session:
    """A grub.cfg, run as GRUB runs it: its menu is whatever the script defined."""
    from pvboot.config.grub2.session import Grub2Session

    session = Grub2Session(view, found.volume, found.path, limits, log)
    session.load()
    if not session.top:
        raise NotFoundError(f"({found.volume}){found.path}: the config defines no menu entries")
    return session


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
