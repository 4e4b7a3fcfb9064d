"""Coverage-guided fuzz targets (atheris, i.e. libFuzzer driving CPython) for every reader of guest bytes.

Each target turns one fuzz input (bytes) into the guest data one reader takes and calls the real pvboot
entry point on it, the one the child side uses (tests/fuzz/fuzzkit.py runs the same code through
pvboot.reader.GuestSession):

| target | input | pvboot entry point |
|---|---|---|
| ext, xfs, btrfs, fat, iso9660 | a sparse disk image (below) | `disk.fs.open_filesystem`, `disk.tree` |
| partitions, lvm | a sparse disk image, as a temp file | `disk.volumes.GuestDisk` (MBR/GPT, LVM2) |
| qcow2 | a qcow2 file (a valid backing file beside it) | `GuestDisk` -> `disk.container` |
| grub2, bls, extlinux, grub-legacy | config files split by `SEPARATOR` | `GuestSession`, in-memory disk |
| grub2-script | one grub.cfg | `config.grub2.interp.Interpreter.run_config` |
| kernel, initrd, dtb | a file | `kernel.check_kernel`, `check_initrd`, `validate_dtb` |
| decompress | codec byte + payload | `kernel.decompress.Unpacked` (random reads, restarts) |

The invariant, for every input (as fuzzkit's in-process runs check it): the call ends with a result or a
pvboot.errors.PvbootError, within `cpu_seconds` of CPU time (a SIGPROF alarm raises InputTimeout) and
under an address-space limit set before each input (RLIMIT_AS: what the process holds plus the confined
reader's own 512 MiB, `Limits.child_address_space`). Anything else escaping a
target -- a TypeError, a MemoryError, a RecursionError, InputTimeout -- is a finding. (The real child
turns MemoryError and RecursionError into one error line too, but under these caps they mean a small
input made a reader allocate or recurse without a bound of its own; the in-process suite counts them as
crashes as well.) The one exception is `decompress`, which accepts what its only caller, check_kernel,
turns into a "malformed" verdict (struct.error, ValueError, IndexError, OverflowError, OSError).

Sparse disk image format (little-endian), so that a 300 MiB XFS is a 70 KiB input:
`u8 flags, u32 size in 512-byte sectors, u16 count, count x (u32 first sector, u16 sectors), data`.
The data is the chunks' bytes back to back; everything else reads as zeros. Flag bit 0 leaves checksums
as they are; otherwise the target re-signs what a hostile guest can re-sign (XFS v5 and Btrfs metadata
blocks, the ext4 superblock, LVM label/metadata headers and text), so that mutations reach the parsers
behind the checksum checks, as `fuzz_targets.resign` does for the mutation fuzzer.

Step budgets that only bound total work are scaled down so that a maximal input stays under the CPU
alarm: GRUB scripts run with a tenth of ScriptLimits' steps and loop iterations, the kernel checks with
16 MiB of decoded output instead of 256 MiB. The checks that enforce them are unchanged.
"""

from __future__ import annotations

import bisect
import dataclasses
import io
import os
import re
import resource
import signal
import struct
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from pvboot.disk import fs as fsprobe
from pvboot.disk.fs._csum import btrfs_csum, crc32c_raw, crc32c_std, zeroed
from pvboot.disk.fsapi import FileSystem, Kind, Node
from pvboot.disk.lvm import lvm_crc
from pvboot.disk.stream import RawReader, window
from pvboot.disk.tree import FileTree
from pvboot.disk.volumes import GuestDisk, Volume
from pvboot.errors import PvbootError
from pvboot.kernel.stub import stub_kernel
from pvboot.limits import KernelLimits, Limits

SECTOR = 512
HEADER = struct.Struct("<BIH")
CHUNK = struct.Struct("<IH")
MAX_CHUNK_SECTORS = 0xFFFF
FLAG_KEEP_CHECKSUMS = 0x01
SEPARATOR = b"\n#@pvboot-next-file@\n"  # between the files of a config target's input
LIMITS = Limits()
KERNEL_LIMITS = KernelLimits(max_decompressed=16 << 20, ratio_floor=4 << 20, version_scan=4 << 20)
READ_CAP = 256 << 10  # bytes read from one file of a fuzzed filesystem
SEED_FORMAT = 1  # bump when the input encoding changes (the seed cache is keyed by it)
MAX_NODES = 48  # nodes visited in one filesystem walk
MAX_CHILDREN = 10  # children of one directory visited (all its names are listed; a lookup scans them)
BOOT_PATHS = ("/boot/grub/grub.cfg", "/boot/vmlinuz", "/boot/initrd.img", "/vmlinuz", "/loader/entries")
FS_UUID = "5a1e0b2c-0000-4000-8000-00000000d0d0"  # the shared corpus's root filesystem (its `search`es)


class InputTimeout(BaseException):
    """One input used more CPU time than its target allows (BaseException: no `except Exception` in
    pvboot may swallow it)."""


# -- sparse disk images ---------------------------------------------------------------------------------


