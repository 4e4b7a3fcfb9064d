"""pvboot's CLI failing as libxl needs it to, plus `-n` and `-l`.

A failure is: a non-zero exit, exactly one stderr line starting with `pvboot: ` (no traceback), the
--output file (pre-created empty, as libxl does) left empty, and nothing left in --output-directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from layouts import INITRD, INITRD_SIZE, KERNEL, MIB, copy_prefix, data_extents, run

if TYPE_CHECKING:
    from conftest import LayoutImages, PvbootRunner

ARGS = "root=/dev/xvda1 ro"


def boot(
    pvboot: PvbootRunner,
    image: Path | str,
    tmp_path: Path,
    kernel: str = KERNEL,
    ramdisk: str = INITRD,
    env: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[subprocess.CompletedProcess[bytes], Path, Path]:
    """libxl's request on `image`; returns the process, the answer file and the output directory."""
    answer, out_dir = tmp_path / "answer", tmp_path / "out"
    answer.touch()
    out_dir.mkdir()
    argv = [
        "-q",
        *extra,
        f"--kernel={kernel}",
        f"--ramdisk={ramdisk}",
        f"--args={ARGS}",
        f"--output={answer}",
        "--output-format=simple0",
        f"--output-directory={out_dir}",
        str(image),
    ]
    return pvboot(argv, env=env), answer, out_dir


def assert_failed(proc: subprocess.CompletedProcess[bytes], answer: Path, out_dir: Path) -> str:
    """The failure contract; returns the message line."""
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0, stderr
    assert "Traceback" not in stderr, stderr
    assert "internal error" not in stderr, stderr  # a crash that kept the contract is still a bug
    assert stderr.startswith("pvboot: ") and stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    assert proc.stdout == b"", proc.stdout
    assert answer.read_bytes() == b""
    assert os.listdir(out_dir) == []
    return stderr


def test_missing_kernel(layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path) -> None:
    """A --kernel path that is not on the disk fails, naming the path."""
    message = assert_failed(
        *boot(pvboot, layout_images("ext4-logical"), tmp_path, kernel="/boot/vmlinuz-none")
    )
    assert "/boot/vmlinuz-none" in message


def test_missing_ramdisk(layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path) -> None:
    """A --ramdisk path that is not on the disk fails, naming it; the kernel copy is removed too."""
    message = assert_failed(
        *boot(pvboot, layout_images("ext4-logical"), tmp_path, ramdisk="/boot/initrd-none")
    )
    assert "/boot/initrd-none" in message


def find_in_image(image: Path, needle: bytes) -> int:
    """Byte offset of `needle` in the allocated ranges of `image` (searched in 8 MiB windows)."""
    with open(image, "rb") as f:
        for start, length in data_extents(image):
            pos = start
            while pos < start + length:
                f.seek(pos)
                window = f.read(min(8 * MIB + len(needle), start + length - pos))
                hit = window.find(needle)
                if hit >= 0:
                    return pos + hit
                pos += 8 * MIB
    raise AssertionError(f"{image}: the initrd's last block is not stored verbatim")


@pytest.mark.parametrize(
    "layout",
    ["ext4-logical", "ext2-mbr", "xfs-gpt", "ext4-gpt-4k", "fat32-esp", "iso9660", "lvm", "bare-ext4"],
)
def test_truncated_raw_image(
    layout: str, layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path
) -> None:
    """An image cut inside the filesystem, just before the initrd's last block, fails (no short copy)."""
    image = layout_images(layout)
    last_block = (INITRD_SIZE - 1) // 4096 * 4096
    tail = (layout_images.tree.root / INITRD.lstrip("/")).read_bytes()[last_block : last_block + 64]
    cut = find_in_image(image, tail) // 512 * 512
    truncated = tmp_path / "truncated.img"
    copy_prefix(image, truncated, cut)
    assert_failed(*boot(pvboot, truncated, tmp_path))


