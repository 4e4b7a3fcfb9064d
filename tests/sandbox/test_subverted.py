"""A subverted reader, through the real CLI (tests/subvert.py): the attacker's code runs in the confined
reader, after enter(), holding what the reader holds. It may read the image it was handed and nothing
else: not another guest's disk (another loop device, a sibling image file), not a terminal of root's
(/dev/pts/N), not /etc/shadow, not the directory of its image, in the default (user namespace) mode and
with --runas alike, on a block device and on a file, with and without Landlock. The legitimate boots
of such images still work."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import pvrun
import subvert
from layouts import KERNEL, loop_device

if TYPE_CHECKING:
    from conftest import LayoutImages

MODES = {"default": (), "runas": ("--runas=4242",)}


@pytest.fixture
def root_only() -> None:
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("loop devices need root and losetup")


@contextlib.contextmanager
def root_terminal() -> Iterator[str]:
    """A pty of root's: /dev/pts/N, owned by root like the admin's own terminal."""
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


@pytest.fixture
def neighbours(layout_images: LayoutImages, tmp_path: Path, root_only: None) -> Iterator[dict[str, str]]:
    """The guest's disk as a loop device over `guest.img`, and what a subverted reader would want: another
    guest's loop device, the file behind its own loop device and the image file next to it, root's
    terminal, /etc/shadow."""
    guest, victim = tmp_path / "guest.img", tmp_path / "victim.img"
    shutil.copyfile(layout_images("ext4-mbr"), guest)
    shutil.copyfile(layout_images("ext4-mbr"), victim)
    with loop_device(guest) as own, loop_device(victim) as other, root_terminal() as pty:
        yield {"loop": own, "file": str(guest), "other loop": other, "sibling": str(victim), "pty": pty}


TARGETS = ("other loop", "file", "sibling", "pty")


@pytest.mark.parametrize("landlock", ["landlock", "no-landlock"])
@pytest.mark.parametrize("mode", list(MODES))
def test_a_subverted_reader_of_a_block_device_reads_only_its_disk(
    neighbours: dict[str, str], mode: str, landlock: str
) -> None:
    targets = [neighbours[t] for t in TARGETS] + ["/etc/shadow"]
    attack = {"open": targets, "listdir": ["/dev", "/dev/pts"], "image": True}
    if landlock == "no-landlock":
        attack["no_landlock"] = True
    found, proc = subvert.run(attack, "-l", *MODES[mode], neighbours["loop"])
    assert found, proc.stderr
    assert found.pop("image") == "read 512", found
    assert set(found.values()) == {"EACCES"}, found


@pytest.mark.parametrize("landlock", ["landlock", "no-landlock"])
@pytest.mark.parametrize("mode", list(MODES))
def test_a_subverted_reader_of_an_image_file_reads_no_neighbour(
    neighbours: dict[str, str], mode: str, landlock: str
) -> None:
    image = neighbours["file"]
    attack = {
        "open": [neighbours["sibling"], image, "/etc/shadow"],
        "listdir": [os.path.dirname(image)],
        "image": True,
    }
    if landlock == "no-landlock":
        attack["no_landlock"] = True
    found, proc = subvert.run(attack, "-l", *MODES[mode], image)
    assert found.pop("image", None) == "read 512", proc.stderr
    assert set(found.values()) == {"EACCES"}, found


@pytest.mark.parametrize("mode", list(MODES))
def test_a_subverted_reader_of_a_qcow2_overlay_holds_its_backing_file_only(
    layout_images: LayoutImages, tmp_path: Path, root_only: None, mode: str
) -> None:
    """The backing file was opened for it (a fd), by name beside the image; nothing else there opens."""
    overlay = layout_images("qcow2-backing")
    for part in overlay.parent.iterdir():
        if part.suffix == ".qcow2":
            shutil.copyfile(part, tmp_path / part.name)
            os.chown(tmp_path / part.name, 4242, 4242)
    (tmp_path / "victim.img").write_bytes(b"another guest's disk")
    os.chmod(tmp_path, 0o755)
    image = tmp_path / overlay.name
    attack = {
        "open": [str(tmp_path / "victim.img"), str(tmp_path / "base.qcow2")],
        "listdir": [str(tmp_path)],
    }
    found, proc = subvert.run(attack, "-l", *MODES[mode], str(image))
    assert found and set(found.values()) == {"EACCES"}, (found, proc.stderr)
    # and honestly: the chain opens and boots, with and without Landlock
    for honest in ({"honest": True}, {"honest": True, "no_landlock": True}):
        found, proc = subvert.run(honest, "-q", "-n", *MODES[mode], str(image))
        assert not found and proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("mode", list(MODES))
def test_a_loop_device_boots(
    neighbours: dict[str, str], layout_images: LayoutImages, tmp_path: Path, mode: str
) -> None:
    """libxl hands over /dev/xvdX or a phy: device: opened before any privilege is dropped, read as a
    device by a reader that can open no other."""
    result = pvrun.boot(Path(neighbours["loop"]), tmp_path / "run", *MODES[mode])
    assert result.code == 0, result.stderr
    assert result.kernel is not None
    assert hashlib.sha256(result.kernel).hexdigest() == layout_images.tree.sha256[KERNEL]
    assert not result.leftover
