"""GuestDisk's volumes (disk/volumes.py): GRUB's names, their order, and the worklist over the registered
volume systems, on disks made by sfdisk, mkfs.* and lvm.

Expected names and offsets come from sfdisk's and lvm's own reports of what they wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from layouts import LVM_GUID, MIB, loop_device, lvm_environment, mkext, partition, place, run, sparse_file
from pvboot.disk import gpt, lvm, mbr, volumes
from pvboot.disk.layer import Found, Holder
from pvboot.disk.volumes import VOLUME_SYSTEMS, GuestDisk
from pvboot.errors import LimitError
from pvboot.limits import Limits

LIMITS = Limits()
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices need root")


def names(disk: GuestDisk) -> list[str]:
    return [v.name for v in disk.volumes]


def sfdisk_starts(image: Path) -> dict[str, int]:
    """sfdisk's partitions as {node suffix number: start byte}."""
    table = json.loads(run("sfdisk", "-J", image))["partitiontable"]
    sector = int(table.get("sectorsize", 512))
    return {re.sub(r".*?(\d+)$", r"\1", p["node"]): int(p["start"]) * sector for p in table["partitions"]}


def test_registry_order() -> None:
    """Partition tables first (GPT before MBR, whose protective entry a GPT disk also has), then LVM."""
    assert (gpt, mbr, lvm) == VOLUME_SYSTEMS
    assert [s.WHOLE_DISK for s in VOLUME_SYSTEMS] == [True, True, False]


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("ext4-logical", ["hd0,msdos1", "hd0,msdos5"]),
        ("ext4-mbr", ["hd0,msdos1"]),
        ("xfs-gpt", ["hd0,gpt1", "hd0,gpt2"]),
        ("fat32-esp", ["hd0,gpt1"]),
        ("bare-ext4", ["hd0"]),
        ("btrfs-zstd", ["hd0"]),
        ("iso9660", ["hd0"]),
    ],
)
def test_names_order_and_offsets(
    layout_images: Callable[[str], Path], layout: str, expected: list[str]
) -> None:
    image = layout_images(layout)
    with_table = expected != ["hd0"]
    starts = sfdisk_starts(image) if with_table else {}
    disk = GuestDisk(str(image), LIMITS)
    try:
        assert names(disk) == expected
        for volume in disk.volumes:
            if with_table:
                number = re.sub(r".*?(\d+)$", r"\1", volume.name)
                assert volume.offset == starts[number], volume.name
            else:
                assert (volume.offset, volume.size) == (0, image.stat().st_size)
            assert volume.runs == ()
        assert [v.name for v in disk.filesystems()] == [expected[-1]]
    finally:
        disk.close()


def test_lvm_names_aliases_and_order(layout_images: Callable[[str], Path]) -> None:
    """The PV's partition, then its LVs in metadata order, each with its lvmid/ alias."""
    disk = GuestDisk(str(layout_images("lvm")), LIMITS)
    try:
        part, swap, boot = disk.volumes
        assert part.name == "hd0,gpt1" and part.fstype is None and part.error is None
        vg = swap.name.removeprefix("lvm/").removesuffix("-swap")
        assert vg.startswith("pvbtest") and boot.name == f"lvm/{vg}-boot"
        for lv in (swap, boot):
            (alias,) = lv.aliases
            assert re.fullmatch(r"lvmid/[\w-]{38}/[\w-]{38}", alias), alias
        assert [v.name for v in disk.filesystems()] == [boot.name]
    finally:
        disk.close()


# -- FAT's boot sector against the MBR ------------------------------------------------------------------


