"""`--output`, as libxl passes it to a bootloader running as root: an existing regular file (libxl creates
it first) is truncated and written; a symlink is not followed (its target is never truncated), a FIFO
cannot block pvboot, anything but a regular file is refused; and a failed write (a full disk) leaves the
file empty, with one clear error line, a non-zero exit and no kernel or ramdisk file left behind."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from diskbuild import Part, make_disk, marker_initrd, marker_kernel, put

if TYPE_CHECKING:
    from conftest import PvbootRunner


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("builds a disk image with sfdisk and mkfs (run as root in CI)")
    work = tmp_path_factory.mktemp("output")
    tree = work / "tree"
    put(
        tree,
        "/boot/grub/grub.cfg",
        b"menuentry x {\n\tlinux /boot/vmlinuz ro\n\tinitrd /boot/initrd.img\n}\n",
    )
    put(tree, "/boot/vmlinuz", marker_kernel("/boot/vmlinuz"))
    put(tree, "/boot/initrd.img", marker_initrd("/boot/initrd.img"))
    return make_disk(work / "disk.img", [Part(tree)])


def _run(
    pvboot: PvbootRunner, disk: Path, work: Path, output: Path | str, *extra: str
) -> tuple[subprocess.CompletedProcess[bytes], Path]:
    out = work / "out"
    out.mkdir(exist_ok=True)
    argv = [
        "-q",
        *extra,
        f"--output={output}",
        "--output-format=simple0",
        f"--output-directory={out}",
        str(disk),
    ]
    return pvboot(argv), out


def _refused(proc: subprocess.CompletedProcess[bytes], out: Path, message: str) -> None:
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0, stderr
    assert stderr.startswith("pvboot: RuntimeError: ") and stderr.count("\n") == 1, stderr
    assert "internal error" not in stderr and "Traceback" not in stderr
    assert message in stderr, stderr
    assert list(out.iterdir()) == []


def test_an_existing_regular_file_is_truncated_and_written(
    pvboot: PvbootRunner, disk: Path, tmp_path: Path
) -> None:
    answer = tmp_path / "answer"
    answer.write_bytes(b"stale answer " * 1000)
    answer.chmod(0o640)
    proc, out = _run(pvboot, disk, tmp_path, answer)
    assert proc.returncode == 0, proc.stderr
    data = answer.read_bytes()
    assert data.startswith(b"kernel ") and b"stale" not in data
    assert stat.S_IMODE(answer.stat().st_mode) == 0o640  # libxl's file, as libxl made it
    assert len(list(out.iterdir())) == 2


def test_a_missing_file_is_created_private(pvboot: PvbootRunner, disk: Path, tmp_path: Path) -> None:
    answer = tmp_path / "new-answer"
    proc, _ = _run(pvboot, disk, tmp_path, answer)
    assert proc.returncode == 0, proc.stderr
    assert answer.read_bytes().startswith(b"kernel ")
    assert stat.S_IMODE(answer.stat().st_mode) == 0o600


def test_a_symlink_is_not_followed(pvboot: PvbootRunner, disk: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"a root-owned file the guest's admin wants kept")
    answer = tmp_path / "answer"
    answer.symlink_to(victim)
    proc, out = _run(pvboot, disk, tmp_path, answer)
    _refused(proc, out, "is a symbolic link")
    assert victim.read_bytes() == b"a root-owned file the guest's admin wants kept"


def test_a_fifo_never_blocks(pvboot: PvbootRunner, disk: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "answer"
    os.mkfifo(fifo)
    start = time.monotonic()
    proc, out = _run(pvboot, disk, tmp_path, fifo)  # nobody reads it
    _refused(proc, out, "is a FIFO nobody reads")
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        proc, out = _run(pvboot, disk, tmp_path, fifo)  # somebody reads it
        _refused(proc, out, "is not a regular file")
    finally:
        os.close(reader)
    assert time.monotonic() - start < 60


@pytest.mark.parametrize(
    ("target", "message"), [("dir", "is a directory"), ("/dev/null", "not a regular file")]
)
def test_anything_but_a_regular_file_is_refused(
    pvboot: PvbootRunner, disk: Path, tmp_path: Path, target: str, message: str
) -> None:
    output = tmp_path / "dir" if target == "dir" else Path(target)
    if target == "dir":
        output.mkdir()
    proc, out = _run(pvboot, disk, tmp_path, output)
    _refused(proc, out, message)


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of two pages, one of them already used: the answer's second page does not fit."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.decode().strip()}")
    try:
        (mount / "filler").write_bytes(b"f" * 4096)
        yield mount
    finally:
        with contextlib.suppress(OSError):
            subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_leaves_an_empty_answer_and_no_files(
    pvboot: PvbootRunner, disk: Path, tmp_path: Path, tiny_tmpfs: Path
) -> None:
    answer = tiny_tmpfs / "answer"
    answer.touch()  # as libxl does
    proc, out = _run(pvboot, disk, tmp_path, answer, "--args=" + "console=hvc0 " * 600)  # > 4 KiB
    _refused(proc, out, f"cannot write the answer to --output {answer}: No space left on device")
    assert answer.stat().st_size == 0  # the page that did fit was truncated away again
