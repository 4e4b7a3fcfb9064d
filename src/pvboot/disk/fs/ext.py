"""ext2/3/4 adapter.

dissect.extfs API used: `ExtFS` (superblock checks, uuid, `get_inode`), `INode.inode` (the parsed on-disk
inode struct) and `ExtFS._read_group_desc` (bounds-checked group descriptors). Everything that walks
guest-controlled structures of unbounded size is done here instead, bounded:

* block maps: dissect's `INode.dataruns()` recurses through extent index blocks with no depth or visit
  limit (a shared index block makes the walk exponential) and misplaces uninitialized extents that follow
  a hole; `_Mapper` walks both extent trees and indirect blocks iteratively, depth- and count-bounded.
* KNOWN GAP in dissect: inline-data DIRECTORIES read as empty/garbage (it serves i_block as a plain dirent
  block), and inline files longer than 60 bytes lose the part kept in the `system.data` xattr. We parse
  inline data ourselves: i_block (first 4 bytes = parent inode for a directory) + the in-inode
  `system.data` xattr value.
"""

from __future__ import annotations

import io
import stat
import struct
from collections.abc import Iterator
from typing import BinaryIO

from pvboot.disk.fs._common import (
    check_symlink_size,
    decode_name,
    extent_stream,
    guard,
    map_cap,
    read_at,
    runs_to_extents,
    scan,
)
from pvboot.disk.fs._csum import crc32c_raw
from pvboot.disk.fs._deferred import deferred
from pvboot.disk.fsapi import Extent, FileSystem, Kind, Node
from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import FS_MAX_DIR_BYTES, Limits

FSTYPE = "ext2"  # GRUB's name for ext2/3/4
REQUIRES = "dissect.extfs"
LABEL = "ext2/3/4"  # its name in messages
_extfs = deferred(REQUIRES)
_SB_MAGIC = (1024 + 56, b"\x53\xef")  # s_magic in the superblock at byte 1024
_EXTENTS_FL = 0x80000
_INLINE_DATA_FL = 0x10000000
_INDEX_FL = 0x1000  # an htree directory: block 0 and whole-block "empty" dirents are index blocks
_RO_COMPAT_METADATA_CSUM = 0x400
_INCOMPAT_CSUM_SEED = 0x2000
_FILETYPE_FEATURE = 0x2  # INCOMPAT_FILETYPE: dirents carry a 1-byte name_len plus a file type
_XATTR_MAGIC = 0xEA020000
_XATTR_INDEX_SYSTEM = 7
_KINDS = {stat.S_IFREG: Kind.FILE, stat.S_IFDIR: Kind.DIR, stat.S_IFLNK: Kind.SYMLINK}


# superblock fields that dissect.extfs shifts 1024 by before pvboot could check them (a hostile value
# makes a multi-million-digit integer): s_log_block_size and s_log_cluster_size, at byte 1024 + 24/28
_SB_LOG_SIZES = struct.Struct("<II")
_MAX_LOG_BLOCK_SIZE = 6  # 64 KiB, the largest ext2/3/4 block


def _check_log_sizes(stream: BinaryIO) -> None:
    stream.seek(1024 + 24)
    raw = stream.read(_SB_LOG_SIZES.size)
    if len(raw) != _SB_LOG_SIZES.size:
        raise GuestDataError("ext2: truncated superblock")
    log_block, log_cluster = _SB_LOG_SIZES.unpack(raw)
    if log_block > _MAX_LOG_BLOCK_SIZE or log_cluster > log_block + 16:
        raise GuestDataError(
            f"ext2: unsupported block size (log2 {log_block} KiB, cluster log2 {log_cluster})"
        )


def probe(stream: BinaryIO) -> bool:
    offset, magic = _SB_MAGIC
    return read_at(stream, offset, len(magic)) == magic


def mount(stream: BinaryIO, limits: Limits) -> ExtFileSystem:
    return ExtFileSystem(stream, limits)


