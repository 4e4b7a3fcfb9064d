"""Small hostile guest disks, built with the real tools from a file tree (mkfs.ext4 -d, no mounts).

`Guest` describes the tree: regular files, symlinks and sparse files (a 100 MB grub.cfg costs nothing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from layouts import mkext
from pvboot.kernel.stub import stub_kernel

MIB = 1 << 20
KERNEL = stub_kernel(b"PVBOOT-HOSTILE-KERNEL\n" * 64)  # passes pvboot's kernel check
INITRD = b"PVBOOT-HOSTILE-INITRD\n" * 64
ENTRY = "menuentry 'good' {\n\tlinux /boot/vmlinuz root=/dev/xvda1 ro\n\tinitrd /boot/initrd.img\n}\n"


@dataclass
class Guest:
    """The guest's file tree: contents (str is UTF-8), symlinks, sparse files (data at offset 0)."""

    files: dict[str, bytes | str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    sparse: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # path -> (size, leading data)
    size_mib: int = 0  # 0: fit the tree

    @classmethod
    def with_config(cls, config: str | bytes, path: str = "/boot/grub/grub.cfg") -> Guest:
        """A guest with the standard kernel and initrd and `config` at `path`."""
        return cls(files={"/boot/vmlinuz": KERNEL, "/boot/initrd.img": INITRD, path: config})


def _target(root: Path, path: str) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def build_ext4(work: Path, guest: Guest, name: str = "disk.img") -> Path:
    """A bare ext4 (the whole disk, as `xvda` often is) holding `guest`'s tree."""
    root = work / f"{name}.tree"
    root.mkdir(parents=True)
    total = 0
    for path, data in guest.files.items():
        raw = data.encode() if isinstance(data, str) else data
        _target(root, path).write_bytes(raw)
        total += len(raw)
    for path, (size, head) in guest.sparse.items():
        with open(_target(root, path), "wb") as fh:
            fh.write(head)
            fh.truncate(size)
        total += len(head) + (1 << 16)
    for path, target in guest.links.items():
        os.symlink(target, _target(root, path))
    size = guest.size_mib or max(16, total * 3 // 2 // MIB + 16)
    return mkext("ext4", root, work / name, size * MIB, "-N", "4096")
