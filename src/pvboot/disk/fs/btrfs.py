"""Btrfs adapter.

dissect.btrfs API used: `Btrfs` (superblock, chunk tree -> logical address stream `_logical_fh`, default
subvolume), `Btrfs.open_subvolume` / `Subvolume.tree` (per-subvolume B-tree with `find` and `cursor().iter`)
and the `c_btrfs` structs. Names are looked up by the crc32c name hash (DIR_ITEM), listed via DIR_INDEX.

Hardening and gaps covered here:
* dissect's tree cursor trusts node headers: a child pointing at itself loops forever, an empty node spins
  its binary search. `_harden_cursor` bounds depth, node visits, and checks each child's level/bytenr.
* dissect's chunk stream accepts a chunk with as many missing stripes as its profile tolerates, even when
  that is all of them (a RAID1C3 chunk claiming two stripes, both on another device), or with none, and
  then loops forever looking for a readable one. `_harden_chunks` refuses a chunk it could not read.
* File data is read by `_BtrfsReader`, not dissect's ExtentStream, which decompresses extents of any
  claimed size in one go: each compressed extent must be <= 128 KiB (the Btrfs maximum) on disk and in
  RAM and is decompressed with an output cap, one extent at a time, never the whole file.
* KNOWN GAP: zstd extents need `backports.zstd`, which dissect uses but does not declare (see
  `_btrfs_codecs`, which also accepts `zstandard`).
"""

from __future__ import annotations

import io
import stat
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from pvboot.disk.fs._btrfs_codecs import decompress
from pvboot.disk.fs._common import STREAM_BUFFER, check_symlink_size, decode_name, guard, map_cap, read_at
from pvboot.disk.fs._csum import btrfs_ok
from pvboot.disk.fs._deferred import deferred
from pvboot.disk.fsapi import Extent, FileSystem, Kind, Node
from pvboot.disk.stream import RawReader
from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import BTRFS_MAX_NODE_VISITS, Limits

FSTYPE = "btrfs"
REQUIRES = "dissect.btrfs"
LABEL = "Btrfs"  # its name in messages
_btrfs = deferred("dissect.btrfs.btrfs")
_structs = deferred("dissect.btrfs.c_btrfs")
_tree = deferred("dissect.btrfs.tree")
_stream = deferred("dissect.btrfs.stream")
_hash = deferred("dissect.util.hash")
_SB_MAGIC = (0x10040, b"_BHRfS_M")  # the primary superblock (at 64 KiB) and its magic at byte 0x40
TOP_LEVEL = 5  # BTRFS_FS_TREE_OBJECTID
MAX_EXTENT = 128 * 1024  # BTRFS_MAX_COMPRESSED / max uncompressed size of a compressed extent
_MAX_LEVEL = 8  # BTRFS_MAX_LEVEL
_DIR_ITEM_HEADER = 30  # btrfs_dir_item without name and data
_INLINE_HEADER = 21  # btrfs_file_extent_item up to and including `type`
_KINDS = {stat.S_IFREG: Kind.FILE, stat.S_IFDIR: Kind.DIR, stat.S_IFLNK: Kind.SYMLINK}


def _harden_cursor() -> None:
    """Bound dissect's B-tree cursor (applied once, process-wide): depth, visits, level and address checks."""
    Cursor = _tree.Cursor
    if getattr(Cursor, "_pvboot_hardened", False):
        return
    plain_push = Cursor.push

    def push(self: Any, address: int, initial_index: int = 0) -> None:
        parent = self._header
        self._pvboot_visits = getattr(self, "_pvboot_visits", 0) + 1
        if self._pvboot_visits > BTRFS_MAX_NODE_VISITS or len(self._path) > _MAX_LEVEL:
            raise GuestDataError("btrfs: B-tree too deep or too large")
        plain_push(self, address, initial_index)
        btrfs = self.btree.btrfs
        checked = btrfs.__dict__.setdefault("_pvboot_checked", set())
        if address not in checked:  # the node's checksum, as the kernel checks it before use
            if not btrfs_ok(btrfs.sb.csum_type, self._node):
                raise GuestDataError(f"btrfs: B-tree node at {address:#x}: checksum mismatch")
            checked.add(address)
        header = self._header
        node_size = self.btree.btrfs.node_size
        max_items = (node_size - 101) // (33 if header.level else 25)
        if (
            header.bytenr != address
            or header.level >= _MAX_LEVEL
            or not 0 < header.nritems <= max_items
            or (parent is not None and header.level != parent.level - 1)
        ):
            raise GuestDataError(f"btrfs: corrupt B-tree node at {address:#x}")

    Cursor.push = push
    Cursor._pvboot_hardened = True


