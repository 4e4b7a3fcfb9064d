"""A qcow2 header the guest controls names a backing file beside the image: the reader opens it with its
own access only, and never anything but a regular file (no FIFO, no device node, no symlink)."""

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
    proc = pvrun.pvboot("-l", str(image), timeout=60)
    assert proc.returncode != 0
    assert b"cannot open backing file 'pipe'" in proc.stderr and b"not a regular file" in proc.stderr


@needs_qemu_img
def test_a_device_named_as_backing_file_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(tmp_path / "null", 0o600 | 0o020000, os.makedev(1, 3))  # a character device, like /dev/null
    image = overlay_naming(tmp_path, "null")
    proc = pvrun.pvboot("-l", str(image), timeout=60)
    assert proc.returncode != 0
    assert b"cannot open backing file 'null'" in proc.stderr


@needs_qemu_img
def test_a_symlink_named_as_backing_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("/etc/passwd")
    image = overlay_naming(tmp_path, "link")
    proc = pvrun.pvboot("-l", str(image), timeout=60)
    assert proc.returncode != 0
    assert b"cannot open backing file 'link': it is a symlink" in proc.stderr
