"""Filesystem detection and the adapters behind `pvboot.disk.fsapi`.

`detect` reads a few magic numbers at their fixed offsets; `open_filesystem` imports only the one adapter
it needs (the parsers are heavy) and makes every failure of a third-party parser a single GuestDataError.
"""

from __future__ import annotations

import importlib
import struct
from typing import BinaryIO

from pvboot.disk.fs._common import describe, guard
from pvboot.disk.fsapi import FileSystem
from pvboot.errors import GuestDataError, PvbootError
from pvboot.limits import Limits

__all__ = ["detect", "open_filesystem"]

# GRUB's filesystem name -> (adapter module, the package that module needs)
_ADAPTERS = {
    "btrfs": ("btrfs", "dissect.btrfs"),
    "xfs": ("xfs", "dissect.xfs"),
    "ext2": ("ext", "dissect.extfs"),
    "iso9660": ("iso9660", "pycdlib"),
    "fat": ("fat", "dissect.fat"),
}


def _read(stream: BinaryIO, offset: int, length: int) -> bytes:
    stream.seek(offset)
    data = stream.read(length)
    return data if len(data) == length else b""


def _is_fat(boot: bytes) -> bool:
    """A FAT boot sector: x86 jump, sane BPB geometry, and not NTFS/exFAT (which share the jump)."""
    if len(boot) < 512 or boot[3:11] in (b"NTFS    ", b"EXFAT   "):
        return False
    if not ((boot[0] == 0xEB and boot[2] == 0x90) or boot[0] == 0xE9):
        return False
    bpb = struct.unpack_from("<HBHBHHB", boot, 11)
    sector, per_cluster, reserved, fats, root_entries, total16, media = bpb
    total32 = struct.unpack_from("<I", boot, 32)[0]
    fat16_size = struct.unpack_from("<H", boot, 22)[0]
    fat32_size = struct.unpack_from("<I", boot, 36)[0]
    return (
        sector in (512, 1024, 2048, 4096)
        and per_cluster in (1, 2, 4, 8, 16, 32, 64, 128)
        and reserved > 0
        and fats in (1, 2)
        and media >= 0xF0
        and (total16 or total32) > 0
        and (fat16_size or fat32_size) > 0
        and (root_entries > 0 or fat32_size > 0)
    )


def detect(stream: BinaryIO) -> str | None:
    """GRUB's name for the filesystem on `stream` ("ext2", "xfs", "btrfs", "fat", "iso9660"), or None."""
    try:
        if _read(stream, 0x10040, 8) == b"_BHRfS_M":
            return "btrfs"
        if _read(stream, 0, 4) == b"XFSB":
            return "xfs"
        if _read(stream, 1024 + 56, 2) == b"\x53\xef":
            return "ext2"
        if _read(stream, 0x8001, 5) == b"CD001":
            return "iso9660"
        if _is_fat(_read(stream, 0, 512)):
            return "fat"
    except (OSError, ValueError, OverflowError, struct.error):
        return None
    return None


def open_filesystem(stream: BinaryIO, limits: Limits) -> FileSystem:
    """The filesystem on `stream` (a seekable read-only view of one volume), ready for FileTree."""
    fstype = detect(stream)
    if fstype is None:
        raise GuestDataError("no supported filesystem found (ext2/3/4, XFS, Btrfs, FAT, ISO9660)")
    module_name, package = _ADAPTERS[fstype]
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ImportError as exc:
        raise PvbootError(f"{fstype} support needs the Python package {package} ({describe(exc)})") from exc
    with guard(fstype):
        filesystem: FileSystem = module.mount(stream, limits)
        return filesystem