def _harden_chunks() -> None:
    """Refuse (process-wide, applied once) a chunk dissect's stream would spin on: no stripes, no stripe on
    a device we have, a DUP chunk whose fallback second copy is missing, RAID5/6 needing reconstruction."""
    ChunkStream = _stream.ChunkStream
    if getattr(ChunkStream, "_pvboot_hardened", False):
        return
    plain_add = ChunkStream.add

    def add(self: Any, offset: int, chunk: Any) -> None:
        known = len(self.chunks)
        plain_add(self, offset, chunk)
        if len(self.chunks) == known:  # an overlapping chunk dissect skipped
            return
        added = self.chunks[bisect_right(self._chunk_offsets, offset) - 1]
        present = [stripe.fh is not None for stripe in added.stripes]
        if not present or len(present) != added.num_stripes:
            raise GuestDataError(f"btrfs: chunk at {offset:#x} has no stripes")
        if all(present):
            return
        if not any(present):
            raise GuestDataError(f"btrfs: no stripe of the chunk at {offset:#x} is on this device")
        if added.type & _structs.BTRFS_BLOCK_GROUP_RAID56_MASK:
            raise GuestDataError(f"btrfs: chunk at {offset:#x} is RAID5/6 with a device missing")
        if added.type & _structs.BTRFS_BLOCK_GROUP.DUP and not present[0] and not present[1 % len(present)]:
            raise GuestDataError(f"btrfs: the DUP chunk at {offset:#x} has a copy on another device")

    ChunkStream.add = add
    ChunkStream._pvboot_hardened = True


def probe(stream: BinaryIO) -> bool:
    offset, magic = _SB_MAGIC
    return read_at(stream, offset, len(magic)) == magic


def mount(stream: BinaryIO, limits: Limits) -> BtrfsFileSystem:
    _harden_cursor()
    _harden_chunks()
    return BtrfsFileSystem(stream, limits)


class BtrfsFileSystem(FileSystem):
    def __init__(self, stream: BinaryIO, limits: Limits) -> None:
        stream.seek(0x10000)
        raw = stream.read(4096)
        sb = _structs.c_btrfs.btrfs_super_block(raw)
        if len(raw) != 4096 or not btrfs_ok(sb.csum_type, raw):
            raise GuestDataError("btrfs: superblock checksum mismatch")
        for value, low in ((sb.sectorsize, 4096), (sb.nodesize, sb.sectorsize)):
            if not low <= value <= 65536 or value & (value - 1):
                raise GuestDataError(f"btrfs: unsupported sector/node size {value}")
        self.limits = limits
        self.btrfs = _btrfs.Btrfs(stream)
        self.sector_size = sb.sectorsize
        self.single_device = sb.num_devices == 1
        self.fstype = FSTYPE
        self.uuid = str(self.btrfs.uuid)
        self.label = bytes(sb.label).split(b"\0")[0].decode("utf-8", "replace") or None
        default = self.btrfs.default_subvolume.objectid or TOP_LEVEL
        self._root = self.subvolume_root(default)
        self._alternates = [] if default == TOP_LEVEL else [self.subvolume_root(TOP_LEVEL)]

    def root(self) -> Node:
        return self._root

    def alternate_roots(self) -> list[Node]:
        return list(self._alternates)

    def subvolume_root(self, objectid: int) -> BtrfsNode:
        subvolume = self.btrfs.open_subvolume(objectid)
        return BtrfsNode(self, subvolume, subvolume.tree.root_item.root_dirid)

    def physical(self, logical: int, length: int) -> list[tuple[int, int]] | None:
        """Device byte ranges of [logical, logical+length), or None unless plainly mapped (single/DUP)."""
        chunks = self.btrfs._logical_fh.chunks
        starts = [chunk.offset for chunk in chunks]
        out = []
        while length > 0:
            index = bisect_right(starts, logical) - 1
            if index < 0:
                return None
            chunk = chunks[index]
            profile = chunk.type & _structs.BTRFS_BLOCK_GROUP_PROFILE_MASK
            if logical >= chunk.offset + chunk.length or profile not in (0, _structs.BTRFS_BLOCK_GROUP.DUP):
                return None
            count = min(length, chunk.offset + chunk.length - logical)
            out.append((chunk.stripes[0].offset + logical - chunk.offset, count))
            logical += count
            length -= count
        return out


