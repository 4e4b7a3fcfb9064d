"""Small guest disks for config tests, built with the real tools (mkfs.ext4 -d, mkfs.vfat + mcopy, sfdisk).

No mounts: each filesystem is made from a directory tree and written at its partition's offset.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from layouts import mkext
from pvboot.errors import NotFoundError

if TYPE_CHECKING:
    from pvboot.config.source import HostDirFiles

GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


@dataclass
class Part:
    """One partition to build: a tree, its filesystem and identity."""

    tree: Path
    fs: str = "ext4"  # ext4 or vfat
    uuid: str | None = None
    label: str | None = None
    size_mib: int = 0  # 0: fit the tree


def _tree_mib(tree: Path) -> int:
    total = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    return total // (1 << 20)


def make_fs(part: Part, out: Path) -> int:
    """Build the filesystem image `out`; returns its size in MiB."""
    size = part.size_mib or (_tree_mib(part.tree) * 13 // 10 + 16)
    out.unlink(missing_ok=True)
    if part.fs == "ext4":
        options = [*(["-U", part.uuid] if part.uuid else []), *(["-L", part.label] if part.label else [])]
        mkext("ext4", part.tree, out, size << 20, *options, block_size=None)
    elif part.fs == "vfat":
        size = max(size, 40)
        cmd = ["mkfs.vfat", "-C"]
        if part.uuid:
            cmd += ["-i", part.uuid.replace("-", "")]
        if part.label:
            cmd += ["-n", part.label]
        subprocess.run([*cmd, str(out), str(size * 1024)], check=True, stdout=subprocess.DEVNULL)
        env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
        entries = [str(p) for p in part.tree.iterdir()]
        if entries:
            subprocess.run(["mcopy", "-s", "-Q", "-i", str(out), *entries, "::/"], check=True, env=env)
    else:
        raise ValueError(part.fs)
    return size


def make_disk(out: Path, parts: list[Part], label: str = "dos") -> Path:
    """A disk labelled `dos` or `gpt` whose partitions 1.. hold `parts` (label 'none': a bare fs)."""
    work = out.parent / (out.name + ".parts")
    work.mkdir(parents=True, exist_ok=True)
    try:
        images = []
        for index, part in enumerate(parts):
            img = work / f"p{index}.img"
            images.append((img, make_fs(part, img)))
        if label == "none":
            shutil.move(str(images[0][0]), out)
            return out
        total = 1 + sum(size for _, size in images) + 1
        with open(out, "wb") as fh:
            fh.truncate(total << 20)
        lines = [f"label: {label}"]
        start = 2048
        for (_, size), part in zip(images, parts, strict=True):
            if label == "gpt":
                kind = GPT_ESP if part.fs == "vfat" else GPT_LINUX
            else:
                kind = "c" if part.fs == "vfat" else "83"
            lines.append(f"start={start}, size={size * 2048}, type={kind}")
            start += size * 2048
        subprocess.run(["sfdisk", "-q", str(out)], input="\n".join(lines) + "\n", text=True, check=True)
        offset = 1
        for img, size in images:
            subprocess.run(
                [
                    "dd",
                    f"if={img}",
                    f"of={out}",
                    "bs=1M",
                    f"seek={offset}",
                    "conv=notrunc,sparse",
                    "status=none",
                ],
                check=True,
            )
            offset += size
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def marker_kernel(path: str) -> bytes:
    """Contents of a stand-in kernel: a minimal Xen PV/PVH ELF (pvboot checks kernels) whose body names
    its own path, so a test can tell which file was copied."""
    from pvboot.kernel.stub import stub_kernel

    return stub_kernel(f"PVBOOT-TEST-KERNEL:{path}\n".encode())


def marker_initrd(path: str) -> bytes:
    return f"PVBOOT-TEST-INITRD:{path}\n".encode()


def put(tree: Path, path: str, data: bytes) -> None:
    target = tree / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def config_tree(root: Path, files: dict[str, str]) -> HostDirFiles:
    """`files` (absolute path -> text) written under `root`, seen as a config's volume."""
    from pvboot.config.source import HostDirFiles

    for path, text in files.items():
        put(root, path, text.encode())
    return HostDirFiles(root)


class NoFiles:
    """A config volume with no files (what the GRUB legacy access-rule tests read from)."""

    def read(self, path: str) -> str:
        raise NotFoundError(path)

    def listdir(self, path: str) -> list[str]:
        raise NotFoundError(path)

    def exists(self, path: str) -> bool:
        return False


LEGACY = """timeout 5
password --md5 $1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1
title one
  kernel /vmlinuz-1 ro
title two
  password topsecret
  kernel /vmlinuz-2 ro
title three
  lock
  kernel /vmlinuz-3 ro
"""
