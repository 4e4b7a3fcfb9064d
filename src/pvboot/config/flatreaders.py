"""The readers of the data-only menus (BLS for systemd-boot, extlinux/syslinux, GRUB legacy) on a volume.

Each reader sees the config's own volume through `guestview.VolumeFiles`, so its relative and absolute paths
resolve there, as the boot loader that owns the config would resolve them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pvboot.config.discover import FoundConfig
from pvboot.config.guestview import GuestView, VolumeFiles
from pvboot.config.menusource import FlatMenu
from pvboot.config.source import dirname, join
from pvboot.errors import NotFoundError
from pvboot.limits import Limits
from pvboot.menu import Menu

if TYPE_CHECKING:
    from pvboot.config.grub2.session import Grub2Session

Log = Callable[[str], None]


def _flat(view: GuestView, found: FoundConfig, limits: Limits, log: Log, menu: Menu) -> FlatMenu:
    """`menu` as a MenuSource; its edited entries and `c` run in a GRUB 2 session on the config's volume."""
    menu.source = f"({found.volume}){found.path}"
    menu.kind = found.kind.value
    if not menu.entries:
        raise NotFoundError(f"{menu.source}: the config defines no menu entries")

    def scratch() -> Grub2Session:
        from pvboot.config.grub2.session import Grub2Session

        session = Grub2Session(view, found.volume, "", limits, log)
        session.load()
        return session

    return FlatMenu(menu, scratch)


def bls_menu(view: GuestView, found: FoundConfig, limits: Limits, log: Log) -> FlatMenu:
    """BLS entries with no grub.cfg to read them: systemd-boot's menu, with its loader.conf."""
    from pvboot.config.sdboot import systemd_boot_menu

    files = VolumeFiles(view, found.volume, limits)
    loader_conf = join(dirname(found.path), "loader.conf")
    try:
        conf_text: str | None = files.read(loader_conf)
    except NotFoundError:
        conf_text = None
    return _flat(view, found, limits, log, systemd_boot_menu(files, found.path, conf_text))


def extlinux_menu(view: GuestView, found: FoundConfig, limits: Limits, log: Log) -> FlatMenu:
    from pvboot.config.extlinux import extlinux_menu as read_extlinux

    files = VolumeFiles(view, found.volume, limits)
    return _flat(view, found, limits, log, read_extlinux(files.read(found.path), files, found.path))


def legacy_menu(view: GuestView, found: FoundConfig, limits: Limits, log: Log) -> FlatMenu:
    from pvboot.config.grub_legacy import grub_legacy_menu

    files = VolumeFiles(view, found.volume, limits)
    return _flat(view, found, limits, log, grub_legacy_menu(files.read(found.path), files, found.path))
