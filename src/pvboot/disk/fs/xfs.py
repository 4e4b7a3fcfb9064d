"""XFS (v4 and v5) adapter.

dissect.xfs API used: `XFS` (superblock, AG headers, uuid, `get_inode`), `INode.inode` (parsed dinode),
`INode.datafork()`, `INode.iterdir()` and `INode.link` for directory and symlink formats, and the
`parse_fsblock` / `fsb_to_bb` helpers for extent records.

The block map is built here, not by dissect's `INode.dataruns`: that walks the bmap B+tree recursively
with no depth or visit bound and ignores the "unwritten" extent flag (preallocated space would read as
stale disk bytes instead of zeros). Our bounded map is handed back to dissect by filling its
`dataruns` cached property, so its directory and symlink readers use it too.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

from pvboot.disk.fs._common import (
    check_symlink_size,
    extent_stream,
    guard,
    map_cap,
    read_at,
    runs_to_extents,
    scan,
)
from pvboot.disk.fs._csum import xfs_ok
from pvboot.disk.fs._deferred import deferred
from pvboot.disk.fsapi import Extent, FileSystem, Kind, Node
from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import FS_MAX_DIR_BYTES, Limits

FSTYPE = "xfs"
REQUIRES = "dissect.xfs"
LABEL = "XFS"  # its name in messages
_xfs = deferred("dissect.xfs.xfs")
_SB_MAGIC = b"XFSB"  # sb_magicnum, the first bytes of the primary superblock
_FMT_LOCAL, _FMT_EXTENTS, _FMT_BTREE = 1, 2, 3
_BMAP_MAGICS = (0x424D4150, 0x424D4133)  # "BMAP" (v4), "BMA3" (v5)
_DIFLAG_REALTIME = 0x1
_INCOMPAT_META_UUID = 0x4
_DIR3_DATA_MAGICS = (b"XDB3", b"XDD3")
_KINDS = {stat.S_IFREG: Kind.FILE, stat.S_IFDIR: Kind.DIR, stat.S_IFLNK: Kind.SYMLINK}

Run = tuple[int, int | None, int]


def probe(stream: BinaryIO) -> bool:
    return read_at(stream, 0, len(_SB_MAGIC)) == _SB_MAGIC


def mount(stream: BinaryIO, limits: Limits) -> XfsFileSystem:
    return XfsFileSystem(stream, limits)


class XfsFileSystem(FileSystem):
    def __init__(self, stream: BinaryIO, limits: Limits) -> None:
        self.stream = stream
        self.limits = limits
        self.xfs = _xfs.XFS(stream)
        sb = self.xfs.sb
        self.block_size = sb.sb_blocksize
        if not 512 <= self.block_size <= 65536 or self.block_size & (self.block_size - 1):
            raise GuestDataError(f"xfs: unsupported block size {self.block_size}")
        # v5: check the CRCs the kernel checks (superblock, inodes, directory and bmap blocks) before
        # trusting a structure; a flipped pointer must not silently redirect a file
        self.crc = self.xfs.version == 5
        self.meta_uuid = bytes(sb.sb_uuid)
        if self.crc:
            sect = sb.sb_sectsize
            if not 512 <= sect <= 32768 or sect & (sect - 1):
                raise GuestDataError(f"xfs: unsupported sector size {sect}")
            stream.seek(0)
            if not xfs_ok(stream.read(sect), 224):
                raise GuestDataError("xfs: superblock checksum mismatch")
            if sb.sb_features_incompat & _INCOMPAT_META_UUID:
                self.meta_uuid = bytes(sb.sb_meta_uuid)
        self.fstype = FSTYPE
        self.uuid = str(self.xfs.uuid)  # sb_uuid, the user-visible one (GRUB and blkid agree)
        self.label = bytes(sb.sb_fname).split(b"\0")[0].decode("utf-8", "replace") or None
        self._root = XfsNode(self, sb.sb_rootino)

    def root(self) -> Node:
        return self._root

    def fs_block(self, fsb: int) -> int:
        """An XFS "fsblock" (AG number | AG block) as a linear block number, checked against the geometry."""
        sb = self.xfs.sb
        agno, agbno = _xfs.fsb_to_bb(fsb, sb.sb_agblklog)
        if agno >= sb.sb_agcount or agbno >= sb.sb_agblocks:
            raise GuestDataError(f"xfs: block {fsb:#x} outside the filesystem")
        return int(agno * sb.sb_agblocks + agbno)

    def verify_inode(self, inum: int) -> None:
        """A v3 inode: magic, CRC, its own number and the filesystem's uuid (xfs_dinode_verify)."""
        sb = self.xfs.sb
        bits = sb.sb_agblklog + sb.sb_inopblog
        agno, agino = inum >> bits, inum & ((1 << bits) - 1)
        self.stream.seek(agno * sb.sb_agblocks * self.block_size + agino * sb.sb_inodesize)
        raw = self.stream.read(sb.sb_inodesize)
        if len(raw) < 176 or raw[:2] != b"IN" or raw[4] != 3:
            raise GuestDataError(f"xfs: inode {inum} is not a v3 inode")
        owner = struct.unpack_from(">Q", raw, 152)[0]
        if not xfs_ok(raw, 100) or owner != inum or raw[160:176] != self.meta_uuid:
            raise GuestDataError(f"xfs: inode {inum} checksum mismatch")

    def read_block(self, fsb: int) -> bytes:
        self.stream.seek(self.fs_block(fsb) * self.block_size)
        data = self.stream.read(self.block_size)
        if len(data) != self.block_size:
            raise GuestDataError("xfs: block beyond the end of the volume")
        return data


