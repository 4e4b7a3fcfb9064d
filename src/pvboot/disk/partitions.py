"""MBR and GPT partition tables, numbered as GRUB numbers them (`msdos5` is the first logical one).

Hand-written rather than dissect.volume's: dissect numbers logical partitions by their slot in the
extended chain (GRUB and Linux start them at 5), follows the EBR chain and the GPT entry count without a
bound, and reports GPT partitions one sector short. These tables are a few fixed structures.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import BinaryIO

from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import Limits

EXTENDED_TYPES = frozenset({0x05, 0x0F, 0x85})
GPT_PROTECTIVE = 0xEE
GPT_ENTRY_MIN = 128

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Partition:
    """One partition: `label` is GRUB's partmap name part, e.g. 'msdos5' or 'gpt2'."""

    label: str
    offset: int
    size: int
    type: str  # MBR: two hex digits; GPT: the type GUID in lower case
    guid: str | None = None  # GPT: the partition's unique GUID


def guid_text(raw: bytes) -> str:
    """A GPT GUID (mixed-endian on disk) as text, as uuid.UUID(bytes_le=raw) prints it; without the
    uuid module, whose import (with platform's) costs every boot a few milliseconds."""
    a, b, c = struct.unpack_from("<IHH", raw)
    tail = raw[8:16].hex()
    return f"{a:08x}-{b:04x}-{c:04x}-{tail[:4]}-{tail[4:]}"


def _read_at(stream: BinaryIO, offset: int, size: int) -> bytes:
    stream.seek(offset)
    data = stream.read(size)
    if len(data) != size:
        raise GuestDataError(f"partition table: short read at byte {offset}")
    return data


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
    first = _read_at(stream, 0, 512)
    extended_start: int | None = None
    for slot, (_flag, ptype, start, count) in enumerate(_mbr_entries(first), start=1):
        if ptype == 0 or count == 0:
            continue
        if ptype in EXTENDED_TYPES:
            extended_start = extended_start if extended_start is not None else start
            continue
        if ptype == GPT_PROTECTIVE:
            continue
        _add(found, f"msdos{slot}", start * sector, count * sector, f"{ptype:02x}", disk_size)
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
        table = _read_at(stream, ebr * sector, 512)
        if table[510:512] != b"\x55\xaa":
            break
        next_ebr = None
        for _flag, ptype, start, count in _mbr_entries(table):
            if ptype == 0 or count == 0:
                continue
            if ptype in EXTENDED_TYPES:
                next_ebr = extended_start + start if next_ebr is None else next_ebr
                continue
            _add(found, f"msdos{number}", (ebr + start) * sector, count * sector, f"{ptype:02x}", disk_size)
            number += 1
        ebr = next_ebr
    return found


def find_gpt(stream: BinaryIO) -> int | None:
    """The logical sector size (512 or 4096) at whose LBA 1 a GPT header sits, else None."""
    for sector in (512, 4096):
        stream.seek(sector)
        if stream.read(8) == b"EFI PART":
            return sector
    return None


def read_gpt(stream: BinaryIO, disk_size: int, limits: Limits, sector: int) -> list[Partition]:
    """GPT entries in use, named `gpt<index+1>` as GRUB does (empty slots keep their numbers)."""
    header = _read_at(stream, sector, 92)
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    if entry_size < GPT_ENTRY_MIN or entry_size % 8 or entry_size > 4096:
        raise GuestDataError(f"GPT: bad partition entry size {entry_size}")
    if count > 65536 or count * entry_size > 16 << 20:
        raise LimitError(f"GPT: {count} partition entries exceeds the limit")
    table_offset = entries_lba * sector
    if table_offset + count * entry_size > disk_size:
        raise GuestDataError("GPT: the partition array lies beyond the end of the disk")
    table = _read_at(stream, table_offset, count * entry_size)
    found: list[Partition] = []
    for index in range(count):
        raw = table[index * entry_size : index * entry_size + 128]
        type_guid = raw[0:16]
        if type_guid == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", raw, 32)
        if last < first:
            raise GuestDataError(f"GPT: partition {index + 1} ends before it starts")
        if len(found) >= limits.max_partitions:
            raise LimitError(f"GPT: more than {limits.max_partitions} partitions")
        _add(
            found,
            f"gpt{index + 1}",
            first * sector,
            (last - first + 1) * sector,
            guid_text(type_guid),
            disk_size,
            guid=guid_text(raw[16:32]),
        )
    return found


def _add(
    found: list[Partition],
    label: str,
    offset: int,
    size: int,
    ptype: str,
    disk_size: int,
    guid: str | None = None,
) -> None:
    """Record a partition clipped to the disk; one starting past the end (a truncated copy) is skipped."""
    if offset >= disk_size or size <= 0:
        log.debug("partition %s at byte %d lies beyond the end of the disk: skipped", label, offset)
        return
    found.append(Partition(label, offset, min(size, disk_size - offset), ptype, guid))
