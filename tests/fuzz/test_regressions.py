"""Every fuzzing finding, as a regression test.

Fixed findings assert the invariant. Findings in code this suite does not own (the config layer) are
`test_regression_config_*`: they assert the intended behaviour; while open they are marked
xfail(strict=True), so they fail loudly (XPASS) once fixed -- then the marker goes.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzz_images import FuzzImage, FuzzImages
from fuzz_targets import signed
from fuzzkit import Mutation, applied, cli_violations, read_at, run_cli, run_inprocess
from guestimg import KERNEL, Guest, build_ext4

BOOT = ({"op": "inspect"}, {"op": "menu"}, {"op": "boot", "entry": None})


def craft(
    img: FuzzImage, label: str, edit: Callable[[bytes], tuple[int, bytes]], resign: bool
) -> list[Mutation]:
    """A mutation of region `label` (FuzzImage.region): `edit(its bytes)` -> (offset in it, new bytes)."""
    region = img.region(label)
    current = read_at(img.image, region.offset, region.length)
    rel, data = edit(current)
    mut = Mutation(region, rel, data, "crafted")
    return signed(mut, current, lambda o, n: read_at(img.image, o, n)) if resign else [mut]


def assert_no_silent_corruption(img: FuzzImage, muts: list[Mutation], tmp_path: Path) -> None:
    """In-process and through the CLI: an error, or the original files, byte for byte."""
    with applied(img.directory, img.image, muts):
        out = run_inprocess(img.image, BOOT)
        res = run_cli(img.image, tmp_path)
    assert out.status in ("ok", "error"), f"{out.status}: {out.message}\n{out.detail}"
    if out.status == "ok":
        assert (out.kernel_sha, out.ramdisk_sha) == (img.expect["kernel"], img.expect["ramdisk"])
    problems = cli_violations(res, tmp_path / "out", img.expect)
    assert not problems, "\n".join(problems)


# -- fixed: checksummed metadata was trusted without its checksum (pvboot/disk/fs/_csum.py) ------------


def test_ext4_inode_flags_flip_is_caught(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """Finding: clearing EXTENTS_FL in the kernel's inode (metadata_csum) made pvboot read i_block as
    block pointers and copy 3 MiB of other blocks, exit 0. Found as `zero at ext-inode:...+0x1c`."""
    img = fuzz_images.get("bare-ext4")

    def edit(raw: bytes) -> tuple[int, bytes]:
        flags = struct.unpack_from("<I", raw, 0x20)[0] & ~0x80000
        return 0x20, struct.pack("<I", flags)

    assert_no_silent_corruption(
        img, craft(img, "ext-inode:/boot/vmlinuz-6.1.0-42-pvboot", edit, resign=False), tmp_path
    )


def test_ext4_dirent_inode_swap_is_caught(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """Finding class: a directory entry's inode number changed to another file's -- the kernel's name
    then named the initrd, copied without complaint. The directory block's checksum tail catches it."""
    img = fuzz_images.get("bare-ext4")
    kernel_name, initrd_name = b"vmlinuz-6.1.0-42-pvboot", b"initrd.img-6.1.0-42-pvboot"

    def edit(raw: bytes) -> tuple[int, bytes]:
        kernel_at, initrd_at = raw.index(kernel_name) - 8, raw.index(initrd_name) - 8
        return kernel_at, raw[initrd_at : initrd_at + 4]

    assert_no_silent_corruption(img, craft(img, "ext-dir:/boot#0", edit, resign=False), tmp_path)


