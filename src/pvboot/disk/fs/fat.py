"""FAT12/16/32 adapter (VFAT long names).

dissect.fat API used: `FATFS` (boot sector / BPB validation, FAT type, geometry), `FATFS.fat.get` (one FAT
entry) and `DirectoryEntry` (parses one 32-byte entry plus its preceding long-name entries).

Done here instead of by dissect:
* cluster chains: dissect follows a chain until an end marker with no bound, so a looping chain never
  ends; `_chain` stops after the clusters the file's size needs (directories: 2 MiB, the FAT maximum),
  refuses a file larger than the volume's clusters, and detects a loop (Brent's method: constant memory,
  found within twice the chain's length) instead of walking it for as long as the size allows.
* KNOWN GAP: dissect reports one run per cluster for fragmented files; `extents()` coalesces contiguous
  clusters into one Extent.
* names follow GRUB: a long name only when its checksum matches the 8.3 entry (dissect does not check),
  otherwise the 8.3 name lower-cased; lookups are case-insensitive, as FAT is.
* uuid is "XXXX-XXXX" upper-case hex of the volume serial (GRUB grub-core/fs/fat.c upper-cases it,
  matching blkid); label is the root directory's volume-label entry, as GRUB reads it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

from pvboot.disk.fs._common import extent_stream, guard, read_at, scan
from pvboot.disk.fs._deferred import deferred
from pvboot.disk.fsapi import Extent, FileSystem, Kind, Node
from pvboot.errors import GuestDataError
from pvboot.limits import MIB, Limits

FSTYPE = "fat"
REQUIRES = "dissect.fat"
LABEL = "FAT"  # its name in messages
_fat = deferred("dissect.fat.fat")
_fat_errors = deferred("dissect.fat.exceptions")
_DIR_MAX_BYTES = 2 * MIB  # 65536 entries of 32 bytes
_ATTR_VOLUME_ID = 0x08
_ATTR_DIRECTORY = 0x10
_ATTR_ARCHIVE = 0x20
_ATTR_LONG_NAME = 0x0F


def probe(stream: BinaryIO) -> bool:
    return is_boot_sector(read_at(stream, 0, 512))


def is_boot_sector(boot: bytes) -> bool:
    """A FAT boot sector: x86 jump, sane BPB geometry, and not NTFS/exFAT (which share the jump).

    It ends in 55aa as an MBR does: the whole disk's scan asks this before it reads a partition table.
    """
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


def mount(stream: BinaryIO, limits: Limits) -> FatFileSystem:
    return FatFileSystem(stream, limits)


class FatFileSystem(FileSystem):
    def __init__(self, stream: BinaryIO, limits: Limits) -> None:
        self.stream = stream
        self.limits = limits
        self.fat = _fat.FATFS(stream)
        bpb = self.fat.bpb
        self.bits = self.fat.fat.bits_per_entry
        self.cluster_size = self.fat.cluster_size
        self.data_offset = self.fat.first_data_sector * self.fat.sector_size
        self.clusters = (self.fat.total_sectors - self.fat.first_data_sector) // bpb.BPB_SecPerClus
        self.fstype = FSTYPE
        serial = self.fat.bpb_ext.BS_VolID
        self.uuid = f"{serial >> 16:04X}-{serial & 0xFFFF:04X}"
        if self.bits == 32:
            self._root = FatNode(self, None, self._chain(self.fat.bpb_ext.BPB_RootClus, None))
        else:
            root_offset = (bpb.BPB_RsvdSecCnt + bpb.BPB_NumFATs * self.fat.fat_size) * self.fat.sector_size
            self._root = FatNode(self, None, [Extent(0, root_offset, bpb.BPB_RootEntCnt * 32)])
        self.label = self._root.volume_label()

    def root(self) -> Node:
        return self._root

    def _chain(self, first: int, size: int | None) -> list[Extent]:
        """A cluster chain as coalesced extents; `size` None means a directory (up to 2 MiB)."""
        want = -(-size // self.cluster_size) if size is not None else _DIR_MAX_BYTES // self.cluster_size
        if size is not None and want > self.clusters:
            raise GuestDataError(f"fat: file of {size} bytes is larger than the volume")
        end_marker = {12: 0xFF8, 16: 0xFFF8, 32: 0x0FFFFFF8}[self.bits]
        out: list[Extent] = []
        cluster = first
        marker, lap, steps = first, 1, 0  # Brent: `marker` waits at the chain's power-of-two positions
        for index in range(want):
            if not 2 <= cluster < self.clusters + 2:
                raise GuestDataError(f"fat: cluster chain reaches invalid cluster {cluster:#x}")
            offset = self.data_offset + (cluster - 2) * self.cluster_size
            last = out[-1] if out else None
            if last is not None and last.volume_offset == offset - last.length:
                out[-1] = Extent(last.file_offset, last.volume_offset, last.length + self.cluster_size)
            else:
                out.append(Extent(index * self.cluster_size, offset, self.cluster_size))
            nxt = self.fat.fat.get(cluster)
            if nxt >= end_marker:
                if size is not None and index + 1 < want:
                    raise GuestDataError("fat: cluster chain shorter than the file")
                break
            cluster = nxt
            if cluster == marker:
                raise GuestDataError(f"fat: cluster chain loops (cluster {cluster:#x})")
            steps += 1
            if steps == lap:
                marker, lap, steps = cluster, lap * 2, 0
        if size is not None and out:  # clip the last cluster to the file size
            last = out[-1]
            out[-1] = Extent(last.file_offset, last.volume_offset, size - last.file_offset)
        return out


class FatNode(Node):
    def __init__(self, fs: FatFileSystem, entry: Any, extents: list[Extent] | None = None) -> None:
        self._fs = fs
        self._entry = entry
        if entry is None:  # the root directory
            self.kind = Kind.DIR
            self.size = sum(e.length for e in extents or [])
        else:
            self.kind = Kind.DIR if entry.dirent.DIR_Attr & _ATTR_DIRECTORY else Kind.FILE
            self.size = 0 if self.kind is Kind.DIR else entry.dirent.DIR_FileSize
        self._extents = extents

    def _map(self) -> list[Extent]:
        if self._extents is None:
            dirent = self._entry.dirent
            first = (dirent.DIR_FstClusHI << 16 if self._fs.bits == 32 else 0) | dirent.DIR_FstClusLO
            size = None if self.kind is Kind.DIR else self.size
            if first == 0 and size:
                raise GuestDataError("fat: non-empty file without clusters")
            self._extents = [] if first == 0 or size == 0 else self._fs._chain(first, size)
            if self.kind is Kind.DIR:
                self.size = sum(e.length for e in self._extents)
        return self._extents

    def open(self) -> BinaryIO:
        if self.kind is Kind.DIR:  # a directory's size is only known once its chain is walked
            with guard(FSTYPE):
                self._map()
        return extent_stream(self._fs.stream, self._map, self.size, FSTYPE)

    def extents(self) -> list[Extent] | None:
        with guard(FSTYPE):
            return list(self._map())

    def readlink(self) -> str:
        raise GuestDataError("fat: FAT has no symlinks")

    def _raw_entries(self) -> Iterator[Any]:
        if self.kind is not Kind.DIR:
            return
        stream = self.open()
        for _ in range(0, self.size, 32):
            try:
                yield _fat.DirectoryEntry(self._fs.fat, stream, None)
            except _fat_errors.EmptyDirectoryError:  # a deleted entry
                continue
            except (_fat_errors.LastEmptyDirectoryError, EOFError):
                return

    def _entries(self) -> Iterator[tuple[str, Any]]:
        """(GRUB-style name, entry) of files and subdirectories, without '.', '..' and volume labels."""
        for entry in self._raw_entries():
            attr = entry.dirent.DIR_Attr
            if attr & _ATTR_VOLUME_ID or entry.short_name in (".", ".."):
                continue
            name = _name(entry)
            if name:
                yield name, entry

    def volume_label(self) -> str | None:
        with guard(FSTYPE):
            for entry in self._raw_entries():
                if entry.dirent.DIR_Attr & ~_ATTR_ARCHIVE == _ATTR_VOLUME_ID:
                    return bytes(entry.dirent.DIR_Name).rstrip(b" ").decode(self._fs.fat.encoding) or None
        return None

    def names(self) -> Iterator[str]:
        with guard(FSTYPE):
            for name, _ in self._entries():
                yield name

    def child(self, name: str) -> Node | None:
        wanted = name.lower()
        with guard(FSTYPE):
            for entry_name, entry in scan(self._entries(), self._fs.limits, FSTYPE):
                if wanted in (entry_name.lower(), entry.short_name.lower()):
                    return FatNode(self._fs, entry)
        return None


def _name(entry: Any) -> str:
    """The long name if its checksum matches the 8.3 entry (GRUB checks), else the lower-cased 8.3 name."""
    if entry.ldirents:
        checksum = 0
        for byte in bytes(entry.dirent.DIR_Name):
            checksum = (((checksum & 1) << 7) + (checksum >> 1) + byte) & 0xFF
        if all(ld.LDIR_Chksum == checksum for ld in entry.ldirents) and entry.name:
            return str(entry.name)
    return str(entry.short_name).lower()