class Image:
    """A virtual disk: `size` bytes, zeros except for disjoint sorted `segments` (offset, bytes)."""

    def __init__(self, flags: int, size: int, segments: list[tuple[int, bytearray]]) -> None:
        self.flags = flags
        self.size = size
        self.segments = segments
        self._starts = [start for start, _ in segments]

    @classmethod
    def decode(cls, data: bytes) -> Image:
        """The image a fuzz input describes (any bytes decode: missing parts are empty)."""
        if len(data) < HEADER.size:
            return cls(0, len(data), [(0, bytearray(data))] if data else [])
        flags, sectors, count = HEADER.unpack_from(data)
        table_end = HEADER.size + count * CHUNK.size
        if table_end > len(data):
            count = (len(data) - HEADER.size) // CHUNK.size
            table_end = HEADER.size + count * CHUNK.size
        size = sectors * SECTOR
        pos = table_end
        chunks: list[tuple[int, bytes]] = []
        for i in range(count):
            first, n = CHUNK.unpack_from(data, HEADER.size + i * CHUNK.size)
            body = data[pos : pos + n * SECTOR]
            pos += n * SECTOR
            start = first * SECTOR
            body = body[: max(0, size - start)]
            if body:
                chunks.append((start, body))
        chunks.sort(key=lambda c: c[0])
        segments: list[tuple[int, bytearray]] = []
        end = 0
        for start, body in chunks:  # the first chunk at an offset wins; overlaps are cut off
            if start < end:
                body = body[end - start :]
                start = end
            if body:
                segments.append((start, bytearray(body)))
                end = start + len(body)
        return cls(flags, size, segments)

    def read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        out = bytearray(length)
        if length:
            self._copy(offset, memoryview(out))
        return bytes(out)

    def _copy(self, offset: int, view: memoryview) -> None:
        end = offset + len(view)
        index = max(0, bisect.bisect_right(self._starts, offset) - 1)
        for start, body in self.segments[index:]:
            if start >= end:
                break
            lo, hi = max(start, offset), min(start + len(body), end)
            if lo < hi:
                view[lo - offset : hi - offset] = body[lo - start : hi - start]

    def write(self, offset: int, data: bytes) -> None:
        """Patch bytes (a re-signed checksum) into the image, inside or outside its segments."""
        if offset < 0 or offset + len(data) > self.size:
            return
        pos = 0
        while pos < len(data):
            at = offset + pos
            index = bisect.bisect_right(self._starts, at) - 1
            if index >= 0:
                start, body = self.segments[index]
                if at < start + len(body):
                    n = min(len(data) - pos, start + len(body) - at)
                    body[at - start : at - start + n] = data[pos : pos + n]
                    pos += n
                    continue
            nxt = self._starts[index + 1] if index + 1 < len(self._starts) else at + len(data)
            n = min(len(data) - pos, nxt - at)
            self.segments.insert(index + 1, (at, bytearray(data[pos : pos + n])))
            self._starts.insert(index + 1, at)
            pos += n

    def blocks(self, align: int) -> Iterator[int]:
        """Offsets aligned to `align` at which a segment holds data (where metadata can be)."""
        for start, body in self.segments:
            first = -(-start // align) * align
            yield from range(first, start + len(body), align)

    def stream(self) -> BinaryIO:
        return window(cast(BinaryIO, io.BufferedReader(_ImageReader(self), 64 << 10)), 0, self.size)

    def write_file(self, fd: int) -> None:
        """The image as the (sparse) file behind `fd`."""
        os.ftruncate(fd, 0)
        os.ftruncate(fd, self.size)
        for start, body in self.segments:
            os.pwrite(fd, body, start)


class _ImageReader(RawReader):
    def __init__(self, image: Image) -> None:
        super().__init__(image.size)
        self.image = image

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self.size - self._pos))
        view[:n] = bytes(n)
        self.image._copy(self._pos, view[:n])
        self._pos += n
        return n


