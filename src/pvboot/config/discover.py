"""Where each distribution's boot loader keeps its menu, searched on every volume in a documented order.

The order is the order of preference: the GRUB 2 config a distribution generates (which may itself read
BLS entries with `blscfg`), then an EFI system partition's grub.cfg (often a stub that loads the real one),
then Boot Loader Specification entries (systemd-boot's, when no grub.cfg exists), then extlinux/syslinux/
isolinux, then GRUB legacy. Within one kind, volumes are tried in disk order. Every match is kept, so `-l`
and `--debug` can show the alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvboot.disk.fsapi import Kind
from pvboot.disk.volumes import GuestDisk, Volume
from pvboot.errors import GuestDataError, LimitError, NotFoundError

GRUB2 = "grub2"
BLS = "bls"
EXTLINUX = "extlinux"
GRUB_LEGACY = "grub-legacy"

# (kind, path) in order of preference; '*' matches one directory level (the ESP's vendor directory).
SEARCH_ORDER: tuple[tuple[str, str], ...] = (
    (GRUB2, "/boot/grub/grub.cfg"),
    (GRUB2, "/grub/grub.cfg"),
    (GRUB2, "/boot/grub2/grub.cfg"),
    (GRUB2, "/grub2/grub.cfg"),
    (GRUB2, "/EFI/*/grub.cfg"),
    (GRUB2, "/boot/efi/EFI/*/grub.cfg"),
    (BLS, "/loader/entries"),
    (BLS, "/boot/loader/entries"),
    (EXTLINUX, "/boot/extlinux/extlinux.conf"),
    (EXTLINUX, "/extlinux/extlinux.conf"),
    (EXTLINUX, "/boot/extlinux.conf"),
    (EXTLINUX, "/extlinux.conf"),
    (EXTLINUX, "/boot/syslinux/syslinux.cfg"),
    (EXTLINUX, "/syslinux/syslinux.cfg"),
    (EXTLINUX, "/syslinux.cfg"),
    (EXTLINUX, "/boot/isolinux/isolinux.cfg"),
    (EXTLINUX, "/isolinux/isolinux.cfg"),
    (EXTLINUX, "/isolinux.cfg"),
    (GRUB_LEGACY, "/boot/grub/menu.lst"),
    (GRUB_LEGACY, "/boot/grub/grub.conf"),
    (GRUB_LEGACY, "/grub/menu.lst"),
    (GRUB_LEGACY, "/grub/grub.conf"),
)


# Btrfs root subvolumes distributions name, tried after the filesystem's own root: Ubuntu's GRUB config
# lives at /@/boot/grub/grub.cfg when the default subvolume is left at the top level.
BTRFS_SUBVOLUMES = ("", "/@", "/@rootfs")


@dataclass(frozen=True)
class FoundConfig:
    """A boot config on the guest disk: its kind, the volume holding it and its path there."""

    kind: str
    volume: str
    path: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "volume": self.volume, "path": self.path}


def _expand(volume: Volume, pattern: str) -> list[str]:
    """Concrete paths on `volume` for `pattern` ('*' is one directory level, sorted by name)."""
    if "*" not in pattern:
        return [pattern]
    head, _, tail = pattern.partition("*")
    tree = volume.tree()
    try:
        names = sorted(tree.listdir(head))
    except NotFoundError:
        return []
    return [f"{head}{name}{tail}" for name in names]


def _present(volume: Volume, kind: str, path: str) -> bool:
    tree = volume.tree()
    try:
        node = tree.lookup(path)
    except NotFoundError:
        return False
    if kind == BLS:
        return node.kind is Kind.DIR and any(name.endswith(".conf") for name in tree.listdir(path))
    return node.kind is Kind.FILE


def find_configs(disk: GuestDisk) -> list[FoundConfig]:
    """Every boot config on the disk, best first."""
    volumes = disk.filesystems()
    found: list[FoundConfig] = []
    for kind, pattern in SEARCH_ORDER:
        for volume in volumes:
            prefixes = BTRFS_SUBVOLUMES if volume.fstype == "btrfs" else ("",)
            try:
                for path in (p for prefix in prefixes for p in _expand(volume, prefix + pattern)):
                    if _present(volume, kind, path):
                        found.append(FoundConfig(kind, volume.name, path))
            except LimitError:
                raise  # a hostile volume is an error that names the limit, never "no config"
            except GuestDataError:
                continue  # an unreadable volume or directory does not hide the others
    return found