def test_bare_fat_whose_boot_sector_passes_for_an_mbr(tmp_path: Path) -> None:
    """mkfs.vfat on the whole disk, its boot code area rewritten so that the sector also parses as an MBR
    (boot flags 0, one slot in use): the FAT probe decides, as GRUB's msdos partmap refuses a FAT BPB."""
    if shutil.which("mkfs.vfat") is None:
        pytest.skip("mkfs.vfat not installed")
    image = sparse_file(tmp_path / "fat.img", 16 * MIB)
    run("mkfs.vfat", "-F", "16", "-n", "BAREFAT", image)
    with open(image, "r+b") as raw:
        raw.seek(446)
        raw.write(bytes(64))
        raw.seek(446 + 4)
        raw.write(b"\x0c")  # a slot of type FAT32-LBA...
        raw.seek(446 + 8)
        raw.write((1).to_bytes(4, "little") + (100).to_bytes(4, "little"))  # ...at LBA 1, 100 sectors
    sector0 = image.read_bytes()[:512]
    assert mbr.looks_like_mbr(sector0)
    disk = GuestDisk(str(image), LIMITS)
    try:
        assert names(disk) == ["hd0"]
        assert disk.volumes[0].fstype == "fat" and disk.volumes[0].label == "BAREFAT"
    finally:
        disk.close()


# -- the worklist: a volume found inside a volume is scanned again ----------------------------------------


def _lvm_on_lvm(work: Path) -> tuple[Path, str, str]:
    """GPT partition -> PV of VG `outer` -> LV `inner` -> PV of VG `inner` -> LV `boot` holding ext4.

    The inner PV is created on a loop device over the outer LV's bytes on the disk (linear, one segment),
    since device-mapper is not available here.
    """
    tree = work / "tree"
    (tree / "boot").mkdir(parents=True)
    (tree / "boot" / "nested.txt").write_text("LV in a PV in an LV\n")
    fs = mkext("ext4", tree, work / "fs.ext4", 8 * MIB)
    disk = sparse_file(work / "disk.img", 64 * MIB)
    (part,) = partition(disk, f"label: gpt\nstart=2048, size=60M, type={LVM_GUID}\n")
    part_offset, part_size = int(part["start"]) * 512, int(part["size"]) * 512
    env = lvm_environment(work)
    tag = uuid.uuid4().hex[:8]
    outer, inner = f"pvbouter{tag}", f"pvbinner{tag}"

    def lvm_run(*args: str) -> str:
        return run("lvm", *args, env=env)

    def first_byte(dev: str, vg: str, lv: str) -> int:
        pe_start = int(lvm_run("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start", dev))
        ranges = lvm_run("lvs", "--noheadings", "-o", "seg_pe_ranges", f"{vg}/{lv}").strip()
        extent = int(lvm_run("vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_extent_size", vg))
        return pe_start + int(ranges.split(":")[1].split("-")[0]) * extent

    with loop_device(disk, "-o", str(part_offset), "--sizelimit", str(part_size)) as dev:
        lvm_run("pvcreate", "-q", "-ff", "-y", dev)
        lvm_run("vgcreate", "-q", "-s", "4m", outer, dev)
        lvm_run("lvcreate", "-q", "-an", "-Zn", "-y", "-L", "4m", "-n", "pad", outer)
        lvm_run("lvcreate", "-q", "-an", "-Zn", "-y", "-L", "32m", "-n", "inner", outer)
        inner_offset = part_offset + first_byte(dev, outer, "inner")
    with loop_device(disk, "-o", str(inner_offset), "--sizelimit", str(32 * MIB)) as dev:
        lvm_run("pvcreate", "-q", "-ff", "-y", dev)
        lvm_run("vgcreate", "-q", "-s", "1m", inner, dev)
        lvm_run("lvcreate", "-q", "-an", "-Zn", "-y", "-L", "16m", "-n", "boot", inner)
        boot_offset = inner_offset + first_byte(dev, inner, "boot")
    place(fs, disk, boot_offset)
    return disk, outer, inner


