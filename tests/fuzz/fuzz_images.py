"""Private, mutable copies of every layout's image (plus two fragmented ones) and their metadata regions."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fuzz_targets import regions_for
from fuzzkit import Region, sparse_copy

from layouts import (
    GRUB_CFG_TEXT,
    INITRD,
    INITRD_SIZE,
    KERNEL,
    KERNEL_SIZE,
    LAYOUTS,
    MIB,
    mounted,
    run,
    sparse_file,
)
from pvboot.kernel.stub import HEADER as STUB_HEADER
from pvboot.kernel.stub import stub_kernel

# fragmented files (ext4 extent trees of depth 1, XFS bmap B+trees), multi-block and htree directories,
# Btrfs trees with internal nodes
FRAG_LAYOUTS = ("ext4-frag", "xfs-frag", "btrfs-frag")


@dataclass
class FuzzImage:
    """A private, mutable copy of a layout's image, its metadata regions and the files it must boot."""

    layout: str
    image: Path
    regions: list[Region]
    expect: dict[str, str | None]  # sha256 of the kernel and ramdisk a correct boot copies
    symlinks: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        return self.image.parent

    def region(self, label: str) -> Region:
        """The region called `label` (a trailing * matches a prefix: "xfs-bmbt:/boot/vmlinuz*")."""
        for r in self.regions:
            if r.label == label or (label.endswith("*") and r.label.startswith(label[:-1])):
                return r
        raise KeyError(f"{self.layout}: no region {label}")


def _holey(size: int, stride: int) -> bytes:
    """`size` bytes: random in every other `stride`-byte run, zeros (written as holes) in between."""
    out = bytearray(size)
    for pos in range(0, size, 2 * stride):
        chunk = os.urandom(min(stride, size - pos))
        out[pos : pos + len(chunk)] = chunk
    return bytes(out)


def _write_sparse(path: Path, data: bytes) -> None:
    """`data`, its all-zero 4 KiB blocks left as holes (mke2fs -d and cp keep them: many extents)."""
    with open(path, "wb") as fh:
        fh.truncate(len(data))
        for pos in range(0, len(data), 4096):
            block = data[pos : pos + 4096]
            if block.count(0) != len(block):
                fh.seek(pos)
                fh.write(block)


def _frag_tree(base: Path, stride: int, padding: int = 300) -> tuple[Path, dict[str, str]]:
    root = base / "tree"
    (root / "boot" / "grub").mkdir(parents=True)
    (root / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG_TEXT)
    digests = {}
    for path, size in ((KERNEL, KERNEL_SIZE), (INITRD, INITRD_SIZE)):
        data = _holey(size, stride)
        if path == KERNEL:  # a stand-in that passes pvboot's kernel check
            data = stub_kernel(data[: size - STUB_HEADER])
        _write_sparse(root / path.lstrip("/"), data)
        digests[path] = hashlib.sha256(data).hexdigest()
    os.symlink(os.path.basename(KERNEL), root / "boot" / "vmlinuz")
    os.symlink(INITRD, root / "boot" / "initrd.img")
    for i in range(padding):  # enough names for multi-block (ext4) and block/leaf-format (XFS) directories
        (root / "boot" / f"config-padding-entry-with-a-long-name-{i:04d}").write_bytes(b"x")
    return root, digests


def build_frag(layout: str, base: Path) -> tuple[Path, dict[str, str]]:
    base.mkdir(parents=True, exist_ok=True)
    if layout == "ext4-frag":
        root, digests = _frag_tree(base, 64 * 1024)
        image = base / "disk.img"
        run("mkfs.ext4", "-q", "-F", "-b", "4096", "-d", root, image, "32M")
        subprocess.run(["e2fsck", "-fyD", str(image)], capture_output=True, check=False)  # htree indexes
        return image, digests
    if layout == "btrfs-frag":
        root, digests = _frag_tree(base, 16 * 1024, padding=3000)
        image = sparse_file(base / "disk.img", 128 * MIB)
        run("mkfs.btrfs", "-q", "-f", image)
    else:
        root, digests = _frag_tree(base, 16 * 1024, padding=600)
        image = sparse_file(base / "disk.img", 300 * MIB)
        run("mkfs.xfs", "-q", "-f", "-m", "crc=1", image)
    with mounted(image) as mnt:
        run("cp", "-a", f"{root}/.", f"{mnt}/")
    return image, digests


class FuzzImages:
    """`get(layout)`: a FuzzImage, built and located once per session."""

    def __init__(self, base: Path, layout_images: Callable[[str], Path], tree_sha: dict[str, str]) -> None:
        self.base = base
        self.layout_images = layout_images
        self.tree_sha = tree_sha
        self._cache: dict[str, FuzzImage] = {}

    def get(self, layout: str) -> FuzzImage:
        if layout not in self._cache:
            work = self.base / layout
            work.mkdir()
            if layout in FRAG_LAYOUTS:
                if os.geteuid() != 0:
                    pytest.skip("building guest images needs root")
                src, digests = build_frag(layout, self.base / f"{layout}-src")
                symlinks = True
            else:
                src = self.layout_images(layout)
                digests = self.tree_sha
                symlinks = LAYOUTS[layout].symlinks
            image = sparse_copy(src, work / src.name)
            if layout == "qcow2-backing":
                sparse_copy(src.parent / "base.qcow2", work / "base.qcow2")
            regions = regions_for(layout, image, work)
            assert regions, layout
            expect: dict[str, str | None] = {"kernel": digests[KERNEL], "ramdisk": digests[INITRD]}
            self._cache[layout] = FuzzImage(layout, image, regions, expect, symlinks)
        return self._cache[layout]
