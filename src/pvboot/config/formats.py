"""The boot-config formats pvboot reads, in one table: where each is found, how it is read, how it is told.

`FORMATS` is the only list of formats. Its order is discovery's order of preference: the GRUB 2 config a
distribution generates (which may itself read BLS entries with `blscfg`), then Boot Loader Specification
entries (systemd-boot's, when no grub.cfg exists), then extlinux/syslinux/isolinux, then GRUB legacy.
Within one format its `paths` are tried in order, and each path on every volume in disk order
(`config/discover.py`). A format's `reader` names the function that turns one found config into a
`MenuSource` (`config/load.py` imports it only when that format is found): the menu rules of the boot
loader that owns the format (its default, fallback and editing semantics) live behind it.

Adding a format is one reader module and one `ConfigFormat(...)` line here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ConfigKind(StrEnum):
    """A boot-config format, by the name `-l`, JSON and the run log give it."""

    GRUB2 = "grub2"
    BLS = "bls"
    EXTLINUX = "extlinux"
    GRUB_LEGACY = "grub-legacy"


@dataclass(frozen=True)
class ConfigFormat:
    """One format: where its configs live on a guest volume and which reader loads them."""

    kind: ConfigKind
    # absolute paths on a volume, in order of preference; '*' matches one directory level
    paths: tuple[str, ...]
    # "module:function" returning a MenuSource: (GuestView, FoundConfig, Limits, log) -> MenuSource
    reader: str
    # None: each path is a file; else a path is a directory, found when it holds a name ending so
    entries_suffix: str | None = None
    # --isconfig (a config file on the host): the file names that are this format, and the line pattern
    # (a regular expression with its flags inline) that tells it by content; `sniff_rank` orders the
    # patterns (lower first)
    host_names: tuple[str, ...] = ()
    host_sniff: str | None = None
    sniff_rank: int = 0


_GRUB2_MENU = r"(?m)^\s*(menuentry|submenu|blscfg)\b"

FORMATS: tuple[ConfigFormat, ...] = (
    ConfigFormat(
        ConfigKind.GRUB2,
        (
            "/boot/grub/grub.cfg",
            "/grub/grub.cfg",
            "/boot/grub2/grub.cfg",
            "/grub2/grub.cfg",
            "/EFI/*/grub.cfg",
            "/boot/efi/EFI/*/grub.cfg",
        ),
        "pvboot.config.load:grub2_menu",
        host_sniff=_GRUB2_MENU,
    ),
    ConfigFormat(
        ConfigKind.BLS,
        ("/loader/entries", "/boot/loader/entries"),
        "pvboot.config.flatreaders:bls_menu",
        entries_suffix=".conf",
    ),
    ConfigFormat(
        ConfigKind.EXTLINUX,
        (
            "/boot/extlinux/extlinux.conf",
            "/extlinux/extlinux.conf",
            "/boot/extlinux.conf",
            "/extlinux.conf",
            "/boot/syslinux/syslinux.cfg",
            "/syslinux/syslinux.cfg",
            "/syslinux.cfg",
            "/boot/isolinux/isolinux.cfg",
            "/isolinux/isolinux.cfg",
            "/isolinux.cfg",
        ),
        "pvboot.config.flatreaders:extlinux_menu",
        host_names=("extlinux.conf", "syslinux.cfg", "isolinux.cfg", "pxelinux.cfg"),
        host_sniff=r"(?mi)^\s*label\s",
        sniff_rank=2,
    ),
    ConfigFormat(
        ConfigKind.GRUB_LEGACY,
        ("/boot/grub/menu.lst", "/boot/grub/grub.conf", "/grub/menu.lst", "/grub/grub.conf"),
        "pvboot.config.flatreaders:legacy_menu",
        host_names=("menu.lst", "grub.conf"),
        host_sniff=r"(?mi)^\s*title\s",
        sniff_rank=1,
    ),
)

BY_KIND: dict[ConfigKind, ConfigFormat] = {fmt.kind: fmt for fmt in FORMATS}

# The format a host file whose name and lines say nothing is read as (pygrub's assumption).
HOST_DEFAULT = ConfigKind.GRUB2


def host_kind(name: str, head: str) -> ConfigKind:
    """The format of a config file on the host (`--isconfig`): by its name, else by what its first
    lines (`head`) look like, else GRUB 2."""
    lower = name.lower()
    for fmt in FORMATS:
        if lower in fmt.host_names:
            return fmt.kind
    for fmt in sorted(FORMATS, key=lambda f: f.sniff_rank):
        if fmt.host_sniff is not None and re.search(fmt.host_sniff, head):
            return fmt.kind
    return HOST_DEFAULT
