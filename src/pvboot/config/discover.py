"""Every boot config on the guest disk, best first: each format's paths (`config/formats.py`, in the
table's order of preference) on every volume, in disk order. Every match is kept, so `-l` and `--debug`
can show the alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvboot.config.formats import FORMATS, ConfigFormat, ConfigKind
from pvboot.disk.fsapi import Kind
from pvboot.disk.volumes import GuestDisk, Volume
from pvboot.errors import GuestDataError, LimitError, NotFoundError

# the names other modules use for the formats
GRUB2, BLS = ConfigKind.GRUB2, ConfigKind.BLS
EXTLINUX, GRUB_LEGACY = ConfigKind.EXTLINUX, ConfigKind.GRUB_LEGACY


# Btrfs root subvolumes distributions name, tried after the filesystem's own root: Ubuntu's GRUB config
# lives at /@/boot/grub/grub.cfg when the default subvolume is left at the top level.
BTRFS_SUBVOLUMES = ("", "/@", "/@rootfs")


@dataclass(frozen=True)
class FoundConfig:
    """A boot config on the guest disk: its kind, the volume holding it and its path there."""

    kind: ConfigKind
    volume: str
    path: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "volume": self.volume, "path": self.path}


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


def _present(volume: Volume, fmt: ConfigFormat, path: str) -> bool:
    tree = volume.tree()
    try:
        node = tree.lookup(path)
    except NotFoundError:
        return False
    suffix = fmt.entries_suffix
    if suffix is not None:
        return node.kind is Kind.DIR and any(name.endswith(suffix) for name in tree.listdir(path))
    return node.kind is Kind.FILE


def find_configs(disk: GuestDisk) -> list[FoundConfig]:
    """Every boot config on the disk, best first."""
    volumes = disk.filesystems()
    found: list[FoundConfig] = []
    for fmt, pattern in ((f, pattern) for f in FORMATS for pattern in f.paths):
        for volume in volumes:
            prefixes = BTRFS_SUBVOLUMES if volume.fstype == "btrfs" else ("",)
            try:
                for path in (p for prefix in prefixes for p in _expand(volume, prefix + pattern)):
                    if _present(volume, fmt, path):
                        found.append(FoundConfig(fmt.kind, volume.name, path))
            except LimitError:
                raise  # a hostile volume is an error that names the limit, never "no config"
            except GuestDataError:
                continue  # an unreadable volume or directory does not hide the others
    return found