class ExtFileSystem(FileSystem):
    def __init__(self, stream: BinaryIO, limits: Limits) -> None:
        self.stream = stream
        self.limits = limits
        _check_log_sizes(stream)
        self.ext = _extfs.ExtFS(stream)
        sb = self.ext.sb
        self.block_size = self.ext.block_size
        if not 1024 <= self.block_size <= 65536:
            raise GuestDataError(f"ext2: unsupported block size {self.block_size}")
        self.inode_size = sb.s_inode_size if sb.s_rev_level else 128
        size = self.inode_size
        if size < 128 or size > self.block_size or size & (size - 1):
            raise GuestDataError(f"ext2: bad inode size {self.inode_size}")
        self.filetype = bool(sb.s_feature_incompat & _FILETYPE_FEATURE)
        # metadata_csum: verify what the kernel verifies before trusting it (superblock, inodes, extent
        # blocks, directory blocks); a flipped pointer must not silently redirect a file
        self.csum = bool(sb.s_feature_ro_compat & _RO_COMPAT_METADATA_CSUM)
        self.csum_seed = 0
        if self.csum:
            stream.seek(1024)
            raw = stream.read(1024)
            if sb.s_checksum_type != 1 or len(raw) != 1024:
                raise GuestDataError(f"ext2: unknown metadata checksum type {sb.s_checksum_type}")
            if crc32c_raw(0xFFFFFFFF, raw[:0x3FC]) != struct.unpack_from("<I", raw, 0x3FC)[0]:
                raise GuestDataError("ext2: superblock checksum mismatch")
            uuid_seed = crc32c_raw(0xFFFFFFFF, bytes(sb.s_uuid))
            self.csum_seed = sb.s_checksum_seed if sb.s_feature_incompat & _INCOMPAT_CSUM_SEED else uuid_seed
        self.fstype = FSTYPE
        self.uuid = str(self.ext.uuid)  # GRUB: lowercase canonical 8-4-4-4-12
        self.label = bytes(sb.s_volume_name).split(b"\0")[0].decode("utf-8", "replace") or None
        self._root = self.node(2)

    def root(self) -> Node:
        return self._root

    def node(self, inum: int) -> ExtNode:
        return ExtNode(self, inum)

    def read_block(self, block: int) -> bytes:
        if not 0 < block < self.ext.block_count:
            raise GuestDataError(f"ext2: block {block} outside the filesystem")
        self.stream.seek(block * self.block_size)
        data = self.stream.read(self.block_size)
        if len(data) != self.block_size:
            raise GuestDataError("ext2: block beyond the end of the volume")
        return data

    def raw_inode(self, inum: int) -> bytes:
        """The whole on-disk inode (dissect's struct stops at 256 bytes; in-inode xattrs may lie beyond)."""
        sb = self.ext.sb
        group, index = divmod(inum - 1, sb.s_inodes_per_group)
        desc = self.ext._read_group_desc(group)
        table = desc.bg_inode_table_lo | (getattr(desc, "bg_inode_table_hi", 0) << 32)
        self.stream.seek(table * self.block_size + index * self.inode_size)
        data = self.stream.read(self.inode_size)
        if len(data) != self.inode_size:
            raise GuestDataError("ext2: inode beyond the end of the volume")
        return data


