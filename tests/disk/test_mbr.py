"""The MBR volume system (disk/mbr.py) against tables written by sfdisk: GRUB's numbering (slots 1-4,
logical partitions from 5 along the EBR chain), offsets and types as sfdisk reports them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from layouts import MIB, partition, sparse_file
from pvboot.disk import mbr
from pvboot.disk.stream import window
from pvboot.disk.volumes import GuestDisk
from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import Limits

pytestmark = pytest.mark.skipif(shutil.which("sfdisk") is None, reason="sfdisk not installed")

SCRIPT = (
    "label: dos\n"
    "start=2048, size=4M, type=83, bootable\n"
    "start=, size=4M, type=82\n"
    "start=, type=5\n"
    "start=, size=2M, type=83\n"  # logical: msdos5...
    "start=, size=3M, type=8e\n"
    "start=, size=1M, type=c\n"
)


def _table(tmp_path: Path, script: str = SCRIPT) -> tuple[Path, list[dict[str, int | str]]]:
    disk = sparse_file(tmp_path / "mbr.img", 32 * MIB)
    return disk, partition(disk, script)


def test_numbering_offsets_and_types(tmp_path: Path) -> None:
    disk, parts = _table(tmp_path)
    expected = [p for p in parts if p["type"] != "5"]  # the extended container is not a volume
    found = GuestDisk(str(disk), Limits())
    try:
        assert [v.name for v in found.volumes] == [
            "hd0,msdos1", "hd0,msdos2", "hd0,msdos5", "hd0,msdos6", "hd0,msdos7"
        ]  # fmt: skip
        for volume, part in zip(found.volumes, expected, strict=True):
            assert (volume.offset, volume.size) == (int(part["start"]) * 512, int(part["size"]) * 512)
            assert volume.part_type == f"{int(str(part['type']), 16):02x}"
    finally:
        found.close()


def test_probe_and_chain_loop(tmp_path: Path) -> None:
    disk, parts = _table(tmp_path)
    size = disk.stat().st_size
    with open(disk, "rb") as raw:
        holder = _Holder("hd0", size, window(raw, 0, size))
        assert mbr.probe(holder)
        assert len(mbr.scan(holder, Limits())) == 5
    extended = next(p for p in parts if p["type"] == "5")
    ebr = int(extended["start"]) * 512
    with open(disk, "r+b") as raw:  # the first EBR's link now points at itself
        raw.seek(ebr + 446 + 16 + 8)
        raw.write((0).to_bytes(4, "little"))
    with pytest.raises(GuestDataError, match="extended partition chain loops"):
        GuestDisk(str(disk), Limits())
    with pytest.raises(LimitError, match="logical partitions"):
        GuestDisk(str(disk), Limits(max_partitions=0))


def test_not_an_mbr(tmp_path: Path) -> None:
    disk = sparse_file(tmp_path / "zero.img", 1 * MIB)
    with open(disk, "rb") as raw:
        assert not mbr.probe(_Holder("hd0", MIB, window(raw, 0, MIB)))


class _Holder:
    """The part of a volume a volume system reads."""

    def __init__(self, name: str, size: int, stream: object) -> None:
        self.name, self.size, self.stream = name, size, stream