def test_ext4_extent_index_block_flip_is_caught(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """An extent index block (depth-1 tree) with a leaf's start block changed, checksum not updated."""
    img = fuzz_images.get("ext4-frag")

    def edit(raw: bytes) -> tuple[int, bytes]:
        start = struct.unpack_from("<I", raw, 12 + 8)[0]  # the first extent's ee_start_lo
        return 12 + 8, struct.pack("<I", start + 1)

    assert_no_silent_corruption(
        img, craft(img, "ext-extent-node:/boot/vmlinuz*", edit, resign=False), tmp_path
    )


def test_xfs_extent_record_flip_is_caught(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """Finding: one bit of the kernel's extent record (startblock) in an XFS v5 inode shifted the file by
    a block; pvboot copied it, exit 0. The inode CRC catches it."""
    img = fuzz_images.get("xfs-gpt")
    muts = craft(
        img,
        "xfs-inode:/boot/vmlinuz-6.1.0-42-pvboot",
        lambda raw: (0xB0 + 13, bytes([raw[0xB0 + 13] ^ 0x20])),
        False,
    )
    assert_no_silent_corruption(img, muts, tmp_path)


def test_xfs_bmbt_record_flip_is_caught(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """Finding: `bitflip at xfs-bmbt:/boot/vmlinuz...+0xb4c`: a bmap B+tree leaf record's startblock
    flipped, the kernel copied from the wrong blocks. The block's CRC catches it."""
    img = fuzz_images.get("xfs-frag")
    muts = craft(img, "xfs-bmbt:/boot/vmlinuz*", lambda raw: (72 + 13, bytes([raw[72 + 13] ^ 0x20])), False)
    assert_no_silent_corruption(img, muts, tmp_path)


def test_btrfs_extent_item_flip_is_caught(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """Finding: a flipped bit in a file extent item of the file tree (disk_bytenr) made the kernel read
    other bytes; the node's checksum catches it."""
    img = fuzz_images.get("btrfs-zstd")

    def edit(raw: bytes) -> tuple[int, bytes]:
        nritems = struct.unpack_from("<I", raw, 96)[0]
        for i in range(nritems):
            _, ktype, _, data_offset, _ = struct.unpack_from("<QBQII", raw, 101 + 25 * i)
            item = 101 + data_offset
            if ktype == 108 and raw[item + 20] == 1:  # EXTENT_DATA, regular: disk_bytenr at +21
                return item + 21 + 1, bytes([raw[item + 22] ^ 0x10])
        raise AssertionError("no regular file extent in this leaf")

    for leaf in (r.label for r in img.regions if r.label.startswith("btrfs-leaf:256")):
        try:
            muts = craft(img, leaf, edit, resign=False)
        except AssertionError:
            continue
        assert_no_silent_corruption(img, muts, tmp_path)
        return
    pytest.fail("no file extent item in the subvolume's leaves")


def test_unmutated_layouts_still_boot(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """The checksum checks accept every image the real tools make (ext4, XFS v5, Btrfs, fragmented)."""
    for layout in ("bare-ext4", "ext4-frag", "xfs-gpt", "xfs-frag", "btrfs-zstd", "lvm"):
        img = fuzz_images.get(layout)
        out = run_inprocess(img.image, BOOT)
        assert (out.status, out.kernel_sha, out.ramdisk_sha) == (
            "ok",
            img.expect["kernel"],
            img.expect["ramdisk"],
        )


# -- reported to the config layer: the first two are fixed (05da543), the last one is open ------------


def test_regression_config_discover_swallows_limit_error(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """A /boot directory claiming 280 TB (its inode checksum valid): reading it hits DIR_BYTES_MAX, a
    LimitError, which discovery used to catch with every GuestDataError, saying "no boot configuration"
    instead of naming the limit. (`bare-ext4`, /boot inode i_size_high = 0xffff, checksum recomputed.)"""
    img = fuzz_images.get("bare-ext4")
    muts = craft(img, "ext-inode:/boot", lambda raw: (0x6C, b"\xff\xff\x00\x00"), resign=True)
    with applied(img.directory, img.image, muts):
        res = run_cli(img.image, tmp_path)
    assert res.code != 0 and not cli_violations(res, tmp_path / "out")
    assert "exceeds" in res.message or "limit" in res.message, res.message


def test_regression_config_symlink_hops_named(tmp_path: Path) -> None:
    """`linux /boot/l0` where l0 -> l1 -> ... -> l41 -> vmlinuz: the error names the symlink hop limit, as
    with --kernel=/boot/l0 (through grub.cfg it used to say "file `(hd0)/boot/l0' not found")."""
    links = {f"/boot/l{i}": f"l{i + 1}" for i in range(41)} | {"/boot/l41": "vmlinuz"}
    guest = Guest(
        files={"/boot/vmlinuz": KERNEL, "/boot/grub/grub.cfg": "menuentry x { linux /boot/l0 }\n"},
        links=links,
    )
    res = run_cli(build_ext4(tmp_path, guest), tmp_path / "run")
    assert res.code != 0 and not cli_violations(res, tmp_path / "run" / "out")
    assert "symlink hops" in res.message, res.message


def test_regression_config_steps_bound_disk_work(tmp_path: Path) -> None:
    """1M commands of `search --file` through 38 symlink hops took ~20 s (CLI: 22.6 s; past 25 s the
    wall-clock limit ended it) when only commands were charged. Every path component walked costs four
    steps now (pvboot.budget), so max_steps alone bounds such a config to about a second, and the next
    request of the session fails at once with the same error. Checked in-process with a 4 s budget."""
    loops = "".join(f"for v{i} in 0 1 2 3 4 5 6 7 8 9; do\n" for i in range(6))
    config = loops + "search --set=root --file /boot" + "/d" * 38 + "/x\n" + "done\n" * 6
    guest = Guest(files={"/boot/vmlinuz": KERNEL, "/boot/grub/grub.cfg": config}, links={"/boot/d": "."})
    image = build_ext4(tmp_path, guest)
    start = time.monotonic()
    out = run_inprocess(image, BOOT, timeout=4)
    assert out.status in ("ok", "error"), f"{out.status} after {time.monotonic() - start:.1f} s"


def test_regression_kernel_check_hides_disk_errors(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """The kernel's extent block fails its checksum: reading the kernel fails. check_kernel catches that
    GuestDataError as one of the kernel's "problems", so the error reads "kernel ... cannot boot as a Xen
    guest: ext2: extent block N checksum mismatch (--no-kernel-check boots it anyway)" -- but the kernel
    is unreadable, and --no-kernel-check fails too. (Same with the limit test's oversized Btrfs extent.)"""
    img = fuzz_images.get("ext4-frag")
    muts = craft(img, "ext-extent-node:/boot/vmlinuz*", lambda raw: (12 + 8, bytes([raw[12 + 8] ^ 1])), False)
    with applied(img.directory, img.image, muts):
        res = run_cli(img.image, tmp_path)
    assert res.code != 0 and not cli_violations(res, tmp_path / "out"), res.message
    assert "checksum mismatch" in res.message and "--no-kernel-check" not in res.message, res.message
