"""The filesystem registry (disk/fs/__init__.py): each registered adapter's probe against an image made
by that filesystem's own mkfs, detection in registry order, and probing without importing any parser.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pvboot.disk import fs
from pvboot.disk.fs import ext
from pvboot.errors import GuestDataError, PvbootError
from pvboot.limits import MIB, Limits

PARSERS = ("dissect.btrfs", "dissect.xfs", "dissect.extfs", "dissect.fat", "pycdlib")
MKFS = {  # GRUB's name -> (tool, image size, command); every image is a sparse file
    "btrfs": ("mkfs.btrfs", 128 * MIB, ["mkfs.btrfs", "-q", "-f"]),
    "xfs": ("mkfs.xfs", 300 * MIB, ["mkfs.xfs", "-q", "-f"]),
    "ext2": ("mkfs.ext4", 8 * MIB, ["mkfs.ext4", "-q", "-F"]),
    "fat": ("mkfs.vfat", 8 * MIB, ["mkfs.vfat"]),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One empty filesystem of each registered kind, made by its own tool."""
    base = tmp_path_factory.mktemp("registry")
    out: dict[str, Path] = {}
    for fstype, (tool, size, command) in MKFS.items():
        if shutil.which(tool) is None:
            continue
        path = base / f"{fstype}.img"
        with open(path, "wb") as f:
            f.truncate(size)
        subprocess.run([*command, str(path)], check=True, capture_output=True)
        out[fstype] = path
    if shutil.which("xorriso") is not None:
        (base / "iso-src" / "boot").mkdir(parents=True)
        path = base / "iso9660.img"
        subprocess.run(
            ["xorriso", "-as", "mkisofs", "-quiet", "-o", str(path), str(base / "iso-src")],
            check=True,
            capture_output=True,
        )
        out["iso9660"] = path
    return out


def test_registry_lists_every_adapter_in_detection_order() -> None:
    assert [a.FSTYPE for a in fs.adapters()] == ["btrfs", "xfs", "ext2", "iso9660", "fat"]
    for adapter in fs.adapters():
        assert adapter.REQUIRES.split(".")[0] in ("dissect", "pycdlib")
        assert callable(adapter.probe) and callable(adapter.mount)


@pytest.mark.parametrize("fstype", ["btrfs", "xfs", "ext2", "iso9660", "fat"])
def test_each_probe_recognises_its_own_mkfs_only(images: dict[str, Path], fstype: str) -> None:
    if fstype not in images:
        pytest.skip(f"no tool to make {fstype}")
    with open(images[fstype], "rb") as stream:
        said_yes = [a.FSTYPE for a in fs.adapters() if a.probe(stream)]
        assert said_yes == [fstype]
        assert fs.detect(stream) == fstype
        assert fs.open_filesystem(stream, Limits()).fstype == fstype


def test_detection_follows_the_registry(images: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """An adapter taken out of the list is not detected; one put first wins over a later one."""
    if "ext2" not in images:
        pytest.skip("mkfs.ext4 not installed")
    with open(images["ext2"], "rb") as stream:
        monkeypatch.setattr(fs, "FILESYSTEMS", tuple(m for m in fs.FILESYSTEMS if m != "ext"))
        assert fs.detect(stream) is None
        with pytest.raises(GuestDataError, match="no supported filesystem found"):
            fs.open_filesystem(stream, Limits())


def test_nothing_found_on_zeros() -> None:
    assert fs.detect(io.BytesIO(bytes(128 * 1024))) is None
    assert fs.detect(io.BytesIO(b"")) is None


def test_missing_package_is_named(images: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    if "ext2" not in images:
        pytest.skip("mkfs.ext4 not installed")
    monkeypatch.setattr(ext, "REQUIRES", "dissect.pvboot_absent")
    with open(images["ext2"], "rb") as stream, pytest.raises(PvbootError) as caught:
        fs.open_filesystem(stream, Limits())
    assert "ext2 support needs the Python package dissect.pvboot_absent (ModuleNotFoundError" in str(
        caught.value
    )


def _parsers_loaded(code: str, *args: str) -> list[str]:
    """The parser packages imported by running `code` in a fresh interpreter."""
    script = f"import sys\n{code}\nprint(' '.join(sorted(m for m in sys.modules if m in {PARSERS!r})))"
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        check=True,
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    return done.stdout.split()


def test_probing_imports_no_parser(images: dict[str, Path]) -> None:
    """Detection asks every adapter without importing any parser; mounting imports only its own."""
    paths = [str(p) for p in images.values()]
    code = "from pvboot.disk import fs\nfor p in sys.argv[1:]:\n    fs.detect(open(p, 'rb'))"
    assert _parsers_loaded(code, *paths) == []
    if "ext2" in images:
        code = (
            "from pvboot.disk import fs\nfrom pvboot.limits import Limits\n"
            "fs.open_filesystem(open(sys.argv[1], 'rb'), Limits())"
        )
        assert _parsers_loaded(code, str(images["ext2"])) == ["dissect.extfs"]


def test_preload_imports_every_parser() -> None:
    """What the sandbox's preimport() reaches, for a reader that cannot import once confined."""
    assert _parsers_loaded("import pvboot.disk.fs.preload") == sorted(PARSERS)
