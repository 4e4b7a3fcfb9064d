"""Guest disk layouts built with the real tools (mkfs, sfdisk, LVM, xorriso, qemu-img) from one file tree.

Every layout holds the same tree (see `make_tree`): a kernel and a larger initrd of random bytes, a
relative symlink `/boot/vmlinuz` and an absolute symlink `/boot/initrd.img` (except on FAT, which has
none) and a GRUB 2 `grub.cfg`. Filesystems are built as sparse files and then placed at their
partition's (or logical volume's) offset, so no partition ever has to be mounted through the disk.

Building needs root (loop mounts for XFS and Btrfs, loop devices for 4096-byte sectors and LVM) and
never needs device-mapper: LVM runs with activation disabled and its own throw-away configuration
directory, so the host's LVM state is left as it was.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pvboot.kernel.stub import HEADER as STUB_HEADER
from pvboot.kernel.stub import stub_kernel

MIB = 1 << 20
KVER = "6.1.0-42-pvboot"
KERNEL = f"/boot/vmlinuz-{KVER}"
INITRD = f"/boot/initrd.img-{KVER}"
KERNEL_LINK = "/boot/vmlinuz"
INITRD_LINK = "/boot/initrd.img"
GRUB_CFG = "/boot/grub/grub.cfg"
# Odd sizes: the last block of each file is partial. Both fit the 32 MiB filesystems below.
KERNEL_SIZE = 3 * MIB + 1234
INITRD_SIZE = 7 * MIB + 4321
RUN = 256 * 1024

LINUX_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LVM_GUID = "E6D6D379-F507-44C2-A23C-238F2A3DF928"

GRUB_CFG_TEXT = f"""\
set default=0
set timeout=5
menuentry 'Debian GNU/Linux, with Linux {KVER}' --class debian {{
\tlinux\t{KERNEL} root=/dev/xvda1 ro quiet
\tinitrd\t{INITRD}
}}
"""


class BuildError(RuntimeError):
    """A tool failed while building a layout; the message holds its command and stderr."""


def run(*cmd: str | os.PathLike[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a tool, raising BuildError with its stderr when it fails; returns its stdout."""
    argv = [os.fspath(c) for c in cmd]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(argv)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in bounded chunks (outputs can be a GiB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def random_payload(size: int) -> bytes:
    """Random bytes in alternating 256 KiB runs of base64-encoded and raw randomness.

    Base64 runs compress, raw runs do not, so compressing layouts (Btrfs compress-force, qcow2 -c) hold
    both compressed and uncompressed extents/clusters of the same file. (A compressible run comes first:
    Btrfs writes the rest of a 512 KiB write chunk uncompressed once one 128 KiB piece fails to shrink.)
    """
    out = bytearray()
    raw = False
    while len(out) < size:
        n = min(RUN, size - len(out))
        out += os.urandom(n) if raw else base64.b64encode(os.urandom(n))[:n]
        raw = not raw
    return bytes(out)


@dataclass(frozen=True)
class Tree:
    """The source tree every layout is built from, and the digests of its two boot files."""

    root: Path
    fat_root: Path  # the same without symlinks, for FAT
    sha256: dict[str, str]  # guest path (and its symlink) -> sha256 hex of the original bytes


def make_tree(base: Path) -> Tree:
    """Write the boot tree under `base`/tree (and a symlink-free copy under `base`/tree-fat)."""
    root, fat = base / "tree", base / "tree-fat"
    digests: dict[str, str] = {}
    for top in (root, fat):
        (top / "boot" / "grub").mkdir(parents=True)
        (top / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG_TEXT)
    for path, size in ((KERNEL, KERNEL_SIZE), (INITRD, INITRD_SIZE)):
        # the kernel is a stand-in that passes pvboot's kernel check: random bytes in a minimal PV ELF
        data = random_payload(size) if path != KERNEL else stub_kernel(random_payload(size - STUB_HEADER))
        for top in (root, fat):
            (top / path.lstrip("/")).write_bytes(data)
        digests[path] = hashlib.sha256(data).hexdigest()
    os.symlink(f"vmlinuz-{KVER}", root / KERNEL_LINK.lstrip("/"))  # relative
    os.symlink(INITRD, root / INITRD_LINK.lstrip("/"))  # absolute: resolved inside the guest
    digests[KERNEL_LINK] = digests[KERNEL]
    digests[INITRD_LINK] = digests[INITRD]
    return Tree(root, fat, digests)


# -- helpers ------------------------------------------------------------------------------------------


def sparse_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def data_extents(path: Path) -> Iterator[tuple[int, int]]:
    """(offset, length) of the allocated ranges of a sparse file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                return
            end = os.lseek(fd, start, os.SEEK_HOLE)
            yield start, end - start
            pos = end
    finally:
        os.close(fd)


def place(src: Path, dst: Path, offset: int) -> None:
    """Copy the data of sparse file `src` into `dst` at byte `offset`, keeping holes holes."""
    with open(src, "rb") as fin, open(dst, "r+b") as fout:
        for start, length in data_extents(src):
            fin.seek(start)
            fout.seek(offset + start)
            left = length
            while left:
                chunk = fin.read(min(left, 8 * MIB))
                fout.write(chunk)
                left -= len(chunk)


def copy_prefix(src: Path, dst: Path, length: int) -> None:
    """A sparse copy of the first `length` bytes of `src` (a truncated image)."""
    sparse_file(dst, length)
    with open(src, "rb") as fin, open(dst, "r+b") as fout:
        for start, size in data_extents(src):
            end = min(start + size, length)
            if start >= end:
                break
            fin.seek(start)
            fout.seek(start)
            fout.write(fin.read(end - start))


def partition(target: Path | str, script: str) -> list[dict[str, int | str]]:
    """Write a partition table with sfdisk; returns sfdisk's partitions (start/size in its sectors)."""
    proc = subprocess.run(
        ["sfdisk", "-q", "--no-reread", "--no-tell-kernel", os.fspath(target)],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BuildError(f"sfdisk {target} -> {proc.returncode}: {proc.stderr.strip()}")
    table = json.loads(run("sfdisk", "-J", target))["partitiontable"]
    return list(table["partitions"])


def mkext(kind: str, tree: Path, path: Path, size: int, *options: str, block_size: int | None = 4096) -> Path:
    """An ext2/ext4 filesystem image of `size` bytes populated from `tree` (mke2fs -d keeps symlinks):
    the one way tests make ext filesystems from a tree (`options`: -U, -L, -N ...; `block_size` None:
    mke2fs's own choice for the size)."""
    block = ["-b", str(block_size)] if block_size else []
    run(f"mkfs.{kind}", "-q", "-F", *block, *options, "-d", tree, path, f"{size // 1024}k")
    return path


@contextlib.contextmanager
def loop_device(image: Path, *opts: str) -> Iterator[str]:
    dev = run("losetup", "-f", "--show", *opts, image).strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


@contextlib.contextmanager
def mounted(image: Path, options: str = "") -> Iterator[Path]:
    mnt = Path(tempfile.mkdtemp(prefix="mnt-", dir=image.parent))
    run("mount", "-o", "loop" + (f",{options}" if options else ""), image, mnt)
    try:
        yield mnt
    finally:
        run("umount", mnt)
        mnt.rmdir()


def _copy_tree(tree: Path, dest: Path) -> None:
    run("cp", "-a", f"{tree}/.", f"{dest}/")


# -- builders: (tree, work directory, images already built) -> image path -----------------------------

Builder = Callable[[Tree, Path, Callable[[str], Path]], Path]


def build_ext4_logical(tree: Tree, work: Path, _get: Callable[[str], Path]) -> Path:
    """MBR: an empty primary, an extended partition, and ext4 in the first logical one (msdos5)."""
    fs = mkext("ext4", tree.root, work / "fs.ext4", 32 * MIB)
    disk = sparse_file(work / "disk.img", 48 * MIB)
    script = "label: dos\nstart=2048, size=4M, type=83\nstart=, type=5\nstart=, size=32M, type=83\n"
    parts = partition(disk, script)
    logical = next(p for p in parts if str(p["node"]).endswith("5"))
    place(fs, disk, int(logical["start"]) * 512)
    fs.unlink()
    return disk


def _mbr_primary(kind: str, tree: Tree, work: Path) -> Path:
    fs = mkext(kind, tree.root, work / f"fs.{kind}", 32 * MIB)
    disk = sparse_file(work / "disk.img", 34 * MIB)
    (part,) = partition(disk, "label: dos\nstart=2048, size=32M, type=83, bootable\n")
    place(fs, disk, int(part["start"]) * 512)
    fs.unlink()
    return disk


def build_ext2_mbr(tree: Tree, work: Path, _get: Callable[[str], Path]) -> Path:
    """MBR with ext2 in the one primary partition."""
    return _mbr_primary("ext2", tree, work)


def build_ext4_mbr(tree: Tree, work: Path, _get: Callable[[str], Path]) -> Path:
    """MBR with ext4 in the one primary partition: what pygrub 4.17 itself can read."""
    return _mbr_primary("ext4", tree, work)


def build_xfs_gpt(tree: Tree, work: Path, _get: Callable[[str], Path]) -> Path:
    """GPT: XFS v5 (crc=1) in partition 2, after a small empty one."""
    fs = sparse_file(work / "fs.xfs", 300 * MIB)
    run("mkfs.xfs", "-q", "-f", "-m", "crc=1", fs)
    with mounted(fs) as mnt:
        _copy_tree(tree.root, mnt)
    disk = sparse_file(work / "disk.img", 306 * MIB)
    parts = partition(
        disk, f"label: gpt\nstart=2048, size=4M, type={LINUX_GUID}\nstart=, size=300M, type={LINUX_GUID}\n"
    )
    place(fs, disk, int(parts[1]["start"]) * 512)
    fs.unlink()
    return disk


def build_ext4_gpt_4k(tree: Tree, work: Path, _get: Callable[[str], Path]) -> Path:
    """GPT written for 4096-byte logical sectors (header at byte 4096), ext4 in partition 1."""
    fs = mkext("ext4", tree.root, work / "fs.ext4", 32 * MIB)
    disk = sparse_file(work / "disk.img", 36 * MIB)
    with loop_device(disk, "-b", "4096") as dev:
        (part,) = partition(dev, f"label: gpt\nstart=256, size=32M, type={LINUX_GUID}\n")
    place(fs, disk, int(part["start"]) * 4096)
    fs.unlink()
    return disk


def build_btrfs_zstd(tree: Tree, work: Path, _get: Callable[[str], Path]) -> Path:
    """Bare Btrfs mounted compress-force=zstd; the files live in subvolume `@`, set as the default."""
    disk = sparse_file(work / "disk.img", 128 * MIB)
    run("mkfs.btrfs", "-q", "-f", disk)
    with mounted(disk, "compress-force=zstd") as mnt:
        run("btrfs", "-q", "subvolume", "create", mnt / "@")
        _copy_tree(tree.root, mnt / "@")
        run("btrfs", "-q", "subvolume", "set-default", mnt / "@")
        run("sync", "-f", mnt)
    return disk


def build_fat32_esp(tree: Tree, work: Path, _get: Callable[[str], Path]) -> Path:
    """GPT with a FAT32 EFI system partition holding /boot (no symlinks: FAT has none)."""
    fs = sparse_file(work / "fs.vfat", 64 * MIB)
    run("mkfs.vfat", "-F", "32", "-s", "1", fs)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    run("mcopy", "-s", "-Q", "-i", fs, tree.fat_root / "boot", "::/", env=env)
    disk = sparse_file(work / "disk.img", 66 * MIB)
    (part,) = partition(disk, f"label: gpt\nstart=2048, size=64M, type={ESP_GUID}\n")
    place(fs, disk, int(part["start"]) * 512)
    fs.unlink()
    return disk


def build_iso9660(tree: Tree, work: Path, _get: Callable[[str], Path]) -> Path:
    """ISO9660 with Rock Ridge (symlinks, long names) and Joliet."""
    disk = work / "disk.iso"
    run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "PVBOOT", "-o", disk, tree.root)
    return disk


def lvm_environment(work: Path) -> dict[str, str]:
    """The environment for running `lvm` on loop devices here: a private lvm.conf under `work` with no
    activation, udev, lock daemon, hints or metadata backups (device-mapper does not work here)."""
    confdir = work / "lvm-etc"
    confdir.mkdir()
    (confdir / "lvm.conf").write_text(
        f'global {{ activation = 0 use_lvmlockd = 0 locking_dir = "{confdir}" }}\n'
        'devices { use_devicesfile = 0 obtain_device_list_from_udev = 0 hints = "none" }\n'
        "activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }\n"
        "backup { backup = 0 archive = 0 }\n"
    )
    return {**os.environ, "LVM_SYSTEM_DIR": str(confdir), "LVM_SUPPRESS_FD_WARNINGS": "1"}


def build_lvm(tree: Tree, work: Path, _get: Callable[[str], Path]) -> Path:
    """GPT partition -> LVM2 PV -> VG with LVs `swap` then `boot`; ext4 at the boot LV's first extent.

    LVM runs against a loop device over the partition with activation off and a private
    LVM_SYSTEM_DIR (no backups, archives, hints or devices file on the host); the loop device is
    detached before returning.
    """
    fs = mkext("ext4", tree.root, work / "fs.ext4", 32 * MIB)
    disk = sparse_file(work / "disk.img", 48 * MIB)
    (part,) = partition(disk, f"label: gpt\nstart=2048, size=44M, type={LVM_GUID}\n")
    part_offset, part_size = int(part["start"]) * 512, int(part["size"]) * 512
    env = lvm_environment(work)
    vg = "pvbtest" + uuid.uuid4().hex[:8]
    with loop_device(disk, "-o", str(part_offset), "--sizelimit", str(part_size)) as dev:

        def lvm(*args: str) -> str:
            return run("lvm", *args, env=env)

        lvm("pvcreate", "-q", "-ff", "-y", dev)
        lvm("vgcreate", "-q", "-s", "4m", vg, dev)
        lvm("lvcreate", "-q", "-an", "-Zn", "-y", "-L", "4m", "-n", "swap", vg)
        lvm("lvcreate", "-q", "-an", "-Zn", "-y", "-L", "32m", "-n", "boot", vg)
        pe_start = int(lvm("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start", dev))
        ranges = lvm("lvs", "--noheadings", "-o", "seg_pe_ranges", f"{vg}/boot").strip()
        extent = int(lvm("vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_extent_size", vg))
    first_pe = int(ranges.split(":")[1].split("-")[0])
    place(fs, disk, part_offset + pe_start + first_pe * extent)
    fs.unlink()
    shutil.rmtree(env["LVM_SYSTEM_DIR"])
    return disk


def build_bare_ext4(tree: Tree, work: Path, _get: Callable[[str], Path]) -> Path:
    """ext4 on the whole disk, no partition table (what `xvda` often is)."""
    return mkext("ext4", tree.root, work / "disk.img", 32 * MIB)


def build_qcow2(tree: Tree, work: Path, get: Callable[[str], Path]) -> Path:
    """The ext4-in-logical-partition disk as a plain qcow2."""
    disk = work / "disk.qcow2"
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", get("ext4-logical"), disk)
    return disk


def build_qcow2_compressed(tree: Tree, work: Path, get: Callable[[str], Path]) -> Path:
    """The ext4-in-logical-partition disk as a compressed qcow2 (`qemu-img convert -c`)."""
    disk = work / "disk.qcow2"
    run("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", get("ext4-logical"), disk)
    return disk


def zero_alternate_mibs(src: Path, dst: Path, keep_odd: bool) -> None:
    """A sparse copy of `src` holding only its odd (or only its even) MiBs of data."""
    sparse_file(dst, src.stat().st_size)
    with open(src, "rb") as fin, open(dst, "r+b") as fout:
        for start, length in data_extents(src):
            for mib in range(start // MIB, (start + length + MIB - 1) // MIB):
                if mib % 2 == int(keep_odd):
                    fin.seek(mib * MIB)
                    fout.seek(mib * MIB)
                    fout.write(fin.read(MIB))


def build_qcow2_backing(tree: Tree, work: Path, get: Callable[[str], Path]) -> Path:
    """overlay.qcow2 -> base.qcow2 (relative name, same directory); each holds half of the data.

    The base holds the even MiBs of the ext4-in-logical-partition disk, the overlay the odd ones and
    leaves the rest unallocated (then `qemu-img rebase -u` points it at the base), so neither file alone
    holds the boot files.
    """
    full = get("ext4-logical")
    for part, keep_odd in (("base", False), ("overlay", True)):
        half = work / f"{part}.raw"
        zero_alternate_mibs(full, half, keep_odd)
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", half, f"{part}.qcow2", cwd=work)
        half.unlink()
    run("qemu-img", "rebase", "-u", "-b", "base.qcow2", "-F", "qcow2", "overlay.qcow2", cwd=work)
    info = json.loads(run("qemu-img", "info", "--output=json", work / "overlay.qcow2"))
    if info.get("backing-filename") != "base.qcow2":
        raise BuildError(f"overlay's backing file is {info.get('backing-filename')!r}")
    return work / "overlay.qcow2"


@dataclass(frozen=True)
class Layout:
    """One guest disk layout: how to build it, what it needs, whether its filesystem has symlinks."""

    name: str
    build: Builder
    tools: tuple[str, ...]
    symlinks: bool = True
    needs: tuple[str, ...] = ()  # layouts this one is made from


_E2 = ("mkfs.ext4", "sfdisk")
LAYOUTS: dict[str, Layout] = {
    lay.name: lay
    for lay in (
        Layout("ext4-logical", build_ext4_logical, _E2),
        Layout("ext2-mbr", build_ext2_mbr, ("mkfs.ext2", "sfdisk")),
        Layout("ext4-mbr", build_ext4_mbr, _E2),
        Layout("xfs-gpt", build_xfs_gpt, ("mkfs.xfs", "sfdisk", "mount", "umount", "cp")),
        Layout("ext4-gpt-4k", build_ext4_gpt_4k, (*_E2, "losetup")),
        Layout("btrfs-zstd", build_btrfs_zstd, ("mkfs.btrfs", "btrfs", "mount", "umount", "cp", "sync")),
        Layout("fat32-esp", build_fat32_esp, ("mkfs.vfat", "mcopy", "sfdisk"), symlinks=False),
        Layout("iso9660", build_iso9660, ("xorriso",)),
        Layout("lvm", build_lvm, (*_E2, "losetup", "lvm")),
        Layout("bare-ext4", build_bare_ext4, ("mkfs.ext4",)),
        Layout("qcow2", build_qcow2, ("qemu-img",), needs=("ext4-logical",)),
        Layout("qcow2-compressed", build_qcow2_compressed, ("qemu-img",), needs=("ext4-logical",)),
        Layout("qcow2-backing", build_qcow2_backing, ("qemu-img",), needs=("ext4-logical",)),
    )
}


def missing_tools(name: str) -> list[str]:
    """Tools `name` (and the layouts it is made from) need that are not on PATH."""
    lay = LAYOUTS[name]
    tools = list(lay.tools)
    for dep in lay.needs:
        tools += missing_tools(dep)
    return sorted({t for t in tools if shutil.which(t) is None})


class ImageFactory:
    """Builds each layout at most once under `base`; a failed build fails every later request too."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._tree: Tree | None = None
        self._built: dict[str, Path | BuildError] = {}
        self.seconds: dict[str, float] = {}

    @property
    def tree(self) -> Tree:
        if self._tree is None:
            self._tree = make_tree(self.base)
        return self._tree

    def get(self, name: str) -> Path:
        """The image of layout `name`, built on first request (raises BuildError if it cannot be)."""
        if name not in self._built:
            if self._tree is None:
                start = time.monotonic()
                self._tree = make_tree(self.base)
                self.seconds["tree"] = time.monotonic() - start
            work = self.base / name
            work.mkdir()
            try:
                for dep in LAYOUTS[name].needs:
                    self.get(dep)
                start = time.monotonic()  # not counting the layouts this one is made from
                self._built[name] = LAYOUTS[name].build(self.tree, work, self.get)
                self.seconds[name] = time.monotonic() - start
            except Exception as exc:  # cached: every later request fails the same way
                self._built[name] = exc if isinstance(exc, BuildError) else BuildError(f"{name}: {exc!r}")
        result = self._built[name]
        if isinstance(result, BuildError):
            raise result
        return result
