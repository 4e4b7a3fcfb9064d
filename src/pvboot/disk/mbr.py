"""The MBR partition table, numbered as GRUB numbers it: slots 1-4, then logical partitions from 5.

A volume system (`pvboot.disk.layer.VolumeSystem`) sought on the whole disk only. A FAT boot sector
also ends in 55aa and can pass for an MBR: only its BPB tells a bare FAT disk from a partitioned one,
so a sector the FAT adapter's own check recognises is not read as a table.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from pvboot.disk.fs import fat
from pvboot.disk.layer import Found, Holder
from pvboot.disk.partitions import Partition, add_clipped, as_volumes, read_at
from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import Limits

NAME = "MBR"
WHOLE_DISK = True
EXTENDED_TYPES = frozenset({0x05, 0x0F, 0x85})
GPT_PROTECTIVE = 0xEE


def probe(holder: Holder) -> bool:
    holder.stream.seek(0)
    first = holder.stream.read(512)
    return looks_like_mbr(first) and not fat.is_boot_sector(first)


def scan(holder: Holder, limits: Limits) -> list[Found]:
    return as_volumes(holder, read_mbr(holder.stream, holder.size, limits))


def _mbr_entries(sector: bytes) -> list[tuple[int, int, int, int]]:
    """(boot flag, type, start LBA, sectors) for the four slots."""
    entries = []
    for slot in range(4):
        raw = sector[446 + 16 * slot : 462 + 16 * slot]
        flag, ptype, start, count = raw[0], raw[4], *struct.unpack_from("<II", raw, 8)
        entries.append((flag, ptype, start, count))
    return entries


def looks_like_mbr(sector: bytes) -> bool:
    """A boot signature and four sane slots (boot flag 0 or 0x80), at least one in use."""
    if len(sector) < 512 or sector[510:512] != b"\x55\xaa":
        return False
    entries = _mbr_entries(sector)
    if any(flag not in (0, 0x80) for flag, *_ in entries):
        return False
    return any(ptype != 0 and count != 0 for _, ptype, _, count in entries)


def read_mbr(stream: BinaryIO, disk_size: int, limits: Limits, sector: int = 512) -> list[Partition]:
    """Primary partitions as slots 1-4, then logical ones from 5 along the EBR chain."""
    found: list[Partition] = []
    first = read_at(stream, 0, 512)
    extended_start: int | None = None
    for slot, (_flag, ptype, start, count) in enumerate(_mbr_entries(first), start=1):
        if ptype == 0 or count == 0:
            continue
        if ptype in EXTENDED_TYPES:
            extended_start = extended_start if extended_start is not None else start
            continue
        if ptype == GPT_PROTECTIVE:
            continue
        add_clipped(found, f"msdos{slot}", start * sector, count * sector, f"{ptype:02x}", disk_size)
    number = 5
    ebr = extended_start
    seen: set[int] = set()
    while ebr is not None:
        if ebr in seen:
            raise GuestDataError("MBR: the extended partition chain loops")
        seen.add(ebr)
        if len(seen) > limits.max_partitions:
            raise LimitError(f"MBR: more than {limits.max_partitions} logical partitions")
        assert extended_start is not None
        table = read_at(stream, ebr * sector, 512)
        if table[510:512] != b"\x55\xaa":
            break
        next_ebr = None
        for _flag, ptype, start, count in _mbr_entries(table):
            if ptype == 0 or count == 0:
                continue
            if ptype in EXTENDED_TYPES:
                next_ebr = extended_start + start if next_ebr is None else next_ebr
                continue
            label = f"msdos{number}"
            add_clipped(found, label, (ebr + start) * sector, count * sector, f"{ptype:02x}", disk_size)
            number += 1
        ebr = next_ebr
    return found