class ExtNode(Node):
    def __init__(self, fs: ExtFileSystem, inum: int) -> None:
        self._fs = fs
        self._inum = inum
        inode = fs.ext.get_inode(inum).inode
        self._seed = _verify_inode(fs, inum) if fs.csum else 0
        self.kind = _KINDS.get(stat.S_IFMT(inode.i_mode), Kind.OTHER)
        self.size = inode.i_size_lo | (inode.i_size_high << 32)
        self._flags = inode.i_flags
        self._iblock = bytes(inode.i_block)
        # a fast symlink keeps its target in i_block and owns no blocks (bar an xattr block)
        xattr_sectors = fs.block_size >> 9 if inode.i_file_acl_lo else 0
        self._owns_no_blocks = inode.i_blocks_lo - xattr_sectors <= 0
        self._extents: list[Extent] | None = None

    # -- data -------------------------------------------------------------------------------------------
    def _inline(self) -> bytes:
        """Inline data: i_block, then the in-inode `system.data` xattr value."""
        data = self._iblock + _inline_xattr(self._fs.raw_inode(self._inum))
        if len(data) < self.size:
            raise GuestDataError(f"ext2: inode {self._inum}: inline data shorter than the file")
        return data[: self.size]

    def _map(self) -> list[Extent]:
        if self._extents is None:
            mapper = _Mapper(self._fs, self.size, self._seed)
            extents = self._flags & _EXTENTS_FL
            runs = mapper.extent_tree(self._iblock) if extents else mapper.indirect(self._iblock)
            self._extents = runs_to_extents(runs, self._fs.block_size, self.size)
        return self._extents

    def open(self) -> BinaryIO:
        with guard(FSTYPE):
            if self.kind is Kind.DIR and self.size > FS_MAX_DIR_BYTES:
                raise LimitError(f"ext2: directory of {self.size} bytes exceeds {FS_MAX_DIR_BYTES}")
            if self._flags & _INLINE_DATA_FL:
                return io.BytesIO(self._inline())
            return extent_stream(self._fs.stream, self._map, self.size, FSTYPE)

    def extents(self) -> list[Extent] | None:
        if self._flags & _INLINE_DATA_FL:
            return None
        with guard(FSTYPE):
            return list(self._map())

    def readlink(self) -> str:
        if self.kind is not Kind.SYMLINK:
            raise GuestDataError(f"ext2: inode {self._inum} is not a symlink")
        check_symlink_size(FSTYPE, self.size)
        with guard(FSTYPE):
            if self._flags & _INLINE_DATA_FL:
                raw = self._inline()
            elif self.size < 60 and self._owns_no_blocks:  # fast symlink
                raw = self._iblock[: self.size]
            else:
                raw = self.open().read(self.size)
        return decode_name(raw)

    # -- directories ------------------------------------------------------------------------------------
    def _entries(self) -> Iterator[tuple[str, int]]:
        if self.kind is not Kind.DIR:
            return
        if self._flags & _INLINE_DATA_FL:
            data = self._inline()
            # the first 4 bytes are the parent's inode number: there are no '.'/'..' entries
            yield from _dirents(data[4:60], self._fs.filetype)
            yield from _dirents(data[60:], self._fs.filetype)
            return
        stream = self.open()
        size = self._fs.block_size
        for offset in range(0, self.size, size):
            block = stream.read(size)
            if self._fs.csum:
                rec_len = struct.unpack_from("<H", block, 4)[0] if len(block) >= 8 else 0
                whole = rec_len == size or (size == 65536 and rec_len in (0, 65535))
                if self._flags & _INDEX_FL and (offset == 0 or whole):
                    continue  # an htree index block (as the kernel tells them): no names to read
                _verify_dirblock(block, self._seed, self._inum)
            yield from _dirents(block, self._fs.filetype)

    def names(self) -> Iterator[str]:
        with guard(FSTYPE):
            for name, _ in self._entries():
                yield name

    def child(self, name: str) -> Node | None:
        with guard(FSTYPE):
            for entry, inum in scan(self._entries(), self._fs.limits, FSTYPE):
                if entry == name:
                    return self._fs.node(inum)
        return None