@dataclass(slots=True)
class _Piece:
    """One file extent: a hole, plain logical bytes, a compressed extent, or inline data."""

    start: int
    length: int
    address: int | None = None  # logical address; None for a hole or inline data
    compression: int = 0
    stored: int = 0  # compressed bytes on disk
    skip: int = 0  # offset of this file range inside the decompressed extent
    ram: int = 0  # decompressed size of the extent
    inline: bytes | None = None


class BtrfsNode(Node):
    def __init__(self, fs: BtrfsFileSystem, subvolume: Any, inum: int) -> None:
        self._fs = fs
        self._sub = subvolume
        self._inum = inum
        item = subvolume.inode(inum).inode
        self.kind = _KINDS.get(stat.S_IFMT(item.mode), Kind.OTHER)
        self.size = item.size
        self._pieces: list[_Piece] | None = None

    # -- directories ------------------------------------------------------------------------------------
    def names(self) -> Iterator[str]:
        if self.kind is not Kind.DIR:
            return
        with guard(FSTYPE):
            last = -1
            cursor = self._sub.tree.cursor()
            for item, data in cursor.iter(
                self._inum, _structs.c_btrfs.BTRFS_DIR_INDEX_KEY, 2, ignore_offset=True
            ):
                if item.key.offset <= last:
                    raise GuestDataError("btrfs: directory index out of order")
                last = item.key.offset
                yield decode_name(bytes(_structs.c_btrfs.btrfs_dir_item(data).name))

    def child(self, name: str) -> Node | None:
        if self.kind is not Kind.DIR:
            return None
        raw = name.encode("utf-8", "surrogateescape")
        name_hash = (
            _hash.crc32c.update(1, raw) ^ 0xFFFFFFFF
        ) & 0xFFFFFFFF  # kernel crc32c(~1, name), no final xor
        with guard(FSTYPE):
            try:
                _, data = self._sub.tree.find(self._inum, _structs.c_btrfs.BTRFS_DIR_ITEM_KEY, name_hash)
            except KeyError:
                return None
            data = bytes(data)
            offset = 0
            while offset + _DIR_ITEM_HEADER <= len(data):  # hash collisions share one item
                entry = _structs.c_btrfs.btrfs_dir_item(data[offset:])
                offset += _DIR_ITEM_HEADER + entry.name_len + entry.data_len
                if bytes(entry.name) != raw:
                    continue
                location = entry.location
                if location.type == _structs.c_btrfs.BTRFS_ROOT_ITEM_KEY:
                    return self._fs.subvolume_root(location.objectid)
                if location.type == _structs.c_btrfs.BTRFS_INODE_ITEM_KEY:
                    return BtrfsNode(self._fs, self._sub, location.objectid)
                raise GuestDataError(f"btrfs: directory entry of unknown type {location.type}")
        return None

    # -- data -------------------------------------------------------------------------------------------
    def _map(self) -> list[_Piece]:
        if self._pieces is not None:
            return self._pieces
        pieces: list[_Piece] = []
        cap = map_cap(self._fs.limits)
        end = 0
        cursor = self._sub.tree.cursor()
        for item, data in cursor.iter(
            self._inum, _structs.c_btrfs.BTRFS_EXTENT_DATA_KEY, 0, ignore_offset=True
        ):
            start = item.key.offset
            if start >= self.size:
                break
            if start < end:
                raise GuestDataError("btrfs: overlapping file extents")
            head = _structs.c_btrfs.btrfs_file_extent_item_inline(data)
            if head.encryption or head.other_encoding:
                raise GuestDataError("btrfs: encrypted or encoded extents are not supported")
            if head.compression not in (0, 1, 2, 3):
                raise GuestDataError(f"btrfs: unknown compression {head.compression}")
            if head.type == _structs.c_btrfs.BTRFS_FILE_EXTENT_INLINE:
                if head.ram_bytes > MAX_EXTENT:
                    raise GuestDataError("btrfs: oversized inline extent")
                piece = _Piece(
                    start,
                    min(head.ram_bytes, self.size - start),
                    compression=head.compression,
                    ram=head.ram_bytes,
                    inline=bytes(data[_INLINE_HEADER:]),
                )
            else:
                reg = _structs.c_btrfs.btrfs_file_extent_item_reg(data)
                length = min(reg.num_bytes, self.size - start)
                if head.type == _structs.c_btrfs.BTRFS_FILE_EXTENT_PREALLOC or reg.disk_bytenr == 0:
                    piece = _Piece(start, length)
                elif head.compression:
                    if reg.disk_num_bytes > MAX_EXTENT or head.ram_bytes > MAX_EXTENT:
                        raise GuestDataError("btrfs: compressed extent larger than 128 KiB")
                    piece = _Piece(
                        start,
                        length,
                        reg.disk_bytenr,
                        head.compression,
                        reg.disk_num_bytes,
                        reg.offset,
                        head.ram_bytes,
                    )
                else:
                    piece = _Piece(start, length, reg.disk_bytenr + reg.offset)
            pieces.append(piece)
            end = start + piece.length
            if len(pieces) > cap:
                raise LimitError(f"btrfs: more than {cap} extents in one file")
        self._pieces = pieces
        return pieces

    def open(self) -> BinaryIO:
        return io.BufferedReader(_BtrfsReader(self._fs, self._map, self.size), STREAM_BUFFER)

    def extents(self) -> list[Extent] | None:
        if not self._fs.single_device:
            return None
        with guard(FSTYPE):
            out: list[Extent] = []
            pos = 0
            for piece in self._map():
                if piece.inline is not None or piece.compression:
                    return None
                if piece.start > pos:
                    out.append(Extent(pos, None, piece.start - pos))
                if piece.address is None:
                    out.append(Extent(piece.start, None, piece.length))
                else:
                    ranges = self._fs.physical(piece.address, piece.length)
                    if ranges is None:
                        return None
                    offset = piece.start
                    for physical, count in ranges:
                        out.append(Extent(offset, physical, count))
                        offset += count
                pos = piece.start + piece.length
            if pos < self.size:
                out.append(Extent(pos, None, self.size - pos))
            return out

    def readlink(self) -> str:
        if self.kind is not Kind.SYMLINK:
            raise GuestDataError("btrfs: not a symlink")
        check_symlink_size(FSTYPE, self.size)
        return decode_name(self.open().read(self.size))


