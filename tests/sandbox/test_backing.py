"""A qcow2 header the guest controls names a backing file beside the image: pvboot follows it only when
the admin declared the disk qcow2 (--format=qcow2), and then opens it with the reader's own access only,
never anything but a regular file (no FIFO, no device node, no symlink)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import pvrun

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")


def overlay_naming(directory: Path, backing: str) -> Path:
    image = directory / "guest.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "raw", str(image), "64M"],
        check=True,
    )
    return image


@needs_qemu_img
def test_a_fifo_named_as_backing_file_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    image = overlay_naming(tmp_path, "pipe")
    proc = pvrun.pvboot("-l", "--format=qcow2", str(image), timeout=60)
    assert proc.returncode != 0
    assert b"cannot open backing file 'pipe'" in proc.stderr and b"not a regular file" in proc.stderr


@needs_qemu_img
def test_a_device_named_as_backing_file_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(tmp_path / "null", 0o600 | 0o020000, os.makedev(1, 3))  # a character device, like /dev/null
    image = overlay_naming(tmp_path, "null")
    proc = pvrun.pvboot("-l", "--format=qcow2", str(image), timeout=60)
    assert proc.returncode != 0
    assert b"cannot open backing file 'null'" in proc.stderr


@needs_qemu_img
def test_a_symlink_named_as_backing_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("/etc/passwd")
    image = overlay_naming(tmp_path, "link")
    proc = pvrun.pvboot("-l", "--format=qcow2", str(image), timeout=60)
    assert proc.returncode != 0
    assert b"cannot open backing file 'link': it is a symlink" in proc.stderr


QCOW2_HEADER_BYTES = 106  # a v2 header (72 bytes + backing format extension) and the name at 96


@needs_qemu_img
def test_a_raw_disk_with_a_planted_qcow2_header_cannot_reach_its_neighbour(tmp_path: Path) -> None:
    """The attack: a guest on a raw disk writes a qcow2 header naming the image next to its own (another
    guest's disk) into its MBR's boot code. Probing would open that neighbour as the backing file and
    boot, or copy, its files into this guest. Without --format=qcow2 the backing file is refused,
    naming the way out; --format=raw reads the disk as what it is and boots it."""
    if shutil.which("mkfs.ext4") is None or shutil.which("sfdisk") is None:
        pytest.skip("building the guest disk needs mkfs.ext4 and sfdisk")
    from diskbuild import Part, make_disk, marker_kernel, put

    tree = tmp_path / "tree"
    put(tree, "/boot/vmlinuz", marker_kernel("/boot/vmlinuz"))
    put(tree, "/boot/grub/grub.cfg", b"menuentry 'own' {\n linux /boot/vmlinuz ro\n}\n")
    disk = make_disk(tmp_path / "guest.img", [Part(tree)], "dos")
    (tmp_path / "victim.img").write_bytes(disk.read_bytes())  # any bootable neighbour
    header = tmp_path / "header.qcow2"
    size = disk.stat().st_size
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-u", "-b", "victim.img",
         "-F", "raw", str(header), str(size)],
        check=True,
    )  # fmt: skip
    planted = header.read_bytes()[:QCOW2_HEADER_BYTES]
    assert planted[96:106] == b"victim.img"
    with open(disk, "r+b") as fh:
        mbr = bytearray(fh.read(512))
        mbr[:QCOW2_HEADER_BYTES] = planted  # the boot code area: the partition table stays intact
        fh.seek(0)
        fh.write(mbr)

    proc = pvrun.pvboot("-n", "-q", str(disk), timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pvboot: "), lines
    assert "backing file ('victim.img')" in lines[0] and "--format=qcow2" in lines[0], lines[0]

    proc = pvrun.pvboot("-n", "-q", "--format=raw", "--output-format=json", str(disk), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert b'"kernel_source": "(hd0,msdos1)/boot/vmlinuz"' in proc.stdout
