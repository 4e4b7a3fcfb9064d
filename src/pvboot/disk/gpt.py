"""The GUID partition table, with 512- or 4096-byte logical sectors, named `gpt<index+1>` as GRUB does.

A volume system (`pvboot.disk.layer.VolumeSystem`) sought on the whole disk only, before the MBR: a GPT
disk's MBR is a protective one.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from pvboot.disk.layer import Found, Holder
from pvboot.disk.partitions import Partition, add_clipped, as_volumes, guid_text, read_at
from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import GPT_MAX_ENTRIES, GPT_MAX_ENTRY_ARRAY, GPT_MAX_ENTRY_SIZE, Limits

NAME = "GPT"
WHOLE_DISK = True
GPT_ENTRY_MIN = 128  # the UEFI minimum, and the bytes read of each entry


def probe(holder: Holder) -> bool:
    return find_gpt(holder.stream) is not None


def scan(holder: Holder, limits: Limits) -> list[Found]:
    sector = find_gpt(holder.stream)
    if sector is None:
        return []
    return as_volumes(holder, read_gpt(holder.stream, holder.size, limits, sector))


def find_gpt(stream: BinaryIO) -> int | None:
    """The logical sector size (512 or 4096) at whose LBA 1 a GPT header sits, else None."""
    for sector in (512, 4096):
        stream.seek(sector)
        if stream.read(8) == b"EFI PART":
            return sector
    return None


def read_gpt(stream: BinaryIO, disk_size: int, limits: Limits, sector: int) -> list[Partition]:
    """GPT entries in use, named `gpt<index+1>` as GRUB does (empty slots keep their numbers)."""
    header = read_at(stream, sector, 92)
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    if entry_size < GPT_ENTRY_MIN or entry_size % 8 or entry_size > GPT_MAX_ENTRY_SIZE:
        raise GuestDataError(f"GPT: bad partition entry size {entry_size}")
    if count > GPT_MAX_ENTRIES or count * entry_size > GPT_MAX_ENTRY_ARRAY:
        raise LimitError(f"GPT: {count} partition entries exceeds the limit")
    table_offset = entries_lba * sector
    if table_offset + count * entry_size > disk_size:
        raise GuestDataError("GPT: the partition array lies beyond the end of the disk")
    table = read_at(stream, table_offset, count * entry_size)
    found: list[Partition] = []
    for index in range(count):
        raw = table[index * entry_size : index * entry_size + GPT_ENTRY_MIN]
        type_guid = raw[0:16]
        if type_guid == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", raw, 32)
        if last < first:
            raise GuestDataError(f"GPT: partition {index + 1} ends before it starts")
        if len(found) >= limits.max_partitions:
            raise LimitError(f"GPT: more than {limits.max_partitions} partitions")
        add_clipped(
            found,
            f"gpt{index + 1}",
            first * sector,
            (last - first + 1) * sector,
            guid_text(type_guid),
            disk_size,
            guid=guid_text(raw[16:32]),
        )
    return found