class _BtrfsReader(RawReader):
    """A file's bytes from its extent pieces; decompresses one (<= 128 KiB) extent at a time."""

    def __init__(self, fs: BtrfsFileSystem, pieces: Callable[[], list[_Piece]], size: int) -> None:
        super().__init__(size)
        self._fs = fs
        self._source: Callable[[], list[_Piece]] | None = pieces  # mapped on first read: opening stays cheap
        self._pieces: list[_Piece] = []
        self._starts: list[int] = []
        self._cached: tuple[int, bytes] | None = None

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.size - self._pos)
        if want <= 0:
            return 0
        with guard(FSTYPE):
            if not self._starts and self._source is not None:
                self._pieces = self._source()
                self._starts = [piece.start for piece in self._pieces]
                self._source = None
            index = bisect_right(self._starts, self._pos) - 1
            piece = self._pieces[index] if index >= 0 else None
            if piece is None or self._pos >= piece.start + piece.length:
                following = self._starts[index + 1] if index + 1 < len(self._starts) else self.size
                data = bytes(min(want, following - self._pos))
            else:
                delta = self._pos - piece.start
                count = min(want, piece.length - delta)
                data = self._piece_bytes(piece, delta, count)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _piece_bytes(self, piece: _Piece, delta: int, count: int) -> bytes:
        if piece.address is None and piece.inline is None:
            return bytes(count)
        if piece.inline is None and not piece.compression:
            assert piece.address is not None
            logical = self._fs.btrfs._logical_fh
            logical.seek(piece.address + delta)
            data: bytes = logical.read(count)
            if len(data) != count:
                raise GuestDataError("btrfs: file data outside the mapped chunks")
            return data
        key = piece.start
        if self._cached is None or self._cached[0] != key:
            if piece.inline is not None:
                raw = piece.inline
            else:
                logical = self._fs.btrfs._logical_fh
                logical.seek(piece.address)
                raw = logical.read(piece.stored)
            plain = (
                raw
                if not piece.compression
                else decompress(raw, piece.compression, piece.ram, self._fs.sector_size)
            )
            self._cached = (key, plain)
        plain = self._cached[1][piece.skip + delta : piece.skip + delta + count]
        return plain + bytes(count - len(plain))  # the kernel zero-fills a short extent too
