"""What MBR and GPT partition tables share: the partition record, exact reads and clipping to the disk.

The tables themselves are `mbr.py` and `gpt.py`, hand-written rather than dissect.volume's: dissect
numbers logical partitions by their slot in the extended chain (GRUB and Linux start them at 5), follows
the EBR chain and the GPT entry count without a bound, and reports GPT partitions one sector short.
These tables are a few fixed structures.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import BinaryIO

from pvboot.disk.layer import Found, Holder
from pvboot.errors import GuestDataError

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


def read_at(stream: BinaryIO, offset: int, size: int) -> bytes:
    """Exactly `size` bytes at `offset`; a short read is a GuestDataError."""
    stream.seek(offset)
    data = stream.read(size)
    if len(data) != size:
        raise GuestDataError(f"partition table: short read at byte {offset}")
    return data


def add_clipped(
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


def as_volumes(holder: Holder, table: list[Partition]) -> list[Found]:
    """A table's partitions as volumes of `holder`, named as GRUB names them (hd0,msdos5)."""
    return [Found(f"{holder.name},{p.label}", p.offset, p.size, part_type=p.type) for p in table]
