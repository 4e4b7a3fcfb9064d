"""ISO9660 adapter (Rock Ridge, Joliet, plain ISO9660).

pycdlib API used: `PyCdlib.open_fp` (parses every directory record up front, refusing directory loops),
`has_rock_ridge` / `has_joliet`, the volume descriptors' `root_directory_record()`, and each
`DirectoryRecord`'s `children`, `file_identifier()`, `extent_location()`, `get_data_length()` and
`rock_ridge` (`name()`, `is_symlink()`, `symlink_path()`, relocated-directory links).

Names: Rock Ridge when present (exact, case-sensitive), else Joliet, else ISO9660 with ';1' and a trailing
'.' stripped and lower-cased as Linux shows them; non-Rock-Ridge names compare case-insensitively. File data
is read straight from the volume (one contiguous extent, several for multi-extent files).
The label and uuid are read from the volume descriptor GRUB uses: the primary one, or the Joliet one when
there is no Rock Ridge; the uuid is its modification date "YYYY-MM-DD-HH-MM-SS-CC" (as GRUB and blkid print).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from pvboot.disk.fs._common import check_symlink_size, decode_name, extent_stream, guard, read_at, scan
from pvboot.disk.fs._deferred import deferred
from pvboot.disk.fsapi import Extent, FileSystem, Kind, Node
from pvboot.errors import GuestDataError
from pvboot.limits import ISO9660_MAX_DESCRIPTORS, Limits

FSTYPE = "iso9660"
REQUIRES = "pycdlib"
LABEL = "ISO9660"  # its name in messages
pycdlib = deferred(REQUIRES)
_VD_MAGIC = (0x8001, b"CD001")  # the standard identifier of the first volume descriptor (sector 16)
_SECTOR = 2048
_MULTI_EXTENT = 0x80


def probe(stream: BinaryIO) -> bool:
    offset, magic = _VD_MAGIC
    return read_at(stream, offset, len(magic)) == magic


def mount(stream: BinaryIO, limits: Limits) -> IsoFileSystem:
    return IsoFileSystem(stream, limits)


class IsoFileSystem(FileSystem):
    def __init__(self, stream: BinaryIO, limits: Limits) -> None:
        self.stream = stream
        self.limits = limits
        self.iso = pycdlib.PyCdlib()
        self.iso.open_fp(stream)
        self.block_size = self.iso.logical_block_size
        self.rockridge = bool(self.iso.has_rock_ridge())
        if self.rockridge or not self.iso.has_joliet():
            self.namespace = "rr" if self.rockridge else "iso"
            root = self.iso.pvd.root_directory_record()
        else:
            self.namespace = "joliet"
            assert self.iso.joliet_vd is not None  # has_joliet()
            root = self.iso.joliet_vd.root_directory_record()
        self.fstype = FSTYPE
        self.label, self.uuid = _volume_ids(stream, self.rockridge)
        self._root = IsoNode(self, [root])

    def root(self) -> Node:
        return self._root

    def name_of(self, record: Any) -> str:
        if self.namespace == "rr" and record.rock_ridge is not None:
            name = record.rock_ridge.name()
            if name:
                return decode_name(bytes(name))
        raw = bytes(record.file_identifier())
        text = raw.decode("utf-16-be", "replace") if self.namespace == "joliet" else raw.decode("latin-1")
        text = text.split(";", 1)[0]
        if self.namespace != "joliet":
            text = text.rstrip(".").lower()
        return text

    def exact(self, record: Any) -> bool:
        """Whether `record`'s name is a Rock Ridge name (compared case-sensitively)."""
        return self.namespace == "rr" and record.rock_ridge is not None and bool(record.rock_ridge.name())


