"""The GPT volume system (disk/gpt.py) against tables written by sfdisk: `gpt<slot>` names with empty
slots keeping their numbers, offsets, type GUIDs, and the entry-array bounds."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from layouts import ESP_GUID, LINUX_GUID, MIB, partition, sparse_file
from pvboot.disk.volumes import GuestDisk
from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import GPT_MAX_ENTRIES, Limits

pytestmark = pytest.mark.skipif(shutil.which("sfdisk") is None, reason="sfdisk not installed")


def _gpt(tmp_path: Path) -> tuple[Path, list[dict[str, int | str]]]:
    disk = sparse_file(tmp_path / "gpt.img", 32 * MIB)
    script = (
        "label: gpt\n"
        f"{disk}1 : start=2048, size=4M, type={ESP_GUID}\n"
        f"{disk}3 : start=, size=8M, type={LINUX_GUID}\n"  # slot 2 stays empty
        f"{disk}4 : start=, size=2M, type={LINUX_GUID}\n"
    )
    return disk, partition(disk, script)


def test_slots_offsets_and_types(tmp_path: Path) -> None:
    disk, parts = _gpt(tmp_path)
    found = GuestDisk(str(disk), Limits())
    try:
        assert [v.name for v in found.volumes] == ["hd0,gpt1", "hd0,gpt3", "hd0,gpt4"]
        for volume, part in zip(found.volumes, parts, strict=True):
            assert (volume.offset, volume.size) == (int(part["start"]) * 512, int(part["size"]) * 512)
            assert volume.part_type == str(part["type"]).lower()
    finally:
        found.close()


def _header_field(disk: Path, offset: int, fmt: str, value: int) -> None:
    """Rewrite one field of the primary GPT header (its CRC is not checked: neither does GRUB)."""
    with open(disk, "r+b") as raw:
        raw.seek(512 + offset)
        raw.write(struct.pack(fmt, value))


def test_entry_bounds(tmp_path: Path) -> None:
    disk, _ = _gpt(tmp_path)
    with pytest.raises(LimitError, match="more than 1 partitions"):
        GuestDisk(str(disk), Limits(max_partitions=1))
    _header_field(disk, 80, "<I", GPT_MAX_ENTRIES + 1)  # number of entries
    with pytest.raises(LimitError, match="partition entries exceeds the limit"):
        GuestDisk(str(disk), Limits())
    _header_field(disk, 84, "<I", 100)  # entry size, not a multiple of 8
    with pytest.raises(GuestDataError, match="bad partition entry size 100"):
        GuestDisk(str(disk), Limits())
