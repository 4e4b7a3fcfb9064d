"""pvboot's CLI, as libxl runs it, on every guest disk layout of `layouts.py`.

Each boot is checked against libxl's contract: the answer file's exact bytes, the two output files
(the only files in the output directory, mode 0600) and their contents, by sha256 against the source
tree (never against anything pvboot wrote).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from layouts import INITRD, INITRD_LINK, KERNEL, KERNEL_LINK, LAYOUTS, sha256_file

if TYPE_CHECKING:
    from conftest import LayoutImages, PvbootRunner

ARGS = "root=/dev/xvda1 ro"
PYGRUB = "/usr/lib/xen-4.17/bin/pygrub"
PYGRUB_LAYOUT = "ext4-mbr"  # an MBR primary partition: pygrub 4.17 reads no logical ones

CASES = [
    pytest.param(name, kernel, ramdisk, id=f"{name}-{via}")
    for name, layout in LAYOUTS.items()
    for via, kernel, ramdisk in (("files", KERNEL, INITRD), ("symlinks", KERNEL_LINK, INITRD_LINK))
    if via == "files" or layout.symlinks
]


def boot_argv(
    kernel: str, ramdisk: str, out_dir: Path, image: Path, fmt: str, output: Path | None
) -> list[str]:
    """The request libxl makes, exactly (minus --output when the answer should go to stdout)."""
    argv = ["-q", f"--kernel={kernel}", f"--ramdisk={ramdisk}", f"--args={ARGS}"]
    if output is not None:
        argv.append(f"--output={output}")
    return [*argv, f"--output-format={fmt}", f"--output-directory={out_dir}", str(image)]


def output_files(out_dir: Path) -> tuple[Path, Path]:
    """The kernel and ramdisk files, asserting they are the only entries, regular and mode 0600."""
    names = sorted(os.listdir(out_dir))
    assert len(names) == 2, names
    kernel, ramdisk = (out_dir / n for n in names)
    assert re.fullmatch(r"boot_kernel\.\w{6,}", kernel.name), names
    assert re.fullmatch(r"boot_ramdisk\.\w{6,}", ramdisk.name), names
    for path in (kernel, ramdisk):
        st = path.lstat()
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, (path, oct(st.st_mode))
    return kernel, ramdisk


def assert_booted(
    proc: subprocess.CompletedProcess[bytes],
    answer: Path,
    out_dir: Path,
    digests: dict[str, str],
    kernel: str,
    ramdisk: str,
) -> None:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stderr == b"" and proc.stdout == b"", (proc.stdout, proc.stderr)
    kfile, rfile = output_files(out_dir)
    assert answer.read_bytes() == f"kernel {kfile}\0ramdisk {rfile}\0args {ARGS}\0\0".encode()
    assert sha256_file(kfile) == digests[kernel]
    assert sha256_file(rfile) == digests[ramdisk]


@pytest.mark.parametrize(("layout", "kernel", "ramdisk"), CASES)
def test_boot_simple0(
    layout: str, kernel: str, ramdisk: str, layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path
) -> None:
    """libxl's exact request copies the right kernel and initrd out of each layout and answers simple0."""
    image = layout_images(layout)
    answer, out_dir = tmp_path / "answer", tmp_path / "out"
    answer.touch()
    out_dir.mkdir()
    proc = pvboot(boot_argv(kernel, ramdisk, out_dir, image, "simple0", answer))
    assert_booted(proc, answer, out_dir, layout_images.tree.sha256, kernel, ramdisk)


def _substitute(text: bytes, mapping: dict[Path, Path]) -> bytes:
    for old, new in mapping.items():
        assert text.count(bytes(old)) == 1, (old, text)
        text = text.replace(bytes(old), bytes(new))
    return text


@pytest.mark.skipif(not os.access(PYGRUB, os.X_OK), reason=f"no pygrub 4.17 at {PYGRUB}")
@pytest.mark.parametrize("fmt", ["sxp", "simple", "simple0"])
def test_stdout_matches_pygrub(
    fmt: str, layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path
) -> None:
    """To stdout, pvboot's answer is byte for byte pygrub 4.17's for the same request (file names mapped)."""
    image = layout_images(PYGRUB_LAYOUT)
    digests = layout_images.tree.sha256
    py_dir, pv_dir = tmp_path / "pygrub", tmp_path / "pvboot"
    py_dir.mkdir()
    pv_dir.mkdir()
    theirs = subprocess.run(
        [PYGRUB, *boot_argv(KERNEL, INITRD, py_dir, image, fmt, None)],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert theirs.returncode == 0, theirs.stderr
    ours = pvboot(boot_argv(KERNEL, INITRD, pv_dir, image, fmt, None))
    assert ours.returncode == 0, ours.stderr.decode(errors="replace")
    assert ours.stderr == b""
    py_files, pv_files = output_files(py_dir), output_files(pv_dir)
    for py_file, pv_file, path in zip(py_files, pv_files, (KERNEL, INITRD), strict=True):
        assert sha256_file(py_file) == sha256_file(pv_file) == digests[path]
    assert ours.stdout == _substitute(theirs.stdout, dict(zip(py_files, pv_files, strict=True)))


def test_console_script(layout_images: LayoutImages, pvboot: PvbootRunner, tmp_path: Path) -> None:
    """The installed `pvboot` console script boots like `python -m pvboot` (the one installed next to this
    interpreter, as scripts/install-deps.sh installs it into .venv, else one on PATH)."""
    beside = Path(sys.executable).parent / "pvboot"
    script = str(beside) if os.access(beside, os.X_OK) else shutil.which("pvboot")
    if script is None:
        pytest.skip("the pvboot console script is not installed")
    image = layout_images("bare-ext4")
    answer, out_dir = tmp_path / "answer", tmp_path / "out"
    answer.touch()
    out_dir.mkdir()
    proc = pvboot(boot_argv(KERNEL, INITRD, out_dir, image, "simple0", answer), command=[script])
    assert_booted(proc, answer, out_dir, layout_images.tree.sha256, KERNEL, INITRD)