class IsoNode(Node):
    def __init__(self, fs: IsoFileSystem, records: list[Any]) -> None:
        self._fs = fs
        rec = records[0]
        rr = rec.rock_ridge if fs.namespace == "rr" else None
        moved = rr.cl_to_moved_dr if rr is not None and rr.child_link_record_exists() else None
        self._dir = moved if moved is not None else rec
        self._records = records
        if rr is not None and rr.is_symlink():
            self.kind = Kind.SYMLINK
        elif self._dir.is_dir():
            self.kind = Kind.DIR
        else:
            self.kind = Kind.FILE
        self.size = sum(r.get_data_length() for r in records)

    def _entries(self) -> Iterator[tuple[str, list[Any]]]:
        """(name, records) per child; the records of a multi-extent file are grouped."""
        if self.kind is not Kind.DIR:
            return
        group: list[Any] = []
        for child in self._dir.children:
            if child.is_dot() or child.is_dotdot():
                continue
            rr = child.rock_ridge if self._fs.namespace == "rr" else None
            if rr is not None and rr.relocated_record():
                continue  # shown where its child-link record points at it
            group.append(child)
            if child.file_flags & _MULTI_EXTENT and not child.is_dir():
                continue
            yield self._fs.name_of(group[0]), group
            group = []
        if group:
            raise GuestDataError("iso9660: multi-extent file without its last extent")

    def names(self) -> Iterator[str]:
        with guard(FSTYPE):
            for name, _ in self._entries():
                yield name

    def child(self, name: str) -> Node | None:
        folded = name.lower()
        with guard(FSTYPE):
            for entry, records in scan(self._entries(), self._fs.limits, FSTYPE):
                exact = self._fs.exact(records[0])
                if entry == name or (not exact and entry.lower() == folded):
                    return IsoNode(self._fs, records)
        return None

    def readlink(self) -> str:
        if self.kind is not Kind.SYMLINK:
            raise GuestDataError("iso9660: not a symlink")
        with guard(FSTYPE):
            target = bytes(self._records[0].rock_ridge.symlink_path())
        check_symlink_size(FSTYPE, len(target))
        return decode_name(target)

    def extents(self) -> list[Extent] | None:
        with guard(FSTYPE):
            out: list[Extent] = []
            pos = 0
            for rec in self._records:
                if rec.file_unit_size or rec.interleave_gap_size:
                    return None  # interleaved files are not one plain run per record
                length = rec.get_data_length()
                if length:
                    out.append(Extent(pos, rec.extent_location() * self._fs.block_size, length))
                pos += length
            return out

    def open(self) -> BinaryIO:
        if self.kind is not Kind.FILE:
            raise GuestDataError("iso9660: not a regular file")
        extents = self.extents()
        if extents is None:
            raise GuestDataError("iso9660: interleaved files are not supported")
        return extent_stream(self._fs.stream, extents, self.size, FSTYPE)


def _volume_ids(stream: BinaryIO, rockridge: bool) -> tuple[str | None, str | None]:
    """(label, uuid) from the descriptor GRUB reads: Joliet's if there is no Rock Ridge, else the primary."""
    primary: bytes | None = None
    joliet: bytes | None = None
    for index in range(16, 16 + ISO9660_MAX_DESCRIPTORS):
        stream.seek(index * _SECTOR)
        desc = stream.read(_SECTOR)
        if len(desc) < _SECTOR or desc[1:6] != b"CD001" or desc[0] == 255:
            break
        if desc[0] == 1 and primary is None:
            primary = desc
        elif desc[0] == 2 and desc[88:90] == b"%/" and desc[90:91] in (b"@", b"C", b"E") and joliet is None:
            joliet = desc
    chosen = joliet if joliet is not None and not rockridge else primary
    if chosen is None:
        return None, None
    encoding = "utf-16-be" if chosen is joliet else "utf-8"
    label = chosen[40:72].decode(encoding, "replace").rstrip(" \0")
    modified = chosen[830:846]
    if not any(modified):
        return label or None, None
    d = modified.decode("latin-1")
    uuid = f"{d[0:4]}-{d[4:6]}-{d[6:8]}-{d[8:10]}-{d[10:12]}-{d[12:14]}-{d[14:16]}"
    return label or None, uuid
