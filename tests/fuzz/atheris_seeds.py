"""Seed inputs of the atheris targets, made by the real tools and cached.

Disk seeds are small guest disks built as tests/layouts.py and tests/fuzz/fuzz_images.py build theirs
(mkfs.ext2/3/4 -d, mkfs.xfs and mkfs.btrfs with a loop mount and cp -a, mkfs.vfat + mcopy, xorriso, sfdisk,
LVM2 with activation off, qemu-img), over a small boot tree (a stub kernel, a newc initrd, grub.cfg, BLS
and extlinux files, relative and absolute symlinks, a file with holes for multi-level block maps, enough
names for multi-block and indexed directories), then encoded as sparse images (atheris_targets). The
internal XFS log, which no reader opens, is left out (it is 2 MiB of an otherwise 70 KiB seed). Config
seeds are the real configs in tests/e2e/xen/menus/ and, when present, ../shared/corpus/ (distribution
tools' output), GRUB-checked scripts of tests/config/grub2/; kernel seeds are tests/kernel/kernel_samples.py's
images compressed by the real compressors, the host's DTBs and the head of its kernel.

The cache is $PVBOOT_ATHERIS_CACHE (default build/atheris/seeds/) under a key that changes with this
file; a target's seeds are built once, under a lock. Building the XFS, Btrfs, LVM and 4K-sector seeds
needs root (loop devices); without it they are left out, with the reason in `SeedSet.missing`.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import importlib.util
import os
import random
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
REPO = TESTS.parent
for _path in (str(REPO / "src"), str(TESTS), str(HERE), str(TESTS / "kernel")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import atheris_targets as at  # noqa: E402
import kernel_samples as ks  # noqa: E402

from layouts import (  # noqa: E402
    GRUB_CFG_TEXT,
    MIB,
    BuildError,
    loop_device,
    lvm_environment,
    mounted,
    partition,
    run,
    sparse_file,
)
from pvboot.kernel.stub import stub_kernel  # noqa: E402

SHARED = REPO.parent / "shared" / "corpus"
MENUS = TESTS / "e2e" / "xen" / "menus"
KVER = "6.1.0-42-pvboot"
CACHE_KEY = hashlib.sha256(Path(__file__).read_bytes() + b"%d" % at.SEED_FORMAT).hexdigest()[:12]


class SeedUnavailable(Exception):
    """A seed cannot be built here (no root, a tool missing); the message says which."""


@dataclass
class SeedSet:
    """Where a target's seeds are, the aux files it needs (qcow2 backing files), its dictionary."""

    target: str
    seeds: Path
    aux: Path
    dictionary: Path
    missing: list[str] = field(default_factory=list)

    def files(self) -> list[Path]:
        return sorted(p for p in self.seeds.iterdir() if p.is_file())

    def backing(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.aux.iterdir())} if self.aux.is_dir() else {}

    def max_len(self) -> int:
        """libFuzzer's -max_len: room to grow over the largest seed (at least 4 KiB)."""
        largest = max((p.stat().st_size for p in self.files()), default=0)
        return max(4096, -(-largest * 5 // 4 // 4096) * 4096)


def cache_root() -> Path:
    return Path(os.environ.get("PVBOOT_ATHERIS_CACHE") or REPO / "build" / "atheris" / "seeds") / CACHE_KEY


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise SeedUnavailable(f"{what} needs root (loop devices)")


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SeedUnavailable(f"needs {', '.join(missing)}")


def _bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


# -- the boot tree ---------------------------------------------------------------------------------------


def boot_tree(base: Path, symlinks: bool = True, names: int = 24) -> Path:
    """The small tree every disk seed holds."""
    root = base / ("tree" if symlinks else "tree-nolinks")
    if root.exists():
        return root
    files = {
        "boot/grub/grub.cfg": GRUB_CFG_TEXT.encode(),
        f"boot/vmlinuz-{KVER}": stub_kernel(_bytes(1, 2000)),
        f"boot/initrd.img-{KVER}": ks.newc({"init": b"#!/bin/sh\n", "etc/fstab": b"\n"}),
        "boot/loader/entries/debian.conf": f"title Debian\nlinux /boot/vmlinuz-{KVER}\n".encode(),
        "boot/extlinux/extlinux.conf": f"DEFAULT d\nLABEL d\n KERNEL /boot/vmlinuz-{KVER}\n".encode(),
        "boot/deep/a/b/c/d/file.txt": b"deep\n",
        "etc/" + "a-rather-long-file-name-" * 8 + "end": b"long\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with open(root / "boot" / "holey", "wb") as fh:  # 12 data runs: extent index / bmap btree / indirect
        for i in range(12):  # (each block holds 16 bytes: a sector of the sparse seed, not a block)
            fh.seek(i * 8192)
            fh.write(_bytes(10 + i, 16).ljust(4096, b"\0"))
    for i in range(names):  # empty files: a name and an inode each, no data
        (root / "boot" / f"config-padding-entry-with-a-long-name-{i:04d}").write_bytes(b"")
    if symlinks:
        os.symlink(f"vmlinuz-{KVER}", root / "boot" / "vmlinuz")
        os.symlink(f"/boot/initrd.img-{KVER}", root / "boot" / "initrd.img")
        os.symlink("boot/vmlinuz", root / "vmlinuz")
        os.symlink("../" * 3 + "x/" * 40 + "slow-symlink-target", root / "boot" / "slow-link")
    return root


# -- disk seeds ------------------------------------------------------------------------------------------


def _ext(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    _need("mkfs.ext2", "mkfs.ext3", "mkfs.ext4", "e2fsck")
    tree = boot_tree(work)
    variants = (
        ("ext2-1k", "mkfs.ext2", ["-b", "1024"], tree, "2M"),
        ("ext3-1k", "mkfs.ext3", ["-b", "1024", "-J", "size=1"], tree, "4M"),
        ("ext4-csum", "mkfs.ext4", ["-b", "4096"], tree, "16M"),
        ("ext4-nocsum-1k", "mkfs.ext4", ["-b", "1024", "-O", "^metadata_csum,^has_journal"], tree, "4M"),
        ("ext4-inline", "mkfs.ext4", ["-I", "256", "-O", "inline_data,^has_journal"], tree, "4M"),
        ("ext4-htree-1k", "mkfs.ext4", ["-b", "1024", "-O", "^metadata_csum,^has_journal"], tree, "8M"),
        ("ext4-htree-csum", "mkfs.ext4", ["-b", "1024", "-O", "^has_journal"], tree, "8M"),
        ("ext4-indirect", "mkfs.ext4", ["-O", "^extent,^64bit,^metadata_csum,^has_journal"], tree, "4M"),
    )  # fmt: skip
    for name, tool, opts, root, size in variants:
        image = work / f"{name}.img"
        run(tool, "-q", "-F", *opts, "-d", root, image, size)
        if "htree" in name:
            subprocess.run(["e2fsck", "-fyD", str(image)], capture_output=True, check=False)
        yield name, at.encode_image(image)


def _xfs(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    _need_root("XFS")
    _need("mkfs.xfs", "xfs_db", "mount", "umount", "cp")
    tree, big = boot_tree(work), boot_tree(work / "big", names=120)
    variants = (
        ("xfs-v5", ["-m", "crc=1"], tree),
        ("xfs-v5-leaf-dirs", ["-m", "crc=1", "-i", "size=1024"], big),
        ("xfs-v4", ["-m", "crc=0"], tree),  # (where the kernel still mounts v4)
    )
    for name, opts, root in variants:
        image = sparse_file(work / f"{name}.img", 300 * MIB)
        proc = subprocess.run(["mkfs.xfs", "-q", "-f", *opts, str(image)], capture_output=True, text=True)
        if proc.returncode != 0:
            continue  # (xfsprogs may refuse v4 one day)
        try:
            with mounted(image) as mnt:
                run("cp", "-a", f"{root}/.", f"{mnt}/")
        except BuildError:
            continue
        geo = run(
            "xfs_db", "-r", "-c", "sb 0", "-c", "p logstart logblocks agblklog agblocks blocksize", image
        )
        g = {k.strip(): int(v) for k, _, v in (line.partition("=") for line in geo.splitlines()) if v}
        start = (g["logstart"] >> g["agblklog"]) * g["agblocks"] + (
            g["logstart"] & ((1 << g["agblklog"]) - 1)
        )
        log = (start * g["blocksize"], (start + g["logblocks"]) * g["blocksize"])
        yield name, at.encode_image(image, skip=(log,))
        image.unlink()


def _btrfs(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    _need_root("Btrfs")
    _need("mkfs.btrfs", "btrfs", "mount", "umount", "cp", "sync")
    tree = boot_tree(work)
    (tree / "boot" / "compressible").write_bytes(b"pvboot compresses well. " * 3000)  # regular extents
    variants = (
        ("btrfs-zstd-subvol", ["-m", "single"], "compress-force=zstd", 128, True),
        ("btrfs-lzo-xxhash", ["-m", "single", "--csum", "xxhash"], "compress-force=lzo", 128, False),
        ("btrfs-zlib-mixed-dup", ["--mixed"], "compress=zlib", 32, False),
    )
    for name, opts, mount_opts, size, subvol in variants:
        image = sparse_file(work / f"{name}.img", size * MIB)
        proc = subprocess.run(["mkfs.btrfs", "-q", "-f", *opts, str(image)], capture_output=True, text=True)
        if proc.returncode != 0:
            continue
        with mounted(image, mount_opts) as mnt:
            dest = mnt
            if subvol:
                run("btrfs", "-q", "subvolume", "create", mnt / "@")
                dest = mnt / "@"
            run("cp", "-a", f"{tree}/.", f"{dest}/")
            if subvol:
                run("btrfs", "-q", "subvolume", "set-default", dest)
            run("sync", "-f", mnt)
        yield name, at.encode_image(image)
        image.unlink()


def _fat(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    _need("mkfs.vfat", "mcopy")
    tree = boot_tree(work, symlinks=False)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    for name, opts, size in (
        ("fat12", ["-F", "12"], 2),
        ("fat16", ["-F", "16"], 16),
        ("fat32", ["-F", "32"], 40),
    ):
        image = sparse_file(work / f"{name}.img", size * MIB)
        run("mkfs.vfat", *opts, "-s", "1", "-n", "PVBOOT", image)
        run("mcopy", "-s", "-Q", "-i", image, tree / "boot", tree / "etc", "::/", env=env)
        yield name, at.encode_image(image)


def _iso(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    _need("xorriso")
    tree = boot_tree(work)
    for name, opts in (
        ("iso-rr-joliet", ["-R", "-J"]),
        ("iso-rr", ["-R"]),
        ("iso-plain", ["-iso-level", "2"]),
    ):
        image = work / f"{name}.iso"
        proc = subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", *opts, "-V", "PVBOOT", "-o", str(image),
                               str(tree)], capture_output=True, text=True)  # fmt: skip
        if proc.returncode == 0:
            yield name, at.encode_image(image)


LINUX_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def _partitions(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    _need("sfdisk", "mkfs.ext2", "mkfs.vfat")
    fs = work / "fs.ext2"
    run("mkfs.ext2", "-q", "-F", "-b", "1024", fs, "512k")
    scripts = {
        "mbr-logical": "label: dos\nstart=2048, size=4M, type=83, bootable\nstart=, type=5\n"
        "start=, size=2M, type=83\nstart=, size=2M, type=82\nstart=, size=2M, type=8e\n",
        "mbr-primaries": "label: dos\nstart=2048, size=2M, type=83\nstart=, size=2M, type=c\n"
        "start=, size=2M, type=ee\nstart=, size=2M, type=83\n",
        "gpt": f"label: gpt\nstart=2048, size=4M, type={LINUX_GUID}, name=root\nstart=, size=2M, "
        "type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
        "start=, size=2M, type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n",
    }
    for name, script in scripts.items():
        disk = sparse_file(work / f"{name}.img", 16 * MIB)
        partition(disk, script)
        with open(fs, "rb") as src, open(disk, "r+b") as dst:
            dst.seek(1 * MIB)
            dst.write(src.read())
        yield name, at.encode_image(disk)
    bare = sparse_file(work / "bare-fat.img", 2 * MIB)
    run("mkfs.vfat", "-F", "12", bare)
    yield "bare-fat", at.encode_image(bare)
    if os.geteuid() == 0 and shutil.which("losetup"):
        disk = sparse_file(work / "gpt-4k.img", 16 * MIB)
        with loop_device(disk, "-b", "4096") as dev:
            partition(
                dev,
                f"label: gpt\nstart=256, size=8M, type={LINUX_GUID}\nstart=, size=4M, type={LINUX_GUID}\n",
            )
        yield "gpt-4k", at.encode_image(disk)


def _lvm(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    _need_root("LVM2")
    _need("lvm", "losetup", "sfdisk")
    env = lvm_environment(work)

    def lvm(*args: str) -> None:
        run("lvm", *args, env=env)

    for name, gpt in (("lvm-whole-disk", False), ("lvm-gpt", True)):
        disk = sparse_file(work / f"{name}.img", 24 * MIB)
        offset, size = 0, 24 * MIB
        if gpt:
            (part,) = partition(
                disk, "label: gpt\nstart=2048, size=20M, type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n"
            )
            offset, size = int(part["start"]) * 512, int(part["size"]) * 512
        vg = "pvbfuzz" + uuid.uuid4().hex[:8]
        with loop_device(disk, "-o", str(offset), "--sizelimit", str(size)) as dev:
            lvm("pvcreate", "-q", "-ff", "-y", dev)
            lvm("vgcreate", "-q", "-s", "1m", vg, dev)
            lvm("lvcreate", "-q", "-an", "-Zn", "-y", "-L", "2m", "-n", "root", vg)
            lvm("lvcreate", "-q", "-an", "-Zn", "-y", "-L", "2m", "-n", "swap-1", vg)
            lvm("lvextend", "-q", "-y", "-L", "+2m", f"{vg}/root")  # two segments
        yield name, at.encode_image(disk)
    shutil.rmtree(env["LVM_SYSTEM_DIR"])


def _qcow2(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    _need("qemu-img", "qemu-io", "sfdisk", "mkfs.ext2")
    raw = sparse_file(work / "disk.raw", 4 * MIB)
    partition(raw, "label: dos\nstart=2048, size=2M, type=83\n")
    fs = work / "fs.ext2"
    mini = work / "mini"
    (mini / "boot" / "grub").mkdir(parents=True)
    (mini / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG_TEXT)
    (mini / "boot" / f"vmlinuz-{KVER}").write_bytes(stub_kernel(_bytes(1, 1000)))
    run("mkfs.ext2", "-q", "-F", "-b", "1024", "-d", mini, fs, "1M")
    with open(fs, "rb") as src, open(raw, "r+b") as dst:
        dst.seek(1 * MIB)
        dst.write(src.read())
    aux = out / "aux"
    aux.mkdir(parents=True, exist_ok=True)
    base = aux / "base.qcow2"
    run("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", raw, base)
    shutil.copyfile(raw, aux / "base.raw")
    variants = (
        ("qcow2-4k", ["-o", "cluster_size=4096"]),
        ("qcow2-512", ["-o", "cluster_size=512"]),
        ("qcow2-v2", ["-o", "cluster_size=4096,compat=0.10"]),
        ("qcow2-zlib", ["-c", "-o", "cluster_size=4096"]),
        ("qcow2-zstd", ["-c", "-o", "cluster_size=4096,compression_type=zstd"]),
    )
    for name, opts in variants:
        image = work / f"{name}.qcow2"
        argv = ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", *opts, str(raw), str(image)]
        if subprocess.run(argv, capture_output=True).returncode == 0:
            yield name, image.read_bytes()
    for name, backing, fmt in (
        ("qcow2-overlay", "base.qcow2", "qcow2"),
        ("qcow2-overlay-raw", "base.raw", "raw"),
    ):
        image = aux / f"{name}.qcow2"
        run(
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-o",
            "cluster_size=4096",
            "-b",
            backing,
            "-F",
            fmt,
            image,
        )
        run("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 3m 8k", "-c", "write -z 3080k 4k", image)
        yield name, image.read_bytes()
        image.unlink()


# -- config seeds ----------------------------------------------------------------------------------------


def _join(*files: bytes) -> bytes:
    return at.SEPARATOR.join(files)


def _read(path: Path) -> bytes:
    return path.read_bytes() if path.is_file() else b""


def _grub_cfgs() -> Iterator[tuple[str, bytes, bytes]]:
    """(name, grub.cfg, grubenv) of every real grub.cfg at hand."""
    yield "layouts", GRUB_CFG_TEXT.encode(), b""
    for path in sorted(MENUS.glob("*.grub.cfg")):
        env = path.with_name(path.name.replace(".grub.cfg", ".grubenv"))
        yield path.name, path.read_bytes(), _read(env)
    for path in sorted((SHARED / "debian12-grub-mkconfig").glob("*/grub.cfg")):
        yield f"debian12-{path.parent.name}", path.read_bytes(), _read(path.parent / "grubenv")
    for path in sorted((SHARED / "xen-examples").glob("*.grub2")):
        yield path.name, path.read_bytes(), b""


def _bls_entries() -> list[bytes]:
    entries = [
        p.read_bytes() for p in sorted((SHARED / "systemd-kernel-install-bls").glob("loader/entries/*"))
    ]
    return entries or [
        b"title Fedora Linux (6.0.7-301.fc37.x86_64) 37\nversion 6.0.7-301.fc37.x86_64\n"
        b"linux /vmlinuz-6.0.7-301.fc37.x86_64\ninitrd /initramfs-6.0.7-301.fc37.x86_64.img\n"
        b"options root=UUID=5a1e0b2c-0000-4000-8000-00000000d0d0 ro\ngrub_users $grub_users\n"
        b"grub_arg --unrestricted\ngrub_class fedora\n"
    ]


def _grub2(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    entries = _bls_entries()
    for name, cfg, env in _grub_cfgs():
        console = (
            b"ls (hd0,msdos1)/boot\ncat /boot/grub/grubenv\necho $default\nlinux /boot/vmlinuz-fuzz\nboot"
        )
        yield name, _join(cfg, env, b"set timeout=0\n", *entries[:2], console)


def _grub2_script(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    for name, cfg, _ in _grub_cfgs():
        yield name, cfg
    spec = importlib.util.spec_from_file_location(
        "_grub2_cases", TESTS / "config" / "grub2" / "test_script_language.py"
    )
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # (the module is a test file: anything it cannot import only costs these seeds)
        return
    for case in getattr(module, "CASES", []):
        yield f"grub-case-{case.name}", case.script.replace("@D@", "/d").encode()


def _bls(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    entries = _bls_entries()
    loader = b"default *6.1.0-20*\ntimeout 3\nconsole-mode keep\neditor no\n"
    yield "kernel-install", _join(*entries[:3], *[b""] * (3 - len(entries[:3])), loader)
    yield "kernel-install-saved", _join(*entries[:2], b"", b"default @saved\ntimeout menu-force\n")


def _extlinux(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    paths = [
        *sorted((SHARED / "debian12-u-boot-update").glob("*/extlinux.conf")),
        *sorted(MENUS.glob("*.extlinux.conf")),
        *sorted((SHARED / "xen-examples").glob("*.extlinux")),
    ]
    for path in paths:
        yield f"{path.parent.name}-{path.name}", _join(path.read_bytes(), b"", b"")
    yield (
        "include",
        _join(
            b"UI menu.c32\nPROMPT 0\nMENU TITLE Boot\nTIMEOUT 50\nDEFAULT l1\nINCLUDE inc.cfg\n"
            b"MENU BEGIN sub\n"
            b"LABEL s1\n  MENU LABEL sub entry\n  LINUX ../vmlinuz-s\n  APPEND root=/dev/xvda1\nMENU END\n",
            b"LABEL l1\n  KERNEL /boot/vmlinuz-1\n  INITRD /boot/initrd-1,/boot/initrd-2\n  FDT /boot/dtb\n"
            b"  APPEND console=hvc0 initrd=/boot/initrd-3\nLABEL l2\n  MENU DEFAULT\n  LOCALBOOT 0\n",
            b"",
        ),
    )


def _legacy(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(MENUS.glob("*.grub.conf")):
        yield path.name, _join(path.read_bytes(), b"", b"")
    yield (
        "debian-menu.lst",
        _join(
            b"default saved\ntimeout 5\nfallback 1\npassword --md5 $1$abc$def\n\n"
            b"title Debian GNU/Linux, kernel 2.6.26-2-xen-amd64\nroot (hd0,0)\n"
            b"kernel /boot/vmlinuz-2.6.26-2-xen-amd64 root=/dev/xvda1 ro console=hvc0\n"
            b"initrd /boot/initrd.img-2.6.26-2-xen-amd64\nsavedefault\n\n"
            b"title Other\nlock\nroot (hd0,1)\nkernel (hd0,0)/vmlinuz\nconfigfile /boot/grub/other.lst\n",
            b"title chained\nroot (hd0)\nchainloader +1\n",
            b"",
        ),
    )


# -- kernel seeds ----------------------------------------------------------------------------------------


def _kernel(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    elf = ks.make_elf()
    yield "elf-pv-pvh", elf
    yield "elf-pvh", ks.make_elf(ks.ElfSpec(notes=ks.pv_notes(pv=False)))
    yield "elf32", ks.make_elf(ks.ElfSpec(bits=32, machine=ks.EM_386, entry=0xC0100000,
                                          loads=[(0xC0100000, 0x100000, 0x100000)]))  # fmt: skip
    yield "elf-notes-in-section", ks.make_elf(ks.ElfSpec(notes_in="section"))
    yield (
        "elf-xen-guest",
        ks.make_elf(
            ks.ElfSpec(
                notes_in="none", xen_guest=b"GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xffffffff80000000"
            )
        ),
    )
    yield "stub", stub_kernel(_bytes(2, 1000))
    for codec in ("gzip", "bzip2", "xz", "lzma", "zstd", "lz4", "lzo"):
        if codec in ks.CODEC_TOOLS and not ks.have_tool(ks.CODEC_TOOLS[codec]):
            continue
        yield f"bzimage-{codec}", ks.bzimage_of(elf, codec, fast=True)
    yield "bzimage-old-protocol", ks.make_bzimage(b"\0" * 64, version=0x0204)
    yield "gzip-elf", gzip.compress(elf, mtime=0)
    yield "arm64", ks.arm64_image(8192)
    yield "arm-zimage", ks.arm_zimage()
    for path in sorted(Path("/boot").glob("vmlinuz-*"))[:1]:
        with open(path, "rb") as fh:
            yield "host-kernel-head", fh.read(64 << 10)


def _decompress(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    payloads = {"elf": ks.make_elf(), "cpio": ks.newc({"init": b"#!/bin/sh\n" * 50})}
    for index, codec in enumerate(at.CODECS):
        if codec in ks.CODEC_TOOLS and not ks.have_tool(ks.CODEC_TOOLS[codec]):
            continue
        for name, data in payloads.items():
            yield f"{codec}-{name}", bytes([index]) + ks.compress(data, codec, fast=True)


def _initrd(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    _need("cpio", "gzip", "xz", "zstd", "bzip2")
    tree = work / "initramfs"
    (tree / "etc").mkdir(parents=True)
    (tree / "init").write_text("#!/bin/sh\nexec /sbin/init\n")
    (tree / "etc" / "fstab").write_text("/dev/xvda1 / ext4 defaults 0 1\n")
    names = "\n".join(["init", "etc", "etc/fstab"]) + "\n"
    archives = {}
    for fmt in ("newc", "crc", "odc", "bin"):
        archives[fmt] = subprocess.run(["cpio", "-o", "-H", fmt, "--quiet"], input=names.encode(), cwd=tree,
                                       capture_output=True, check=True).stdout  # fmt: skip
        yield f"cpio-{fmt}", archives[fmt]
    for tool, args in (("gzip", ["-9n"]), ("xz", ["--check=crc32"]), ("zstd", ["-q"]), ("bzip2", []),
                       ("lz4", ["-l"]), ("lzop", [])):  # fmt: skip
        if shutil.which(tool):
            data = subprocess.run(
                [tool, *args, "-c"], input=archives["newc"], capture_output=True, check=True
            )
            yield f"newc-{tool}", data.stdout
    yield "zero-padded", b"\0" * 1024 + archives["newc"]
    yield "double-gzip", gzip.compress(gzip.compress(archives["newc"], mtime=0), mtime=0)
    image = work / "initrd.ext2"
    run("mkfs.ext2", "-q", "-F", "-b", "1024", image, "64k")
    yield "ext2-image", image.read_bytes()[:4096]


def _dtb(work: Path, out: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(Path("/usr/share/qemu").glob("*.dtb")):
        yield path.name, path.read_bytes()
    for path in sorted(Path("/usr/lib").glob("linux-image-*/**/*.dtb"))[:4]:
        yield path.name, path.read_bytes()
    yield "handmade", at.small_fdt()


BUILDERS: dict[str, Callable[[Path, Path], Iterator[tuple[str, bytes]]]] = {
    "ext": _ext,
    "xfs": _xfs,
    "btrfs": _btrfs,
    "fat": _fat,
    "iso9660": _iso,
    "partitions": _partitions,
    "lvm": _lvm,
    "qcow2": _qcow2,
    "grub2": _grub2,
    "grub2-script": _grub2_script,
    "bls": _bls,
    "extlinux": _extlinux,
    "grub-legacy": _legacy,
    "kernel": _kernel,
    "decompress": _decompress,
    "initrd": _initrd,
    "dtb": _dtb,
}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def seed_set(target: str) -> SeedSet:
    """The target's seeds, built on first use (raises SeedUnavailable when none can be built here)."""
    base = cache_root() / target
    done = base / "DONE"
    with _locked(cache_root() / f".{target}.lock"):
        if not done.exists():
            if base.exists():
                shutil.rmtree(base)
            (base / "seeds").mkdir(parents=True)
            work = base / "work"
            work.mkdir()
            missing: list[str] = []
            try:
                for name, data in BUILDERS[target](work, base):
                    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
                    (base / "seeds" / f"{safe}.seed").write_bytes(data)
            except (SeedUnavailable, BuildError) as exc:
                missing.append(str(exc))
            finally:
                shutil.rmtree(work, ignore_errors=True)
            (base / f"{target}.dict").write_text(at.dictionary(at.TARGETS[target]))
            if not any((base / "seeds").iterdir()):  # nothing to cache: try again next time
                shutil.rmtree(base)
                raise SeedUnavailable(f"{target}: no seeds ({'; '.join(missing) or 'the builder made none'})")
            done.write_text("\n".join(missing))
    missing = [line for line in done.read_text().splitlines() if line]
    seeds = SeedSet(target, base / "seeds", base / "aux", base / f"{target}.dict", missing)
    if not seeds.files():
        raise SeedUnavailable(f"{target}: no seeds ({'; '.join(missing) or 'the builder made none'})")
    return seeds


if __name__ == "__main__":  # build (or show) every target's seeds: python tests/fuzz/atheris_seeds.py
    for name in sys.argv[1:] or list(BUILDERS):
        try:
            s = seed_set(name)
            sizes = [p.stat().st_size for p in s.files()]
            print(f"{name}: {len(sizes)} seeds, {sum(sizes) >> 10} KiB, max_len {s.max_len()} ({s.seeds})")
        except SeedUnavailable as exc:
            print(f"{name}: unavailable: {exc}")