@pytest.mark.parametrize("layout", ["qcow2", "qcow2-compressed"])
def test_truncated_qcow2(
    layout: str, layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path
) -> None:
    """A qcow2 file cut in the middle (clusters its tables point to are missing) fails."""
    image = layout_images(layout)
    truncated = tmp_path / "truncated.qcow2"
    copy_prefix(image, truncated, image.stat().st_size // 2 // 512 * 512)
    assert_failed(*boot(pvboot, truncated, tmp_path))


def test_random_bytes(pvboot: PvbootRunner, tmp_path: Path) -> None:
    """A file of random bytes is no disk: it fails cleanly."""
    image = tmp_path / "random.img"
    image.write_bytes(os.urandom(4 * MIB))
    assert_failed(*boot(pvboot, image, tmp_path))


def test_empty_file(pvboot: PvbootRunner, tmp_path: Path) -> None:
    """An empty image file fails cleanly."""
    image = tmp_path / "empty.img"
    image.touch()
    assert_failed(*boot(pvboot, image, tmp_path))


def test_nonexistent_image(pvboot: PvbootRunner, tmp_path: Path) -> None:
    """An image path that does not exist fails, naming it."""
    image = tmp_path / "no-such-disk.img"
    message = assert_failed(*boot(pvboot, image, tmp_path))
    assert str(image) in message


@pytest.mark.parametrize("where", ["parent-relative", "absolute"])
def test_qcow2_backing_outside_its_directory(
    where: str, layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path
) -> None:
    """A qcow2 whose backing file lies outside the overlay's directory is refused, although that
    backing file is a complete, bootable disk (so following it would have succeeded)."""
    base = tmp_path / "elsewhere" / "base.qcow2"
    base.parent.mkdir()
    shutil.copyfile(layout_images("qcow2"), base)
    guest = tmp_path / "guest"
    guest.mkdir()
    backing = "../elsewhere/base.qcow2" if where == "parent-relative" else str(base)
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", "overlay.qcow2", cwd=guest)
    message = assert_failed(*boot(pvboot, guest / "overlay.qcow2", tmp_path))
    assert "backing" in message.lower(), message


def _names_limit(message: str, mib: int) -> bool:
    return "PYGRUB_MAX_FILE_SIZE_MB" in message or f"{mib} MiB" in message or str(mib * MIB) in message


def test_max_file_size_kernel(layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path) -> None:
    """PYGRUB_MAX_FILE_SIZE_MB=1 refuses the 3 MiB kernel with a message naming the limit."""
    image = layout_images("ext4-logical")
    message = assert_failed(*boot(pvboot, image, tmp_path, env={"PYGRUB_MAX_FILE_SIZE_MB": "1"}))
    assert _names_limit(message, 1), message


def test_max_file_size_ramdisk(layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path) -> None:
    """PYGRUB_MAX_FILE_SIZE_MB=5 admits the 3 MiB kernel but refuses the 7 MiB initrd; nothing is left."""
    image = layout_images("ext4-logical")
    message = assert_failed(*boot(pvboot, image, tmp_path, env={"PYGRUB_MAX_FILE_SIZE_MB": "5"}))
    assert _names_limit(message, 5), message


def test_max_file_size_above_both(layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path) -> None:
    """PYGRUB_MAX_FILE_SIZE_MB=8 (above both files' sizes) boots normally: the limit counts MiB."""
    proc, _answer, out_dir = boot(
        pvboot, layout_images("ext4-logical"), tmp_path, env={"PYGRUB_MAX_FILE_SIZE_MB": "8"}
    )
    assert proc.returncode == 0, proc.stderr
    assert len(os.listdir(out_dir)) == 2


def test_not_really(layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path) -> None:
    """`-n` checks the files exist but writes none into the output directory."""
    proc, _answer, out_dir = boot(pvboot, layout_images("ext4-logical"), tmp_path, extra=("-n",))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert os.listdir(out_dir) == []


def test_not_really_missing_kernel(layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path) -> None:
    """`-n` still fails (the one-line way) when the kernel is not on the disk."""
    image = layout_images("ext4-logical")
    assert_failed(*boot(pvboot, image, tmp_path, kernel="/boot/vmlinuz-none", extra=("-n",)))


LISTINGS = {
    "ext4-logical": (["hd0,msdos1", "hd0,msdos5"], "hd0,msdos5"),
    "xfs-gpt": (["hd0,gpt1", "hd0,gpt2"], "hd0,gpt2"),
    "lvm": (
        ["hd0,gpt1", r"lvm/pvbtest[0-9a-f]{8}-swap", r"lvm/pvbtest[0-9a-f]{8}-boot"],
        r"lvm/pvbtest[0-9a-f]{8}-boot",
    ),
    "bare-ext4": (["hd0"], "hd0"),
}


@pytest.mark.parametrize("layout", sorted(LISTINGS))
def test_list(layout: str, layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path) -> None:
    """`-l` lists every volume by GRUB name and the grub.cfg on the right one; it writes no files."""
    volumes, home = LISTINGS[layout]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = pvboot(["-l", f"--output-directory={out_dir}", str(layout_images(layout))])
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    for volume in volumes:
        assert re.search(rf"\({volume}\)", text), (volume, text)
    assert any(
        re.search(rf"\({home}\)", line) and "/boot/grub/grub.cfg" in line for line in text.splitlines()
    ), text
    assert os.listdir(out_dir) == []