class XfsNode(Node):
    def __init__(self, fs: XfsFileSystem, inum: int) -> None:
        self._fs = fs
        self._ino: Any = fs.xfs.get_inode(inum)
        dinode = self._ino.inode
        if fs.crc:
            fs.verify_inode(inum)
        self.kind = _KINDS.get(stat.S_IFMT(dinode.di_mode), Kind.OTHER)
        self.size = dinode.di_size
        self._format = dinode.di_format
        self._realtime = bool(dinode.di_flags & _DIFLAG_REALTIME)
        self._dir_verified = False
        self._extents: list[Extent] | None = None

    def _map(self) -> list[Extent]:
        """The bounded block map, also installed as dissect's `dataruns` for its own readers."""
        if self._extents is None:
            if self._realtime:
                raise GuestDataError("xfs: files on a realtime device are not supported")
            runs = _Mapper(self._fs, self._ino, self.size).runs()
            self._extents = runs_to_extents(runs, self._fs.block_size, self.size)
            bs = self._fs.block_size
            self._ino.__dict__["dataruns"] = [
                (None if e.volume_offset is None else e.volume_offset // bs, -(-e.length // bs))
                for e in self._extents
            ]
        return self._extents

    def open(self) -> BinaryIO:
        with guard(FSTYPE):
            if self.kind is Kind.DIR and self.size > FS_MAX_DIR_BYTES:
                raise LimitError(f"xfs: directory of {self.size} bytes exceeds {FS_MAX_DIR_BYTES}")
            if self._format == _FMT_LOCAL:
                stream: BinaryIO = self._ino.datafork()
                return stream
            if self._format not in (_FMT_EXTENTS, _FMT_BTREE):
                raise GuestDataError(f"xfs: inode data fork format {self._format} holds no file data")
            return extent_stream(self._fs.stream, self._map, self.size, FSTYPE)

    def extents(self) -> list[Extent] | None:
        if self._format not in (_FMT_EXTENTS, _FMT_BTREE):
            return None
        with guard(FSTYPE):
            return list(self._map())

    def readlink(self) -> str:
        if self.kind is not Kind.SYMLINK:
            raise GuestDataError("xfs: not a symlink")
        check_symlink_size(FSTYPE, self.size)
        with guard(FSTYPE):
            if self._format != _FMT_LOCAL:
                self._map()
            return str(self._ino.link)

    def _entries(self) -> Iterator[Any]:
        if self.kind is not Kind.DIR:
            return
        if self.size > FS_MAX_DIR_BYTES:
            raise LimitError(f"xfs: directory of {self.size} bytes exceeds {FS_MAX_DIR_BYTES}")
        if self._format != _FMT_LOCAL:
            self._map()  # dissect's iterdir reads the directory through our bounded map
            if self._fs.crc and not self._dir_verified:
                self._verify_dir_blocks()
                self._dir_verified = True
        for entry in self._ino.iterdir():
            if entry.filename not in (".", ".."):
                yield entry

    def _verify_dir_blocks(self) -> None:
        """The v5 data blocks dissect will read: CRC and owner (xfs_dir3_data_verify)."""
        size = self._fs.block_size << self._fs.xfs.sb.sb_dirblklog
        stream = extent_stream(self._fs.stream, self._map(), self.size, FSTYPE)
        for _ in range(0, self.size, size):
            block = stream.read(size)
            if block[:4] not in _DIR3_DATA_MAGICS:
                continue  # a hole, or a block dissect skips too
            owner = struct.unpack_from(">Q", block, 40)[0] if len(block) == size else None
            if owner != self._ino.inum or not xfs_ok(block, 4):
                raise GuestDataError(f"xfs: directory inode {self._ino.inum}: block checksum mismatch")

    def names(self) -> Iterator[str]:
        with guard(FSTYPE):
            for entry in self._entries():
                yield entry.filename

    def child(self, name: str) -> Node | None:
        with guard(FSTYPE):
            for entry in scan(self._entries(), self._fs.limits, FSTYPE):
                if entry.filename == name:
                    return XfsNode(self._fs, entry.inum)
        return None


class _Mapper:
    """Bounded walk of one inode's extent list or bmap B+tree into (file block, disk block|None, count)."""

    def __init__(self, fs: XfsFileSystem, ino: Any, size: int) -> None:
        self.fs = fs
        self.ino = ino
        self.nblocks = -(-size // fs.block_size)
        self.cap = map_cap(fs.limits)
        self.out: list[Run] = []
        self.visits = 0
        self.next_block = 0

    def runs(self) -> list[Run]:
        fork = self.ino.datafork().read()
        if self.ino.inode.di_format == _FMT_EXTENTS:
            count = min(self.ino.data_extents, len(fork) // 16)
            for i in range(count):
                self._record(fork[16 * i : 16 * i + 16])
            return self.out
        level, numrecs = struct.unpack_from(">HH", fork, 0)
        maxrecs = (len(fork) - 4) // 16
        if not 1 <= level <= 9 or numrecs > maxrecs:
            raise GuestDataError("xfs: corrupt bmap btree root")
        pointers = struct.unpack_from(f">{numrecs}Q", fork, 4 + maxrecs * 8)
        stack = [(ptr, level - 1) for ptr in reversed(pointers)]
        header = len(self.fs.xfs._lblock_s)
        while stack:
            fsb, want = stack.pop()
            self.visits += 1
            if self.visits > self.cap:
                raise LimitError(f"xfs: bmap btree larger than {self.cap} blocks")
            block = self.fs.read_block(fsb)
            magic, lvl, nrecs = struct.unpack_from(">IHH", block, 0)
            maxr = (len(block) - header) // 16
            if magic not in _BMAP_MAGICS or lvl != want or nrecs > maxr:
                raise GuestDataError("xfs: corrupt bmap btree block")
            owner = struct.unpack_from(">Q", block, 56)[0]
            if self.fs.crc and (not xfs_ok(block, 64) or owner != self.ino.inum):
                raise GuestDataError(f"xfs: bmap btree block {fsb:#x} checksum mismatch")
            if lvl == 0:
                for i in range(nrecs):
                    if self._record(block[header + 16 * i : header + 16 * i + 16]):
                        return self.out
            else:
                children = struct.unpack_from(f">{nrecs}Q", block, header + maxr * 8)
                stack.extend((child, lvl - 1) for child in reversed(children))
        return self.out

    def _record(self, raw: bytes) -> bool:
        """Add one packed extent record; True once the records pass the end of the file."""
        offset, fsb, count, unwritten = _xfs.parse_fsblock(raw)
        if offset < self.next_block:
            raise GuestDataError("xfs: extents out of order")
        if offset >= self.nblocks:
            return True
        count = min(count, self.nblocks - offset)
        self.out.append((offset, None if unwritten else self.fs.fs_block(fsb), count))
        if len(self.out) > self.cap:
            raise LimitError(f"xfs: block map larger than {self.cap} runs")
        self.next_block = offset + count
        return False
