"""config/source.py: the file access of the flat config readers. A host directory standing for a guest
volume (pygrub's --isconfig) must never let a config's path leave it, nor read past the limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pvboot.config.source import HostDirFiles, dirname, join
from pvboot.errors import LimitError, NotFoundError
from pvboot.limits import Limits


def test_paths_resolve_as_a_boot_loader_resolves_them() -> None:
    assert join("/boot/extlinux", "vmlinuz") == "/boot/extlinux/vmlinuz"
    assert join("/boot/extlinux/", "/vmlinuz") == "/vmlinuz"  # absolute names stand alone
    assert dirname("/boot/grub/menu.lst") == "/boot/grub" and dirname("/menu.lst") == "/"


def test_a_host_directory_is_the_volume_and_nothing_outside_it(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "secret"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "menu.lst").write_text("title a\n")
    outside.write_text("host secret\n")
    os.symlink(outside, root / "boot" / "link")
    files = HostDirFiles(root)
    assert files.read("/boot/menu.lst") == "title a\n" and files.read("boot/menu.lst") == "title a\n"
    assert files.listdir("/boot") and files.exists("/boot/menu.lst") and not files.exists("/nope")
    for escape in ("/../secret", "/boot/../../secret", "/boot/link"):
        with pytest.raises(NotFoundError, match="outside the config directory"):
            files.read(escape)
        assert not files.exists(escape)
    with pytest.raises(NotFoundError):
        files.read("/boot/absent")


def test_a_host_directory_keeps_the_limits(tmp_path: Path) -> None:
    (tmp_path / "big.cfg").write_bytes(b"x" * 2000)
    for i in range(12):
        (tmp_path / f"f{i}").write_text("")
    files = HostDirFiles(tmp_path, Limits(max_config_size=1000, max_dir_entries=10))
    with pytest.raises(LimitError, match="config size limit"):
        files.read("/big.cfg")
    with pytest.raises(LimitError, match="more than 10 directory entries"):
        files.listdir("/")
