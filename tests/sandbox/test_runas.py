"""libxl's restricted mode: `--runas=UID --quiet`, with a disk (and qcow2 backing file) only that uid
may read. The image the toolstack names is opened before the uid changes (XAPI hands over root:disk
0660 devices); a backing file next to it is opened with that uid's access only."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import pvrun
from layouts import INITRD, KERNEL, LAYOUTS

if TYPE_CHECKING:
    from conftest import LayoutImages

OWNER, STRANGER = 4242, 4243


@pytest.fixture
def root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("--runas needs root")


def private_copy(images: list[Path], home: Path, uid: int) -> Path:
    """Copy `images` into `home`, a directory only `uid` may enter, files only `uid` may read."""
    home.mkdir()
    for image in images:
        target = home / image.name
        shutil.copyfile(image, target)
        os.chown(target, uid, uid)
        os.chmod(target, 0o400)
    os.chown(home, uid, uid)
    os.chmod(home, 0o700)
    return home / images[0].name


@pytest.mark.usefixtures("root_only")
@pytest.mark.parametrize("layout", [name for name in LAYOUTS if name != "qcow2-backing"])
def test_runas_boots_a_disk_only_that_uid_reads(
    layout_images: LayoutImages, tmp_path: Path, traversable_tmp: Path, layout: str
) -> None:
    image = private_copy([layout_images(layout)], traversable_tmp / "home", OWNER)
    result = pvrun.boot(image, tmp_path / "run", f"--runas={OWNER}")
    assert result.code == 0, result.stderr
    digests = layout_images.tree.sha256
    assert result.kernel is not None and hashlib.sha256(result.kernel).hexdigest() == digests[KERNEL]
    assert result.ramdisk is not None and hashlib.sha256(result.ramdisk).hexdigest() == digests[INITRD]
    assert not result.leftover


@pytest.mark.usefixtures("root_only")
def test_runas_qcow2_backing_file_is_opened_as_that_uid(
    layout_images: LayoutImages, tmp_path: Path, traversable_tmp: Path
) -> None:
    overlay = layout_images("qcow2-backing")
    images = [overlay, *[p for p in overlay.parent.iterdir() if p.suffix == ".qcow2" and p != overlay]]
    image = private_copy(images, traversable_tmp / "home", OWNER)
    result = pvrun.boot(image, tmp_path / "run", f"--runas={OWNER}")
    assert result.code == 0, result.stderr
    assert result.kernel is not None
    assert hashlib.sha256(result.kernel).hexdigest() == layout_images.tree.sha256[KERNEL]
    # the backing file readable by root only: the overlay opens, its backing file does not
    backing = next(p for p in image.parent.iterdir() if p != image)
    os.chown(backing, 0, 0)
    result = pvrun.boot(image, tmp_path / "run", f"--runas={OWNER}")
    assert result.code != 0
    assert "cannot open backing file" in result.stderr and "Permission denied" in result.stderr
    assert not list((tmp_path / "run" / "out").iterdir())


@pytest.mark.usefixtures("root_only")
def test_runas_reads_the_image_it_is_handed_but_no_sibling(
    layout_images: LayoutImages, tmp_path: Path, traversable_tmp: Path
) -> None:
    """The toolstack names the image (XAPI: a root:disk 0660 device), so it is opened before the uid
    changes and the reader gets the fd; a file next to it (a qcow2 backing file, named by the guest)
    is still opened with the restricted uid's access only."""
    image = private_copy([layout_images("ext4-mbr")], traversable_tmp / "home", OWNER)
    os.chmod(image.parent, 0o711)  # the stranger may enter the directory, not read the image
    result = pvrun.boot(image, tmp_path / "run", f"--runas={STRANGER}")
    assert result.code == 0, result.stderr
    assert result.kernel is not None
    assert hashlib.sha256(result.kernel).hexdigest() == layout_images.tree.sha256[KERNEL]
    overlay = layout_images("qcow2-backing")
    images = [overlay, *[p for p in overlay.parent.iterdir() if p.suffix == ".qcow2" and p != overlay]]
    image = private_copy(images, traversable_tmp / "home2", OWNER)
    os.chmod(image.parent, 0o711)
    result = pvrun.boot(image, tmp_path / "run2", f"--runas={STRANGER}")
    assert result.code != 0
    assert "cannot open backing file" in result.stderr and "Permission denied" in result.stderr
    assert not list((tmp_path / "run2" / "out").iterdir())


def test_runas_as_an_ordinary_user_is_a_usage_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("checks the refusal for non-root callers")
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(1 << 20))
    proc = pvrun.pvboot("-q", f"--runas={os.geteuid() + 1}", str(image))
    assert proc.returncode != 0
    assert b"needs pvboot to be started as root" in proc.stderr


def test_runas_lists_a_grub_legacy_menu_from_an_install_it_cannot_read(
    tmp_path: Path, root_only: None
) -> None:
    """The reader's modules are all loaded before the uid changes when that uid cannot read pvboot's
    own installation: the GRUB-legacy password reader included (it once lived in the console package,
    which the reader does not preload, and `-l` failed with "No module named ...")."""
    from layouts import mkext

    install = tmp_path / "install"
    shutil.copytree(
        Path(pvrun.SRC) / "pvboot", install / "pvboot", ignore=shutil.ignore_patterns("__pycache__")
    )
    os.chmod(install, 0o700)
    tree = tmp_path / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "menu.lst").write_text("password s3cret\ntitle legacy one\n kernel /vmlinuz\n")
    (tree / "vmlinuz").write_bytes(b"a kernel")
    image = mkext("ext4", tree, tmp_path / "legacy.img", 16 << 20)
    env = {**os.environ, "PYTHONPATH": str(install), "PVBOOT_RUN_LOG": "none", "PVBOOT_CACHE_DIR": "none"}
    proc = subprocess.run(
        pvrun.command("-l", f"--runas={OWNER}", str(image)),
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "legacy one" in proc.stdout