def encode_image(path: Path, flags: int = 0, skip: tuple[tuple[int, int], ...] = ()) -> bytes:
    """A real image file as a fuzz input: its non-zero sectors (except the byte ranges in `skip`)."""
    size = path.stat().st_size
    runs: list[tuple[int, int]] = []  # (first sector, sectors)
    with open(path, "rb") as fh:
        fd = fh.fileno()
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            stop = os.lseek(fd, start, os.SEEK_HOLE)
            fh.seek(start - start % SECTOR)
            for offset in range(start - start % SECTOR, stop, SECTOR):
                sector = fh.read(SECTOR)
                if sector.count(0) == len(sector) or any(lo <= offset < hi for lo, hi in skip):
                    continue
                index = offset // SECTOR
                if runs and runs[-1][0] + runs[-1][1] == index and runs[-1][1] < MAX_CHUNK_SECTORS:
                    runs[-1] = (runs[-1][0], runs[-1][1] + 1)
                else:
                    runs.append((index, 1))
            pos = stop
        table = b"".join(CHUNK.pack(first, n) for first, n in runs)
        body = bytearray()
        for first, n in runs:
            fh.seek(first * SECTOR)
            body += fh.read(n * SECTOR).ljust(n * SECTOR, b"\0")
    return HEADER.pack(flags, -(-size // SECTOR), len(runs)) + table + bytes(body)


# -- re-signing, as a hostile guest would ---------------------------------------------------------------

_XFS_SECTOR_CRC = {b"XFSB": 224, b"XAGF": 216, b"XAGI": 312, b"XAFL": 32}
_XFS_BLOCK_CRC = {b"BMA3": 64, b"XSLM": 12, b"AB3B": 52, b"AB3C": 52, b"IAB3": 52, b"FIB3": 52}
_XFS_DIR_CRC = {b"XDB3": 4, b"XDD3": 4, b"XDF3": 4}
_XFS_DA_MAGICS = {0x3DF1, 0x3DFF, 0x3EBE, 0x3BEE}  # dir leaf1/leafn, da node, attr leaf (crc at 12)


def _sign_xfs(img: Image, offset: int, length: int, crc_at: int) -> None:
    block = img.read(offset, length)
    if len(block) == length and crc_at + 4 <= length:
        img.write(offset + crc_at, struct.pack("<I", crc32c_std(zeroed(block, crc_at))))


def resign_xfs(img: Image) -> None:
    sb = img.read(0, 256)
    if sb[:4] != b"XFSB" or len(sb) < 256 or struct.unpack_from(">H", sb, 100)[0] & 0xF != 5:
        return
    block = struct.unpack_from(">I", sb, 4)[0]
    sect, inode = struct.unpack_from(">HH", sb, 102)
    dirblock = block << min(sb[192], 8)
    if any(v < 512 or v > 65536 or v & (v - 1) for v in (block, sect, inode)) or dirblock > 65536:
        return
    for offset in list(img.blocks(SECTOR)):
        head = img.read(offset, 12)
        if head[:4] in _XFS_SECTOR_CRC:
            _sign_xfs(img, offset, sect, _XFS_SECTOR_CRC[head[:4]])
        elif head[:2] == b"IN" and head[4:5] == b"\x03" and offset % inode == 0:
            _sign_xfs(img, offset, inode, 100)
        elif offset % block == 0:
            if head[:4] in _XFS_DIR_CRC:
                _sign_xfs(img, offset, dirblock, _XFS_DIR_CRC[head[:4]])
            elif head[:4] in _XFS_BLOCK_CRC:
                _sign_xfs(img, offset, block, _XFS_BLOCK_CRC[head[:4]])
            elif len(head) == 12 and struct.unpack_from(">H", head, 8)[0] in _XFS_DA_MAGICS:
                _sign_xfs(img, offset, dirblock if head[8:10] != b"\x3b\xee" else block, 12)


_BTRFS_SUPERS = (0x10000, 0x4000000, 0x4000000000)
_btrfs_sums: dict[tuple[int, bytes], bytes] = {}  # xxhash64 is pure Python: unchanged nodes are many


def _btrfs_sum(csum_type: int, data: bytes) -> bytes:
    key = (csum_type, data)
    if key not in _btrfs_sums:
        if len(_btrfs_sums) >= 256:
            _btrfs_sums.clear()
        _btrfs_sums[key] = btrfs_csum(csum_type, data)
    return _btrfs_sums[key]


def resign_btrfs(img: Image) -> None:
    sb = img.read(0x10000, 4096)
    if len(sb) < 4096 or sb[0x40:0x48] != b"_BHRfS_M":
        return
    csum_type = struct.unpack_from("<H", sb, 0xC4)[0]
    nodesize = struct.unpack_from("<I", sb, 0x94)[0]
    fsid = sb[0x20:0x30]
    if csum_type > 3 or not 4096 <= nodesize <= 65536 or nodesize & (nodesize - 1):
        return
    for offset in list(img.blocks(4096)):
        if offset in _BTRFS_SUPERS or img.read(offset + 0x20, 16) != fsid:
            continue
        node = img.read(offset, nodesize)
        if len(node) == nodesize:
            img.write(offset, _btrfs_sum(csum_type, node[32:]))
    for offset in _BTRFS_SUPERS:
        copy = img.read(offset, 4096)
        if len(copy) == 4096 and copy[0x40:0x48] == b"_BHRfS_M":
            img.write(offset, _btrfs_sum(struct.unpack_from("<H", copy, 0xC4)[0] & 3, copy[32:]))


def resign_ext(img: Image) -> None:
    """The superblock of a metadata_csum ext4 (inodes and blocks keep their checksums: the no-csum seeds
    reach what lies behind them)."""
    sb = img.read(1024, 1024)
    if len(sb) == 1024 and sb[56:58] == b"\x53\xef" and struct.unpack_from("<I", sb, 0x64)[0] & 0x400:
        img.write(1024 + 0x3FC, struct.pack("<I", crc32c_raw(0xFFFFFFFF, sb[:0x3FC])))


_MDA_MAGIC = b" LVM2 x[5A%r0N*>"


def resign_lvm(img: Image) -> None:
    """Every LVM2 label in the image (any sector), its metadata areas' headers and current text."""
    for offset in list(img.blocks(SECTOR)):
        label = img.read(offset, SECTOR)
        if label[:8] != b"LABELONE":
            continue
        number, _crc, header_at = struct.unpack_from("<QII", label, 8)
        pv = offset - number * SECTOR
        if number >= 4 or pv < 0 or not 32 <= header_at <= SECTOR - 40:
            continue
        lists: list[list[tuple[int, int]]] = []
        areas: list[tuple[int, int]] = []
        pos = header_at + 40
        while len(lists) < 2 and pos + 16 <= SECTOR:  # data areas, then metadata areas
            where, length = struct.unpack_from("<QQ", label, pos)
            pos += 16
            if where == 0:
                lists.append(areas)
                areas = []
            else:
                areas.append((where, length))
        for where, length in lists[1] if len(lists) == 2 else []:
            mda = pv + where
            head = img.read(mda, SECTOR)
            if head[4:20] != _MDA_MAGIC:
                continue
            text_at, text_size = struct.unpack_from("<QQ", head, 40)
            if 0 < text_size <= LIMITS.max_lvm_metadata and SECTOR <= text_at < length:
                first = min(text_size, length - text_at)
                text = img.read(mda + text_at, first) + img.read(mda + SECTOR, text_size - first)
                img.write(mda + 56, struct.pack("<I", lvm_crc(text)))
                head = img.read(mda, SECTOR)
            img.write(mda, struct.pack("<I", lvm_crc(head[4:])))
        img.write(offset + 16, struct.pack("<I", lvm_crc(img.read(offset, SECTOR)[20:])))


# -- the exercise: what the child does with a volume, a disk, a config ---------------------------------


def attempt(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)`, or None when it fails with pvboot's own error (the expected way to fail)."""
    try:
        return fn(*args)
    except PvbootError:
        return None


def _read_stream(stream: BinaryIO, cap: int = READ_CAP) -> int:
    done = 0
    while done < cap:
        chunk = stream.read(min(64 << 10, cap - done))
        if not chunk:
            break
        done += len(chunk)
    return done


def walk_tree(tree: FileTree) -> None:
    """Look at everything a boot could: every name (bounded), file contents and block maps, symlinks."""
    attempt(lambda: (tree.fs.uuid, tree.fs.label))
    queue, visited = ["/"], 0
    while queue and visited < MAX_NODES:
        path = queue.pop(0)
        visited += 1
        node = attempt(tree.lookup, path, False)
        if node is None:
            continue
        if node.kind is Kind.DIR:
            names = sorted(attempt(tree.listdir, path) or [], key=lambda n: n.startswith("config-padding"))
            queue += [f"{path.rstrip('/')}/{name}" for name in names[:MAX_CHILDREN]]
        elif node.kind is Kind.FILE:
            attempt(node.extents)
            stream = attempt(node.open)
            if stream is not None:
                attempt(_read_stream, stream)
        elif node.kind is Kind.SYMLINK:
            attempt(node.readlink)
            attempt(tree.lookup, path)
    for path in BOOT_PATHS:
        attempt(tree.read_small, path, READ_CAP)


def filesystem_target(data: bytes, resign: Callable[[Image], None] | None = None) -> None:
    img = Image.decode(data)
    if resign is not None and not img.flags & FLAG_KEEP_CHECKSUMS:
        resign(img)
    filesystem = attempt(fsprobe.open_filesystem, img.stream(), LIMITS)
    if filesystem is not None:
        walk_tree(FileTree(filesystem, LIMITS, "hd0"))


def scratch_base() -> str | None:
    """/dev/shm when it is there: the disk targets write their image once per input."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


class Workdir:
    """The temp directory the targets that need a file write it in: $PVBOOT_ATHERIS_WORKDIR (made and
    removed by run_atheris.py: the fuzzer process ends in libFuzzer's exit()), else a new one."""

    _path: Path | None = None

    @classmethod
    def path(cls) -> Path:
        if cls._path is None:
            given = os.environ.get("PVBOOT_ATHERIS_WORKDIR")
            cls._path = (
                Path(given) if given else Path(tempfile.mkdtemp(prefix="pvboot-atheris-", dir=scratch_base()))
            )
        return cls._path


def _exercise_disk(disk: GuestDisk) -> None:
    for volume in disk.volumes:
        _ = (volume.name, volume.fstype, volume.part_type, volume.aliases, volume.error)
        for offset in (0, max(0, volume.size - 4096)):
            attempt(volume.stream.seek, offset)
            attempt(volume.stream.read, 4096)
        attempt(volume.host_ranges, 0, min(volume.size, 4 << 20))


def disk_target(data: bytes, resign: Callable[[Image], None] | None = None) -> None:
    img = Image.decode(data)
    if resign is not None and not img.flags & FLAG_KEEP_CHECKSUMS:
        resign(img)
    path = Workdir.path() / "disk.img"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        img.write_file(fd)
    finally:
        os.close(fd)
    disk = attempt(GuestDisk, str(path), LIMITS, None, "raw")
    if disk is not None:
        try:
            _exercise_disk(disk)
        finally:
            disk.close()


def qcow2_target(data: bytes) -> None:
    path = Workdir.path() / "disk.qcow2"
    path.write_bytes(data)
    disk = attempt(GuestDisk, str(path), LIMITS)
    if disk is None:
        return
    try:
        stream, size = disk.container.stream, disk.container.size
        for offset in range(0, min(size, 1 << 20), 64 << 10):
            attempt(stream.seek, offset)
            attempt(stream.read, 64 << 10)
        if size > 1 << 20:
            attempt(stream.seek, size - 4096)
            attempt(stream.read, 8192)
        attempt(disk.container.host_ranges, 0, min(size, 4 << 20))
        _exercise_disk(disk)
    finally:
        disk.close()


def write_backing_files(directory: Path, files: dict[str, bytes]) -> None:
    """The valid backing files next to the fuzzed qcow2 (its seeds name them)."""
    for name, content in files.items():
        (directory / name).write_bytes(content)


# -- config targets: an in-memory guest filesystem -------------------------------------------------------


class MemoryNode(Node):
    def __init__(self, fs: MemoryFS, path: str) -> None:
        self._fs, self.path = fs, path
        if path in fs.links:
            self.kind, self.size = Kind.SYMLINK, len(fs.links[path])
        elif path in fs.files:
            self.kind, self.size = Kind.FILE, len(fs.files[path])
        else:
            self.kind, self.size = Kind.DIR, 4096

    def child(self, name: str) -> Node | None:
        path = f"{self.path.rstrip('/')}/{name}"
        return MemoryNode(self._fs, path) if self._fs.exists(path) else None

    def names(self) -> Iterator[str]:
        yield from sorted(self._fs.children.get(self.path, ()))

    def readlink(self) -> str:
        return self._fs.links[self.path]

    def open(self) -> BinaryIO:
        return io.BytesIO(self._fs.files[self.path])


def _normal(path: str) -> str:
    return "/" + "/".join(p for p in path.split("/") if p not in ("", "."))


class MemoryFS(FileSystem):
    """Files and symlinks by absolute path; every parent is a directory (a file shadowed by a directory
    of the same name is dropped)."""

    def __init__(self, files: dict[str, bytes], links: dict[str, str]) -> None:
        self.fstype, self.uuid, self.label = "ext2", FS_UUID, "root"
        self.children: dict[str, set[str]] = {"/": set()}
        files = {_normal(p): d for p, d in files.items()}
        links = {_normal(p): t for p, t in links.items()}
        for path in [*files, *links]:
            parts = [p for p in path.split("/") if p]
            for depth in range(len(parts)):
                parent = "/" + "/".join(parts[:depth])
                self.children.setdefault(parent, set()).add(parts[depth])
        self.files = {p: d for p, d in files.items() if p not in self.children}
        self.links = {p: t for p, t in links.items() if p not in self.children and p not in self.files}

    def exists(self, path: str) -> bool:
        return path in self.children or path in self.files or path in self.links

    def root(self) -> Node:
        return MemoryNode(self, "/")


FUZZ_KERNEL = stub_kernel(b"PVBOOT-ATHERIS-KERNEL\n" * 8)
FUZZ_INITRD = b"070701" + b"0" * 104 + b"\0" * 402  # a (degenerate) newc header, zero padded
_LOADER_LINE = re.compile(
    rb"(?im)^[ \t]*(linux|linux16|linuxefi|initrd|initrd16|initrdefi|kernel|module2?|multiboot2?|devicetree|"
    rb"fdt|fdtdir|efi|append|options)[ \t=]+([^\n]*)"
)
_FILE_WORD = re.compile(rb"(?:\([^)\s]*\))?([^\s,'\"=$;{}]+)")


def small_fdt() -> bytes:
    """A small version-17 flattened device tree: / (model, compatible, #address-cells), memory, chosen."""
    strings = b"model\0compatible\0#address-cells\0reg\0bootargs\0"

    def prop(name: bytes, value: bytes) -> bytes:
        head = struct.pack(">III", 3, len(value), strings.index(name + b"\0"))
        return head + value + b"\0" * (-len(value) % 4)

    def node(name: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 1) + name + b"\0" * (4 - len(name) % 4) + body + struct.pack(">I", 2)

    root = prop(b"model", b"pvboot,fuzz\0") + prop(b"compatible", b"pvboot,fuzz\0xen,xenvm\0")
    root += prop(b"#address-cells", struct.pack(">I", 2)) + node(b"memory@0", prop(b"reg", bytes(16)))
    root += node(b"chosen", prop(b"bootargs", b"console=hvc0\0"))
    structure = node(b"", root) + struct.pack(">I", 9)
    off_rsv, reserved = 40, bytes(16)
    off_struct = off_rsv + len(reserved)
    off_strings = off_struct + len(structure)
    total = off_strings + len(strings)
    fields = (0xD00DFEED, total, off_struct, off_strings, off_rsv, 17, 16, 0, len(strings), len(structure))
    return struct.pack(">10I", *fields) + reserved + structure + strings


def memory_disk(files: dict[str, bytes], links: dict[str, str] | None = None) -> GuestDisk:
    """A stand-in disk, as pvboot.disk.hostfs builds one for --isconfig: an empty hd0 and one volume,
    hd0,msdos1, holding `files`."""
    disk = GuestDisk.__new__(GuestDisk)
    disk.path, disk.limits = "fuzz.img", LIMITS
    whole = Volume("hd0", 0, 64 << 20, io.BytesIO(), LIMITS, part_type=None)
    volume = Volume("hd0,msdos1", 1 << 20, 63 << 20, io.BytesIO(), LIMITS, part_type="83", fstype="ext2")
    volume._tree = FileTree(MemoryFS(files, links or {}), LIMITS, "hd0,msdos1")
    disk.volumes = [whole, volume]
    return disk


def config_files(data: bytes, slots: tuple[str, ...]) -> tuple[dict[str, bytes], dict[str, str]]:
    """The slots' contents from `data`, and a kernel or initrd at every path the configs load."""
    parts = data.split(SEPARATOR)
    files: dict[str, bytes] = {}
    for slot, content in zip(slots, parts, strict=False):
        if not slot.startswith("@"):
            files[slot] = content
    files.update({"/boot/vmlinuz-fuzz": FUZZ_KERNEL, "/boot/initrd.img-fuzz": FUZZ_INITRD})
    made = 0
    for slot, content in list(files.items()):
        home = slot.rsplit("/", 1)[0] or "/"
        for keyword, rest in _LOADER_LINE.findall(content)[:32]:
            is_args = keyword.lower() in (b"append", b"options")
            words = re.findall(rb"initrd=(\S+)", rest) if is_args else _FILE_WORD.findall(rest)[:4]
            for raw in (piece for word in words for piece in word.split(b",")):
                word = raw.decode("utf-8", "surrogateescape")
                if not word or word.startswith("-") or made >= 64:
                    continue
                tree = keyword.lower() in (b"devicetree", b"fdt") or "dtb" in word
                content_of = small_fdt() if tree else FUZZ_INITRD if "init" in word else FUZZ_KERNEL
                for path in (
                    [word] if word.startswith("/") else [f"{home}/{word}", f"/{word}", f"/boot/{word}"]
                ):
                    path = _normal(path)
                    if path not in files and len(path) < 256:
                        files[path] = content_of
                        made += 1
    links = {"/vmlinuz": "boot/vmlinuz-fuzz", "/boot/vmlinuz": "vmlinuz-fuzz", "/boot/loop": "loop",
             "/boot/initrd.img": "/boot/initrd.img-fuzz", "/boot/up": "../../.."}  # fmt: skip
    return files, links


def _paths(entries: list[dict[str, Any]], prefix: list[int], out: list[list[int]], cap: int) -> None:
    for index, entry in enumerate(entries):
        if len(out) >= cap:
            return
        if isinstance(entry.get("submenu"), list):
            _paths(entry["submenu"], [*prefix, index], out, cap)
        else:
            out.append([*prefix, index])


def session_target(data: bytes, slots: tuple[str, ...]) -> None:
    """The requests of `pvboot -l` and of a boot (inspect, menu, boot) on a disk holding the config files,
    then the last entry by its path, and the console: `@console`'s text as an edited entry, its first
    lines at the command line."""
    from pvboot.reader import GuestSession, OutputFds

    files, links = config_files(data, slots)
    session = GuestSession("fuzz.img", LIMITS, OutputFds(None, None))
    session._disk = memory_disk(files, links)
    attempt(session.handle, {"op": "inspect"})
    menu = attempt(session.handle, {"op": "menu"})
    attempt(session.handle, {"op": "boot", "entry": None})
    if menu is None:
        return
    paths: list[list[int]] = []
    _paths(menu.get("entries", []), [], paths, 16)
    if len(paths) > 1:
        attempt(session.handle, {"op": "boot", "path": paths[-1]})
    parts = data.split(SEPARATOR)
    where = slots.index("@console") if "@console" in slots else len(parts)
    if where < len(parts) and parts[where]:
        text = parts[where].decode("utf-8", "replace")
        if paths:
            attempt(session.handle, {"op": "boot", "path": paths[0], "source": text})
        for line in text.splitlines()[:4]:
            attempt(session.handle, {"op": "command", "line": line})
        attempt(session.handle, {"op": "boot", "console": True})


@dataclass
class _ScriptHost:
    """What a grub.cfg sees of the disk when run on its own (grub2-script): nothing but its own text."""

    text: str
    lines: list[str] = field(default_factory=list)

    def read_file(self, path: str) -> str:
        from pvboot.errors import NotFoundError

        if path.endswith("grub.cfg"):
            return self.text
        raise NotFoundError(f"{path}: not found")

    def file_test(self, op: str, path: str) -> bool:
        return path.endswith("grub.cfg")

    def glob(self, pattern: str) -> list[str]:
        return []

    def log(self, message: str) -> None:
        if len(self.lines) < 100:
            self.lines.append(message)


def script_target(data: bytes) -> None:
    """The GRUB 2 lexer, parser and interpreter alone, without a disk: fast, all of the language."""
    from pvboot.config.grub2.interp import Interpreter

    text = data.decode("utf-8", "surrogateescape")
    interp = Interpreter(_ScriptHost(text), scaled_script_limits())
    attempt(interp.run_config, text, "(hd0,msdos1)/boot/grub/grub.cfg")


def scaled_script_limits() -> Any:
    from pvboot.config.grub2.interp import ScriptLimits

    plain = ScriptLimits()
    return dataclasses.replace(
        plain, max_steps=plain.max_steps // 10, max_loop_iterations=plain.max_loop_iterations // 10
    )


# -- kernel targets --------------------------------------------------------------------------------------


def kernel_target(data: bytes) -> None:
    from pvboot.kernel import check_kernel

    info = attempt(check_kernel, io.BytesIO(data), len(data), KERNEL_LIMITS, "x86_64")
    if info is not None:
        info.to_json()


def initrd_target(data: bytes) -> None:
    from pvboot.kernel import check_initrd

    attempt(check_initrd, io.BytesIO(data), len(data), "(hd0,msdos1)/boot/initrd.img")


def dtb_target(data: bytes) -> None:
    from pvboot.kernel import validate_dtb

    info = attempt(validate_dtb, data, "(hd0,msdos1)/boot/dtb", KERNEL_LIMITS)
    if info is not None:
        info.to_json()


CODECS = ("gzip", "bzip2", "xz", "zstd", "lzma", "lzo", "lz4")
_MALFORMED = (struct.error, ValueError, IndexError, OverflowError, OSError)  # check_kernel: "malformed"


def decompress_target(data: bytes) -> None:
    """Random reads of a payload's decoded bytes, as the ELF/bzImage checks make them (restarts too)."""
    from pvboot.kernel.decompress import HEAD_CACHE, Unpacked

    if not data:
        return
    codec = CODECS[data[0] % len(CODECS)]
    try:
        unpacked = Unpacked(io.BytesIO(data), 1, len(data) - 1, codec, KERNEL_LIMITS, "fuzz payload")
        attempt(unpacked.read_at, 0, 4096)
        attempt(unpacked.read_at, HEAD_CACHE + 16, 64)
        attempt(unpacked.read_at, HEAD_CACHE, 64)  # behind the decoder: a restart
        attempt(unpacked.drain, 1 << 20)
    except (PvbootError, *_MALFORMED):
        pass


# -- the table -------------------------------------------------------------------------------------------

_GRUB_WORDS = (
    "menuentry", "submenu", "if", "then", "elif", "else", "fi", "for", "in", "do", "done", "while", "until",
    "function", "return", "break", "continue", "set", "unset", "export", "source", "configfile", "linux",
    "initrd", "search", "--set=root", "--fs-uuid", "--file", "--label", "load_env", "save_env", "blscfg",
    "insmod", "echo", "test", "[", "]", "default", "timeout", "saved_entry", "next_entry", "${", "$root",
    "regexp", "eval", "shift", "true", "false", "probe", "multiboot2", "module2", "--id", "--class",
    "--unrestricted", "--users", "superusers", "password", "password_pbkdf2", "{", "}", ";", "&&", "||",
)  # fmt: skip
_BLS_WORDS = ("title", "version", "machine-id", "linux", "initrd", "options", "devicetree", "sort-key",
              "architecture", "default", "timeout", "@saved", "efi", "grub_users", "grub_class")  # fmt: skip
_EXTLINUX_WORDS = ("DEFAULT", "LABEL", "MENU LABEL", "KERNEL", "LINUX", "INITRD", "APPEND", "FDT",
                   "FDTDIR", "INCLUDE", "MENU INCLUDE", "TIMEOUT", "PROMPT", "ONTIMEOUT", "MENU DEFAULT",
                   "MENU HIDE", "MENU BEGIN", "MENU END", "TEXT HELP", "ENDTEXT", "initrd=", "LOCALBOOT",
                   "COM32")  # fmt: skip
_LEGACY_WORDS = ("title", "root", "kernel", "initrd", "default", "fallback", "timeout", "hiddenmenu",
                 "password", "lock", "savedefault", "chainloader", "module", "(hd0,0)", "saved")  # fmt: skip


@dataclass(frozen=True)
class Target:
    """One fuzz target: `run(data)` must end with a result or a PvbootError."""

    name: str
    run: Callable[[bytes], None]
    about: str
    ci_runs: int = 500  # executions in CI (tests/fuzz/test_atheris.py): 1-3 s of fuzzing on an idle CPU
    cpu_seconds: float = 2.0  # per input
    tokens: tuple[str | bytes, ...] = ()  # libFuzzer dictionary
    backing: bool = False  # needs the qcow2 backing files beside its image
    modules: tuple[str, ...] = ()  # what to import (and so instrument) before the first input
    # libFuzzer's -max_len when not the seeds' own (atheris_seeds.SeedSet.max_len): a cap that keeps a
    # target's executions cheap enough for a 1,000,000-run campaign where whole files are another's job
    max_len: int | None = None


def _disk_tokens(*magic: bytes) -> tuple[bytes, ...]:
    return (*magic, b"\xff\xff\xff\xff", b"\x00\x00\x00\x80", b"\x00\x10\x00\x00")


GRUB2_SLOTS = ("/boot/grub/grub.cfg", "/boot/grub/grubenv", "/boot/grub/custom.cfg",
               "/boot/loader/entries/a.conf", "/boot/loader/entries/b.conf", "@console")  # fmt: skip
BLS_SLOTS = ("/loader/entries/a.conf", "/loader/entries/b.conf", "/loader/entries/c.conf",
             "/loader/loader.conf", "@console")  # fmt: skip
EXTLINUX_SLOTS = ("/boot/extlinux/extlinux.conf", "/boot/extlinux/inc.cfg", "@console")
LEGACY_SLOTS = ("/boot/grub/menu.lst", "/boot/grub/other.lst", "@console")
PARSERS = "pvboot.disk.fs.preload"  # the adapters import their parsers on first use: instrument them too
CONFIG_MODULES = (
    "pvboot.reader",
    "pvboot.config",
    "pvboot.kernel",
    "pvboot.config.legacyauth",
    "pvboot.report",
)
KERNEL_MODULES = ("pvboot.kernel", "dissect.util.compression")

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "ext",
            lambda d: filesystem_target(d, resign_ext),
            "ext2/3/4 (disk/fs/ext.py, dissect.extfs)",
            ci_runs=400,
            tokens=_disk_tokens(b"\x53\xef", b"\x0a\xf3"),
            modules=("pvboot.disk.fs.ext", PARSERS),
        ),
        Target(
            "xfs",
            lambda d: filesystem_target(d, resign_xfs),
            "XFS v4/v5 (disk/fs/xfs.py, dissect.xfs)",
            ci_runs=200,
            tokens=_disk_tokens(b"XFSB", b"IN", b"XDB3", b"XDD3", b"BMA3"),
            modules=("pvboot.disk.fs.xfs", PARSERS),
        ),
        Target(
            "btrfs",
            lambda d: filesystem_target(d, resign_btrfs),
            "Btrfs (disk/fs/btrfs.py, dissect.btrfs)",
            ci_runs=200,
            tokens=_disk_tokens(b"_BHRfS_M"),
            modules=("pvboot.disk.fs.btrfs", PARSERS),
        ),
        Target(
            "fat",
            filesystem_target,
            "FAT12/16/32 (disk/fs/fat.py, dissect.fat)",
            ci_runs=150,
            tokens=_disk_tokens(b"FAT32   ", b"FAT16   ", b"\xeb\x3c\x90", b"\x55\xaa"),
            modules=("pvboot.disk.fs.fat", PARSERS),
        ),
        Target(
            "iso9660",
            filesystem_target,
            "ISO9660, Rock Ridge, Joliet (disk/fs/iso9660.py, pycdlib)",
            ci_runs=300,
            tokens=_disk_tokens(b"CD001", b"RR", b"SL", b"NM", b"PX", b"SP"),
            modules=("pvboot.disk.fs.iso9660", PARSERS),
        ),
        Target(
            "partitions",
            disk_target,
            "MBR and GPT (disk/mbr.py, disk/gpt.py) through disk/volumes.py",
            tokens=_disk_tokens(b"EFI PART", b"\x55\xaa", b"\x05", b"\x0f", b"\xee"),
            modules=("pvboot.disk.volumes",),
            ci_runs=1000,
        ),
        Target(
            "lvm",
            lambda d: disk_target(d, resign_lvm),
            "LVM2 labels and metadata (disk/lvm.py)",
            ci_runs=800,
            tokens=_disk_tokens(
                b"LABELONE",
                b"LVM2 001",
                _MDA_MAGIC,
                b"logical_volumes",
                b"physical_volumes",
                b"stripes",
                b"extent_count",
            ),
            modules=("pvboot.disk.volumes", "dissect.volume.lvm.c_lvm2"),
        ),
        Target(
            "qcow2",
            qcow2_target,
            "qcow2 images and backing chains (disk/container.py)",
            backing=True,
            tokens=(b"QFI\xfb", b"base.qcow2", b"base.raw", b"\xe2\x79\x2a\xca", b"raw", b"qcow2"),
            modules=("pvboot.disk.volumes", "pvboot.disk.container"),
            ci_runs=200,
        ),
        Target(
            "grub2",
            lambda d: session_target(d, GRUB2_SLOTS),
            "grub.cfg, grubenv, blscfg entries, console "
            "(config/grub2/, config/bls.py) through reader.GuestSession",
            ci_runs=40,
            cpu_seconds=5.0,
            tokens=(*_GRUB_WORDS, SEPARATOR),
            modules=CONFIG_MODULES,
        ),
        Target(
            "grub2-script",
            script_target,
            "the GRUB 2 lexer, parser and interpreter alone (config/grub2/)",
            ci_runs=150,
            # 4 KiB scripts hold every construct of the language; whole grub.cfg files (the seeds: up to
            # 20 KiB, parsed ~5x slower) are the `grub2` target's
            max_len=4096,
            tokens=_GRUB_WORDS,
            modules=("pvboot.config.grub2",),
        ),
        Target(
            "bls",
            lambda d: session_target(d, BLS_SLOTS),
            "systemd-boot BLS entries, loader.conf (config/bls.py, config/sdboot.py)",
            ci_runs=300,
            tokens=(*_BLS_WORDS, SEPARATOR),
            modules=CONFIG_MODULES,
        ),
        Target(
            "extlinux",
            lambda d: session_target(d, EXTLINUX_SLOTS),
            "extlinux/syslinux (config/extlinux.py, extlinux_parse.py)",
            ci_runs=300,
            tokens=(*_EXTLINUX_WORDS, SEPARATOR),
            modules=CONFIG_MODULES,
        ),
        Target(
            "grub-legacy",
            lambda d: session_target(d, LEGACY_SLOTS),
            "GRUB legacy menu.lst (config/grub_legacy.py)",
            ci_runs=300,
            tokens=(*_LEGACY_WORDS, SEPARATOR),
            modules=CONFIG_MODULES,
        ),
        Target(
            "kernel",
            kernel_target,
            "bzImage/ELF/arm64/zImage and Xen notes (kernel/check.py, elfxen.py)",
            ci_runs=1500,
            tokens=(b"HdrS", b"\x7fELF", b"Xen\x00", b"\x1f\x8b", b"ARMd", b"Linux version "),
            modules=KERNEL_MODULES,
        ),
        Target(
            "decompress",
            decompress_target,
            "the seven payload codecs (kernel/decompress.py)",
            ci_runs=400,
            tokens=(b"\x89LZO\x00\r\n\x1a\n", b"\x02\x21\x4c\x18", b"\x28\xb5\x2f\xfd", b"\xfd7zXZ\x00"),
            modules=KERNEL_MODULES,
        ),
        Target(
            "initrd",
            initrd_target,
            "initrd: newc cpio, plain or compressed (kernel/initrd.py)",
            tokens=(b"070701", b"070702", b"070707", b"TRAILER!!!", b"\x1f\x8b", b"BZh"),
            modules=KERNEL_MODULES,
            ci_runs=400,
        ),
        Target(
            "dtb",
            dtb_target,
            "flattened device trees (kernel/dtb.py)",
            tokens=(
                b"\xd0\x0d\xfe\xed",
                b"\x00\x00\x00\x01",
                b"\x00\x00\x00\x02",
                b"\x00\x00\x00\x03",
                b"\x00\x00\x00\x09",
                b"compatible",
                b"model",
            ),
            modules=KERNEL_MODULES,
            ci_runs=1000,
        ),
    )
}


def dictionary(target: Target) -> str:
    """The target's tokens in libFuzzer's -dict format."""
    lines = []
    for token in target.tokens:
        raw = token.encode() if isinstance(token, str) else token
        lines.append(
            '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\x{b:02x}" for b in raw) + '"'
        )
    return "\n".join(lines) + "\n"


# -- open findings whose fix is a change to src/ ------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """A finding the fuzzer keeps making until src/ changes: its exception type, a frame of its traceback
    (`path/suffix.py` or `path/suffix.py:function`) and the xfail(strict=True) regression test that tracks
    it. Runs count it apart from new findings (PVBOOT_ATHERIS_STRICT=1 makes it one again); the entry
    goes with the fix."""

    exception: str
    where: str
    test: str

    def matches(self, exc: BaseException) -> bool:
        if type(exc).__name__ != self.exception:
            return False
        path, _, function = self.where.partition(":")
        return any(
            f.filename.endswith(path) and (not function or f.name == function)
            for f in traceback.extract_tb(exc.__traceback__)
        )


_REGRESSIONS = "tests/fuzz/test_atheris_regressions.py"
KNOWN: tuple[Known, ...] = ()  # none open
_reported: set[Known] = set()


def known(exc: BaseException) -> Known | None:
    """The KNOWN entry `exc` is, if any."""
    if os.environ.get("PVBOOT_ATHERIS_STRICT") == "1":
        return None
    return next((entry for entry in KNOWN if entry.matches(exc)), None)


# -- running one input ----------------------------------------------------------------------------------


def load(target: Target) -> None:
    """Import the target's modules and every submodule of them (so that atheris instruments them)."""
    import importlib
    import pkgutil

    for name in target.modules:
        module = importlib.import_module(name)
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), f"{name}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)


def _alarm(signum: int, frame: object) -> None:
    raise InputTimeout("the input used more CPU time than its target allows")


@dataclass
class _Memory:
    """The per-input memory bound: before each input RLIMIT_AS becomes what the process holds plus the
    confined reader's own budget (Limits.child_address_space), so an input may allocate what the reader
    may, whatever the fuzzer's corpus grew to; an input whose peak RSS grew by more than `heavy` is saved
    in `notes` (not a finding: the limit held), so that one can see what made a reader need that much."""

    enabled: bool = False
    heavy: int = 256 << 20
    notes: Path | None = None
    target: str = ""
    noted: int = 0
    inputs: int = 0
    clear_refs: int = -1  # /proc/self/clear_refs, kept open: writing "5" resets the peak RSS


_memory = _Memory()
_PAGE = os.sysconf("SC_PAGE_SIZE")


def vm_size() -> int:
    """This process's address space in use (what RLIMIT_AS counts), in bytes."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * _PAGE


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def prepare(target: Target, backing: dict[str, bytes] | None = None, memory_cap: bool = False,
            notes: str | None = None) -> None:  # fmt: skip
    """Process-wide set-up before the first input: the CPU alarm, the GRUB script budget, backing files,
    and (`memory_cap`) the per-input address-space limit, heavy inputs noted in `notes`."""
    signal.signal(signal.SIGPROF, _alarm)
    sys.setrecursionlimit(4000)  # as the confined reader
    from pvboot.config.grub2 import session

    if hasattr(session, "ScriptLimits"):  # Grub2Session builds its interpreter with ScriptLimits()
        session.ScriptLimits = scaled_script_limits  # type: ignore[assignment,misc]
    if target.backing and backing:
        write_backing_files(Workdir.path(), backing)
    _memory.enabled, _memory.target = memory_cap, target.name
    _memory.notes = Path(notes) if notes else None
    if memory_cap and _memory.clear_refs < 0:
        _memory.clear_refs = os.open("/proc/self/clear_refs", os.O_WRONLY | os.O_CLOEXEC)


def _note_heavy(data: bytes, grown: int) -> None:
    import hashlib

    _memory.noted += 1
    if _memory.notes is None or _memory.noted > 20:
        return
    path = _memory.notes / f"{_memory.target}-heavy-{hashlib.sha1(data).hexdigest()}"
    path.write_bytes(data)
    print(f"atheris-heavy-input: {path} ({grown >> 20} MiB)", file=sys.stderr)


def run_input(target: Target, data: bytes) -> None:
    """One input under the CPU alarm (and the memory bound); anything but a PvbootError escaping is a
    finding, unless it is KNOWN."""
    rss = 0
    if _memory.enabled:
        if _memory.inputs % 32 == 0:  # (what the process holds moves slowly: the corpus grows)
            limit = vm_size() + LIMITS.child_address_space
            resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
        _memory.inputs += 1
        os.write(_memory.clear_refs, b"5")
        rss = _peak_rss()  # (just reset: the current RSS)
    signal.setitimer(signal.ITIMER_PROF, target.cpu_seconds)
    try:
        target.run(data)
    except BaseException as exc:
        entry = known(exc)
        if entry is None:
            raise
        if entry not in _reported:
            _reported.add(entry)
            print(
                f"atheris-known-finding: {entry.exception} in {entry.where} ({entry.test})", file=sys.stderr
            )
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        if _memory.enabled and _peak_rss() - rss > _memory.heavy:
            _note_heavy(data, _peak_rss() - rss)
