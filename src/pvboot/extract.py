"""Bounded copy of guest files into the output files the parent created. Runs in the child.

The bytes of a file whose extents lie plainly in the image go straight from the image's fd to the output
fd, without passing through this process: file extent (`Node.extents()`, volume-relative) -> volume ->
guest disk (partition offset, LVM segments) -> host ranges of the image (raw: the same; qcow2: its data
clusters) -> `os.copy_file_range`, or `os.sendfile` where that is refused (EXDEV: the output directory is on
another filesystem, such as a tmpfs; EINVAL: the image is a block device). What is not stored plainly
(compressed or inline file data, compressed or backing-file qcow2 clusters, an image without a host fd)
is read through the file's stream into one 1 MiB buffer. Holes are not written: the output stays sparse
there. Memory is flat whatever the file size.

Several initrds are concatenated in order into one ramdisk, as GRUB's `initrd a b` loads them. Every file,
and the sum, is capped by PYGRUB_MAX_FILE_SIZE_MB before the copy starts.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from pvboot.disk.fsapi import Extent, Node
from pvboot.disk.stream import window
from pvboot.disk.tree import FileTree, Placement
from pvboot.errors import GuestDataError, LimitError

CHUNK = 1 << 20  # the streaming buffer
SYSCALL_CHUNK = 1 << 30  # bytes asked of one copy_file_range / sendfile call

COPY_FILE_RANGE = "copy_file_range"
SENDFILE = "sendfile"
STREAM = "stream"
METHODS = (COPY_FILE_RANGE, SENDFILE, STREAM)  # tried in this order; tests force one
# errors that say "not this way" rather than "this copy failed": try the next method
_UNSUPPORTED = frozenset(
    {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM, errno.EBADF}
)


@dataclass(frozen=True)
class GuestFile:
    """A file to copy: the tree it lives in and its path there (for messages: `(volume)path`), or the
    byte range `span` (offset, length) of it that a loader boots (a UKI's section)."""

    tree: FileTree
    path: str
    span: tuple[int, int] | None = None
    span_name: str = ""

    @property
    def display(self) -> str:
        where = f"({self.tree.where}){self.path}" if self.tree.where else self.path
        if self.span is None:
            return where
        return f"{where}:{self.span_name or 'bytes'}[{self.span[0]}+{self.span[1]}]"

    def node(self) -> Node:
        """The regular file, its span checked to lie inside it."""
        node = self.tree.regular_file(self.path)
        if self.span is not None:
            offset, length = self.span
            if offset < 0 or length < 0 or offset + length > node.size:
                raise GuestDataError(f"{self.display}: the range is outside the file ({node.size} bytes)")
        return node

    def range(self, node: Node) -> tuple[int, int]:
        """The (offset, length) of `node` this file is."""
        return self.span if self.span is not None else (0, node.size)

    def open(self) -> tuple[int, BinaryIO]:
        """This file's size and a stream of exactly its bytes."""
        node = self.node()
        offset, length = self.range(node)
        stream = node.open()
        return length, stream if self.span is None else window(stream, offset, length)

    def read_small(self, cap: int) -> bytes:
        """All of a small file (a device tree), refusing one larger than `cap`."""
        if self.span is None:
            return self.tree.read_small(self.path, cap)
        size, stream = self.open()
        if size > cap:
            raise LimitError(f"{self.display}: {size} bytes exceeds the limit of {cap}")
        return stream.read(size)


def _cap_message(what: str, name: str, size: int, cap: int) -> str:
    return f"{what} {name} is {size} bytes, over the limit of {cap >> 20} MiB (PYGRUB_MAX_FILE_SIZE_MB)"


def copy_files(
    files: list[GuestFile], out_fd: int, cap: int, what: str, methods: Sequence[str] = METHODS
) -> int:
    """Write the concatenation of `files` to `out_fd` (from its offset 0); returns the bytes written.

    `methods` are the ways to move plain extents, in order of preference (tests force a single one)."""
    nodes: list[tuple[GuestFile, Node]] = []
    total = 0
    for item in files:
        node = item.node()
        if node.size < 0:
            raise GuestDataError(f"{what} {item.display}: corrupt size {node.size}")
        size = item.range(node)[1]
        total += size
        if size > cap or total > cap:
            raise LimitError(_cap_message(what, item.display, total, cap))
        nodes.append((item, node))
    sink = _Sink(out_fd, what, methods)
    for item, node in nodes:
        _copy_one(item, node, sink)
    sink.finish()
    return sink.pos


def _copy_one(item: GuestFile, node: Node, sink: _Sink) -> None:
    placement = item.tree.placement
    start, length = item.range(node)
    extents = _tiling(node.extents(), node.size) if placement is not None else None
    stream: BinaryIO | None = None

    def streamed(file_offset: int, length: int) -> None:
        nonlocal stream
        if stream is None:
            stream = node.open()
        sink.from_stream(stream, file_offset, length, item.display)

    if extents is None or placement is None:
        streamed(start, length)
        return
    fd = placement.host_fd()
    for ext in _clipped(extents, start, start + length):
        if ext.volume_offset is None:
            sink.skip(ext.length)  # a hole
            continue
        file_offset = ext.file_offset
        for host, count in _host_ranges(placement, ext, item.display):
            if host is None:
                streamed(file_offset, count)
            else:
                sink.from_fd(fd, host, count, item.display)
            file_offset += count


def _tiling(extents: list[Extent] | None, size: int) -> list[Extent] | None:
    """`extents` when they cover [0, size) in order without gaps or overlaps, else None (then the file is
    read through its stream, which defines what such a map means)."""
    if extents is None:
        return None
    pos = 0
    for ext in extents:
        if ext.file_offset != pos or ext.length <= 0:
            return None
        if ext.volume_offset is not None and ext.volume_offset < 0:
            return None
        pos += ext.length
    return extents if pos == size else None


def _clipped(extents: list[Extent], start: int, end: int) -> list[Extent]:
    """The parts of a tiling `extents` that lie in the file's bytes [start, end)."""
    out = []
    for ext in extents:
        lo, hi = max(ext.file_offset, start), min(ext.file_offset + ext.length, end)
        if lo < hi:
            where = None if ext.volume_offset is None else ext.volume_offset + lo - ext.file_offset
            out.append(Extent(lo, where, hi - lo))
    return out


def _host_ranges(placement: Placement, ext: Extent, name: str) -> list[tuple[int | None, int]]:
    assert ext.volume_offset is not None
    ranges = placement.host_ranges(ext.volume_offset, ext.length)
    if sum(count for _, count in ranges) != ext.length:
        raise GuestDataError(f"{name}: file data lies beyond the end of its volume")
    return ranges


class _Sink:
    """The output file, written at explicit offsets, by the first of `methods` that the two files allow."""

    def __init__(self, fd: int, what: str, methods: Sequence[str]) -> None:
        if not methods or any(m not in METHODS for m in methods):
            raise ValueError(f"bad copy methods {methods!r}")
        self.fd = fd
        self.what = what
        self.methods = list(methods)
        self.pos = 0
        self._buffer: bytearray | None = None

    @property
    def buffer(self) -> memoryview:
        if self._buffer is None:
            self._buffer = bytearray(CHUNK)
        return memoryview(self._buffer)

    def skip(self, length: int) -> None:
        self.pos += length

    def from_fd(self, src: int, offset: int, length: int, name: str) -> None:
        """Host bytes [offset, offset+length) of `src`."""
        while length > 0:
            method = self.methods[0]
            try:
                if method == COPY_FILE_RANGE:
                    n = os.copy_file_range(src, self.fd, min(length, SYSCALL_CHUNK), offset, self.pos)
                elif method == SENDFILE:
                    os.lseek(self.fd, self.pos, os.SEEK_SET)  # sendfile writes at the file position
                    n = os.sendfile(self.fd, src, offset, min(length, SYSCALL_CHUNK))
                else:
                    n = os.preadv(src, [self.buffer[: min(length, CHUNK)]], offset)
            except OSError as exc:
                if method != STREAM and exc.errno in _UNSUPPORTED and len(self.methods) > 1:
                    self.methods.pop(0)  # not possible between these two files: the next way, for good
                    continue
                raise GuestDataError(f"cannot copy the {self.what} {name}: {exc.strerror}") from None
            if n <= 0:
                raise GuestDataError(f"cannot copy the {self.what} {name}: the disk image ends before it")
            if method == STREAM:
                self._write(self.buffer[:n])  # advances pos
            else:
                self.pos += n
            offset += n
            length -= n

    def from_stream(self, stream: BinaryIO, file_offset: int, length: int, name: str) -> None:
        """Bytes [file_offset, file_offset+length) of the file, read through its stream."""
        stream.seek(file_offset)
        done = 0
        while done < length:
            view = self.buffer[: min(CHUNK, length - done)]
            n = stream.readinto(view)  # type: ignore[attr-defined]
            if not n:
                at, end = file_offset + done, file_offset + length
                raise GuestDataError(f"{self.what} {name}: file ends after {at} of {end} bytes")
            self._write(view[:n])
            done += n

    def _write(self, data: memoryview) -> None:
        while data:
            try:
                n = os.pwrite(self.fd, data, self.pos)
            except OSError as exc:
                raise GuestDataError(f"cannot write the {self.what} copy: {exc.strerror}") from None
            self.pos += n
            data = data[n:]

    def finish(self) -> None:
        """Extend the file over a trailing hole."""
        try:
            if os.fstat(self.fd).st_size < self.pos:
                os.ftruncate(self.fd, self.pos)
        except OSError as exc:
            raise GuestDataError(f"cannot write the {self.what} copy: {exc.strerror}") from None
