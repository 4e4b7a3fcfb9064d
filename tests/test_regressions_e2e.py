"""Cases real Xen (tests/e2e/xen) caught, as quick image tests with the real tools.

1. Fedora's GRUB (the one with `blscfg`) resolves `default` as rhboot's get_entry_number_helper does:
   ids, then titles, then a number only when nothing follows it; a BLS id whose machine-id starts with
   a digit must name its entry, not be read as a number (upstream 2.06 would read `3f2a…` as 3).
2. Ubuntu-style Btrfs: the root subvolume `@` holds /boot and the default subvolume is left at the
   top level, so GRUB's config is /@/boot/grub/grub.cfg and its paths start with /@/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from diskbuild import Part, make_disk, marker_initrd, marker_kernel, put
from pvrun import boot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

MID = "3f2a6b1c9d8e4f00a1b2c3d4e5f60718"
FEDORA_CFG = """if [ -f ${config_directory}/grubenv ]; then
  load_env -f ${config_directory}/grubenv
elif [ -s $prefix/grubenv ]; then
  load_env
fi
set default="${saved_entry}"
insmod blscfg
blscfg
"""


def _bls(version: str, options: str) -> str:
    return (
        f"title Fedora Linux ({version}) 37 (Thirty Seven)\nversion {version}\n"
        f"linux /vmlinuz-{version}\ninitrd /initramfs-{version}.img\noptions {options}\n"
    )


def test_fedora_blscfg_saved_entry_with_digit_machine_id(tmp_path: Path) -> None:
    boot_tree = tmp_path / "boot"
    put(boot_tree, "/grub2/grub.cfg", FEDORA_CFG.encode())
    env = "# GRUB Environment Block\n"
    env += f"saved_entry={MID}-6.1.0-10.fc37.x86_64\nkernelopts=root=/dev/xvda2 ro e2e=1\n"
    put(boot_tree, "/grub2/grubenv", env.ljust(1024, "#").encode())
    for version in ("6.1.0-20.fc37.x86_64", "6.1.0-10.fc37.x86_64"):
        put(boot_tree, f"/loader/entries/{MID}-{version}.conf", _bls(version, "$kernelopts").encode())
        put(boot_tree, f"/vmlinuz-{version}", marker_kernel(f"/vmlinuz-{version}"))
        put(boot_tree, f"/initramfs-{version}.img", marker_initrd(f"/initramfs-{version}.img"))
    root_tree = tmp_path / "root"
    (root_tree / "boot").mkdir(parents=True)
    image = make_disk(tmp_path / "disk.img", [Part(boot_tree), Part(root_tree)], "gpt")
    result = boot(image, tmp_path)
    assert result.code == 0, result.stderr
    assert result.kernel == marker_kernel("/vmlinuz-6.1.0-10.fc37.x86_64")
    assert result.answer["args"].split() == ["root=/dev/xvda2", "ro", "e2e=1"]


@pytest.mark.skipif(shutil.which("mkfs.btrfs") is None, reason="needs btrfs-progs")
def test_ubuntu_btrfs_root_subvolume_at_top_level(tmp_path: Path) -> None:
    image = tmp_path / "btrfs.img"
    with open(image, "wb") as fh:
        fh.truncate(160 << 20)
    subprocess.run(["mkfs.btrfs", "-q", "-f", str(image)], check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    try:
        subprocess.run(["btrfs", "-q", "subvolume", "create", str(mnt / "@")], check=True)
        cfg = "set default=0\nmenuentry 'Ubuntu' {\n"
        cfg += (
            " linux /@/boot/vmlinuz-6 root=/dev/xvda ro rootflags=subvol=@\n initrd /@/boot/initrd.img-6\n}\n"
        )
        put(mnt / "@", "/boot/grub/grub.cfg", cfg.encode())
        put(mnt / "@", "/boot/vmlinuz-6", marker_kernel("/@/boot/vmlinuz-6"))
        put(mnt / "@", "/boot/initrd.img-6", marker_initrd("/@/boot/initrd.img-6"))
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    result = boot(image, tmp_path)
    assert result.code == 0, result.stderr
    assert result.kernel == marker_kernel("/@/boot/vmlinuz-6")
    assert result.ramdisk == marker_initrd("/@/boot/initrd.img-6")
    assert result.answer["args"].split() == ["root=/dev/xvda", "ro", "rootflags=subvol=@"]
