"""The filesystem registry: detection asks each adapter's probe, in a fixed order, and mounts with it.

Each adapter module (`pvboot.disk.fsapi.Adapter`) declares GRUB's name for its filesystem, the package
its reader needs and its probe; `FILESYSTEMS` below is the one list of them. `open_filesystem` makes
every failure of a third-party parser a single GuestDataError.
"""

from __future__ import annotations

import importlib
import struct
from typing import BinaryIO, cast

from pvboot.disk.fs._common import describe, guard
from pvboot.disk.fs._deferred import import_all
from pvboot.disk.fsapi import Adapter, FileSystem
from pvboot.errors import GuestDataError, PvbootError
from pvboot.limits import Limits

__all__ = [
    "FILESYSTEMS",
    "adapter",
    "adapters",
    "detect",
    "import_parsers",
    "open_filesystem",
]

# The adapter modules of this package, in detection order: the first whose probe recognises a volume
# reads it. A new filesystem is its module plus one line here.
FILESYSTEMS = (
    "btrfs",  # magic at 64 KiB: before the formats whose magic lies in the first sectors
    "xfs",
    "ext",
    "iso9660",
    "fat",  # a BPB check rather than a magic number: last
)


def adapter(module: str) -> Adapter:
    """The adapter module `module` of this package (cheap: no parser is imported)."""
    return cast(Adapter, importlib.import_module(f"{__name__}.{module}"))


def adapters() -> list[Adapter]:
    """Every registered adapter, in detection order."""
    return [adapter(module) for module in FILESYSTEMS]


def _probe(stream: BinaryIO) -> Adapter | None:
    for candidate in FILESYSTEMS:
        found = adapter(candidate)
        try:
            if found.probe(stream):
                return found
        except (OSError, ValueError, OverflowError, struct.error):
            return None
    return None


def detect(stream: BinaryIO) -> str | None:
    """GRUB's name for the filesystem on `stream` ("ext2", "xfs", "btrfs", "fat", "iso9660"), or None."""
    found = _probe(stream)
    return found.FSTYPE if found is not None else None


def open_filesystem(stream: BinaryIO, limits: Limits) -> FileSystem:
    """The filesystem on `stream` (a seekable read-only view of one volume), ready for FileTree."""
    found = _probe(stream)
    if found is None:
        names = ", ".join(sorted((a.LABEL for a in adapters()), key=str.casefold))
        raise GuestDataError(f"no supported filesystem found ({names})")
    try:
        importlib.import_module(found.REQUIRES)
    except ImportError as exc:
        raise PvbootError(
            f"{found.FSTYPE} support needs the Python package {found.REQUIRES} ({describe(exc)})"
        ) from exc
    with guard(found.FSTYPE):
        return found.mount(stream, limits)


def import_parsers() -> None:
    """Import every registered adapter's parser now, for a reader that cannot import once confined
    (`pvboot.disk.fs.preload`); one that is not installed fails later, when a volume needs it."""
    adapters()
    import_all()