def _verify_inode(fs: ExtFileSystem, inum: int) -> int:
    """Check inode `inum`'s checksum (ext4_inode_csum); returns its seed for its blocks' checksums."""
    raw = fs.raw_inode(inum)
    seed = crc32c_raw(crc32c_raw(fs.csum_seed, struct.pack("<I", inum)), raw[0x64:0x68])  # + i_generation
    buf = bytearray(raw)
    buf[0x7C:0x7E] = bytes(2)  # i_checksum_lo
    has_hi = len(raw) > 128 and 128 + struct.unpack_from("<H", raw, 0x80)[0] >= 0x84
    stored = struct.unpack_from("<H", raw, 0x7C)[0]
    if has_hi:
        buf[0x82:0x84] = bytes(2)  # i_checksum_hi
        stored |= struct.unpack_from("<H", raw, 0x82)[0] << 16
    computed = crc32c_raw(seed, bytes(buf))
    if (computed if has_hi else computed & 0xFFFF) != stored:
        raise GuestDataError(f"ext2: inode {inum} checksum mismatch")
    return seed


def _verify_dirblock(block: bytes, seed: int, inum: int) -> None:
    """A leaf directory block ends in a 12-byte tail holding the checksum of the rest (ext4_dirblock_csum)."""
    tail = len(block) - 12
    fields = struct.unpack_from("<IHBB", block, tail) if tail >= 0 else None
    if fields != (0, 12, 0, 0xDE):
        raise GuestDataError(f"ext2: directory inode {inum}: block without its checksum tail")
    if crc32c_raw(seed, block[:tail]) != struct.unpack_from("<I", block, tail + 8)[0]:
        raise GuestDataError(f"ext2: directory inode {inum}: block checksum mismatch")


def _dirents(block: bytes, filetype: bool) -> Iterator[tuple[str, int]]:
    """(name, inode) of the live entries in one directory block, skipping '.', '..' and the csum tail.

    A damaged rec_len ends the block (as the kernel skips the rest of a corrupt block); it cannot loop.
    """
    offset = 0
    while offset + 8 <= len(block):
        inum, rec_len, name_len = struct.unpack_from("<IHH", block, offset)
        if filetype:
            name_len &= 0xFF
        if len(block) == 65536 and rec_len in (0, 65535):  # 64 KiB blocks: a whole-block rec_len
            rec_len = 65536
        if rec_len < 8 or rec_len % 4 or offset + rec_len > len(block) or 8 + name_len > rec_len:
            return
        if inum and name_len:
            raw = block[offset + 8 : offset + 8 + name_len]
            if raw not in (b".", b".."):
                yield decode_name(raw), inum
        offset += rec_len


def _inline_xattr(raw: bytes) -> bytes:
    """The value of the in-inode `system.data` xattr (b'' when absent)."""
    if len(raw) <= 128 + 2:
        return b""
    start = 128 + struct.unpack_from("<H", raw, 128)[0]
    if start + 4 > len(raw) or struct.unpack_from("<I", raw, start)[0] != _XATTR_MAGIC:
        return b""
    first = start + 4  # value offsets are relative to the first entry
    offset = first
    while offset + 16 <= len(raw):
        name_len, index, value_offs, value_inum, value_size = struct.unpack_from("<BBHII", raw, offset)
        if (name_len, index, value_offs) == (0, 0, 0):
            break
        name = raw[offset + 16 : offset + 16 + name_len]
        if index == _XATTR_INDEX_SYSTEM and name == b"data":
            if value_inum:
                raise GuestDataError("ext2: inline data kept in an xattr inode is not supported")
            end = first + value_offs + value_size
            if end > len(raw):
                raise GuestDataError("ext2: inline data xattr overruns its inode")
            return raw[first + value_offs : end]
        offset += (16 + name_len + 3) & ~3
    return b""