@needs_root
def test_lvm_inside_lvm_is_scanned_again(tmp_path: Path) -> None:
    if shutil.which("lvm") is None or shutil.which("sfdisk") is None:
        pytest.skip("needs lvm and sfdisk")
    image, outer, inner = _lvm_on_lvm(tmp_path)
    disk = GuestDisk(str(image), LIMITS)
    try:
        # each volume's children follow it, before its next sibling
        assert names(disk) == ["hd0,gpt1", f"lvm/{outer}-pad", f"lvm/{outer}-inner", f"lvm/{inner}-boot"]
        boot = disk.volume(f"lvm/{inner}-boot")
        assert boot.tree().read_small("/boot/nested.txt", 100) == b"LV in a PV in an LV\n"
        # its runs are disk offsets: the bytes there are the LV's bytes
        raw = image.read_bytes()
        boot.stream.seek(0)
        head = boot.stream.read(1 * MIB)
        (vol_offset, disk_offset, length), *_ = boot.runs
        assert vol_offset == 0 and length >= 1 * MIB and boot.offset == disk_offset
        assert raw[disk_offset : disk_offset + 1 * MIB] == head
    finally:
        disk.close()


@needs_root
def test_nesting_is_bounded(layout_images: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Volumes at the nesting bound are listed but not scanned: the PV's LVs vanish at a bound of 1."""
    monkeypatch.setattr(volumes, "DISK_MAX_NESTING", 1)
    disk = GuestDisk(str(layout_images("lvm")), LIMITS)
    try:
        assert names(disk) == ["hd0,gpt1"]
    finally:
        disk.close()


@needs_root
def test_volume_count_is_bounded(
    layout_images: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(volumes, "DISK_MAX_VOLUMES", 1)
    with pytest.raises(LimitError, match="more than 1 volumes"):
        GuestDisk(str(layout_images("xfs-gpt")), LIMITS)


# -- the registry is what the scan uses -------------------------------------------------------------------


class _Halves:
    """A made-up volume system for the test: a holder whose first sector starts with HALVES splits
    into two volumes after that sector."""

    NAME = "halves"
    WHOLE_DISK = False

    @staticmethod
    def probe(holder: Holder) -> bool:
        holder.stream.seek(0)
        return holder.stream.read(6) == b"HALVES"

    @staticmethod
    def scan(holder: Holder, limits: Limits) -> list[Found]:
        half = (holder.size - 512) // 2
        return [Found(f"{holder.name}/{i}", 512 + i * half, half) for i in (0, 1)]


@needs_root
def test_registered_volume_system_is_used_and_its_volumes_scanned(
    layout_images: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A volume system added to the registry is sought on the whole disk, and the volumes it finds are
    scanned again: an LVM PV (the lvm layout's partition, copied) inside its second half is found."""
    pv = layout_images("lvm")
    start, size = next(iter(sfdisk_starts(pv).values())), 44 * MIB
    image = sparse_file(tmp_path / "halves.img", 512 + 2 * size)
    with open(image, "r+b") as out, open(pv, "rb") as src:
        out.write(b"HALVES")
        src.seek(start)
        out.seek(512 + size)
        out.write(src.read(size))
    monkeypatch.setattr(volumes, "VOLUME_SYSTEMS", (*VOLUME_SYSTEMS, _Halves))
    disk = GuestDisk(str(image), LIMITS)
    try:
        found = names(disk)
        assert found[:3] == ["hd0", "hd0/0", "hd0/1"]
        assert [n.rsplit("-", 1)[1] for n in found[3:]] == ["swap", "boot"]
        boot = disk.volumes[-1]
        assert boot.fstype == "ext2" and boot.runs[0][1] == boot.offset > 512 + size
    finally:
        disk.close()
    monkeypatch.setattr(volumes, "VOLUME_SYSTEMS", (gpt, mbr))  # without LVM: the LVs are not found
    disk = GuestDisk(str(pv), LIMITS)
    try:
        assert names(disk) == ["hd0,gpt1"]
    finally:
        disk.close()
