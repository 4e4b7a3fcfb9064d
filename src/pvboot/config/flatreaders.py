"""The data-only menus (BLS for systemd-boot, extlinux/syslinux, GRUB legacy) read from a guest volume.

Each reader sees the config's own volume through `VolumeFiles`, so its relative and absolute paths
resolve there, as the boot loader that owns the config would resolve them.
"""

from __future__ import annotations

from pvboot.config.discover import FoundConfig
from pvboot.config.guestview import GuestView
from pvboot.config.source import dirname, join
from pvboot.disk.fsapi import Kind
from pvboot.errors import NotFoundError
from pvboot.limits import Limits
from pvboot.menu import FileRef, Menu


class VolumeFiles:
    """`ConfigFiles` over one guest volume, text reads capped at the config size limit."""

    def __init__(self, view: GuestView, volume: str, limits: Limits) -> None:
        self.view = view
        self.volume = volume
        self.limits = limits

    def read(self, path: str) -> str:
        return self.view.read_text(FileRef(self.volume, path), self.limits.max_config_size)

    def listdir(self, path: str) -> list[str]:
        return self.view.listdir(FileRef(self.volume, path))

    def exists(self, path: str) -> bool:
        return self.view.kind(FileRef(self.volume, path)) is not None

    def is_file(self, path: str) -> bool:
        return self.view.kind(FileRef(self.volume, path)) is Kind.FILE


def _named(menu: Menu, found: FoundConfig, kind: str) -> Menu:
    menu.source = f"({found.volume}){found.path}"
    menu.kind = kind
    return menu


def bls_menu(view: GuestView, found: FoundConfig, limits: Limits) -> Menu:
    """BLS entries with no grub.cfg to read them: systemd-boot's menu, with its loader.conf."""
    from pvboot.config.sdboot import systemd_boot_menu

    files = VolumeFiles(view, found.volume, limits)
    loader_conf = join(dirname(found.path), "loader.conf")
    try:
        conf_text: str | None = files.read(loader_conf)
    except NotFoundError:
        conf_text = None
    return _named(systemd_boot_menu(files, found.path, conf_text), found, "bls")


def extlinux_menu(view: GuestView, found: FoundConfig, limits: Limits) -> Menu:
    from pvboot.config.extlinux import extlinux_menu as read_extlinux

    files = VolumeFiles(view, found.volume, limits)
    return _named(read_extlinux(files.read(found.path), files, found.path), found, "extlinux")


def legacy_menu(view: GuestView, found: FoundConfig, limits: Limits) -> Menu:
    from pvboot.config.grub_legacy import grub_legacy_menu

    files = VolumeFiles(view, found.volume, limits)
    return _named(grub_legacy_menu(files.read(found.path), files, found.path), found, "grub-legacy")