class _Mapper:
    """Bounded logical->physical block mapping of one inode."""

    def __init__(self, fs: ExtFileSystem, size: int, seed: int) -> None:
        self.fs = fs
        self.seed = seed  # the inode's checksum seed (metadata_csum)
        self.nblocks = -(-size // fs.block_size)
        self.cap = map_cap(fs.limits) * 2  # runs or nodes+pointers visited; a 1 KiB-block 128 MiB file: ~1x
        self.runs: list[tuple[int, int | None, int]] = []
        self.work = 0

    def _tick(self) -> None:
        self.work += 1
        if self.work > self.cap or len(self.runs) > self.cap:
            raise LimitError(f"ext2: block map larger than {self.cap} runs")

    def _add(self, lblk: int, pblk: int | None, count: int) -> None:
        if self.runs:
            last_l, last_p, last_n = self.runs[-1]
            follows = pblk is None if last_p is None else pblk == last_p + last_n
            if last_l + last_n == lblk and follows:
                self.runs[-1] = (last_l, last_p, last_n + count)
                return
        self.runs.append((lblk, pblk, count))
        self._tick()

    def extent_tree(self, iblock: bytes) -> list[tuple[int, int | None, int]]:
        stack: list[tuple[bytes | int, int | None]] = [(iblock, None)]
        next_lblk = 0
        while stack:
            where, want_depth = stack.pop()
            self._tick()
            node = where if isinstance(where, bytes) else self.fs.read_block(where)
            magic, entries, most, depth = struct.unpack_from("<HHHH", node, 0)
            if magic != 0xF30A or depth > 5 or (want_depth is not None and depth != want_depth):
                raise GuestDataError("ext2: corrupt extent tree")
            if self.fs.csum and not isinstance(where, bytes):  # a block's tail follows its eh_max slots
                tail = 12 + 12 * most
                if (
                    tail + 4 > len(node)
                    or crc32c_raw(self.seed, node[:tail]) != struct.unpack_from("<I", node, tail)[0]
                ):
                    raise GuestDataError(f"ext2: extent block {where} checksum mismatch")
            if 12 + 12 * entries > len(node):
                raise GuestDataError("ext2: extent node overflows its block")
            if depth:
                children = []
                for i in range(entries):
                    _, leaf_lo, leaf_hi = struct.unpack_from("<IIH", node, 12 + 12 * i)
                    children.append((leaf_hi << 32) | leaf_lo)
                stack.extend((child, depth - 1) for child in reversed(children))
                continue
            for i in range(entries):
                lblk, length, start_hi, start_lo = struct.unpack_from("<IHHI", node, 12 + 12 * i)
                uninit = length > 32768  # uninitialized (preallocated) extent: reads as zeros
                length = length - 32768 if uninit else length
                if lblk < next_lblk:
                    raise GuestDataError("ext2: extents out of order")
                if lblk >= self.nblocks:
                    return self.runs
                length = min(length, self.nblocks - lblk)
                self._add(lblk, None if uninit else (start_hi << 32) | start_lo, length)
                next_lblk = lblk + length
        return self.runs

    def indirect(self, iblock: bytes) -> list[tuple[int, int | None, int]]:
        pointers = struct.unpack("<15I", iblock)
        per = self.fs.block_size // 4
        lblk = 0
        for ptr in pointers[:12]:
            if lblk >= self.nblocks:
                return self.runs
            self._add(lblk, ptr or None, 1)
            lblk += 1
        for level, ptr in enumerate(pointers[12:], start=1):
            if lblk >= self.nblocks:
                break
            self._indirect_level(ptr, level, lblk, per)
            lblk += per**level
        return self.runs

    def _indirect_level(self, ptr: int, level: int, start: int, per: int) -> None:
        span = per ** (level - 1)
        if ptr == 0:
            self._add(start, None, min(span * per, self.nblocks - start))
            return
        self._tick()
        table = struct.unpack(f"<{per}I", self.fs.read_block(ptr))
        for i, child in enumerate(table):
            child_start = start + i * span
            if child_start >= self.nblocks:
                return
            self.work += 1  # every pointer looked at counts, so shared all-zero tables cannot stall us
            if level == 1:
                self._add(child_start, child or None, 1)
            else:  # recursion depth is at most 3 (triple indirect)
                self._indirect_level(child, level - 1, child_start, per)
