"""What every filesystem adapter shares: error containment, bounds and the plain-extent file stream.

The third-party parsers (dissect.*, pycdlib) raise whatever hostile bytes make them raise (struct.error,
KeyError, EOFError, RecursionError, MemoryError, ...). `guard` turns all of that into one GuestDataError
line naming the filesystem, so no traceback ever reaches the admin.
"""

from __future__ import annotations

import io
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO, TypeVar

from pvboot.disk.fsapi import Extent
from pvboot.disk.stream import RawReader
from pvboot.errors import GuestDataError, LimitError, PvbootError, is_codec_panic
from pvboot.limits import FS_MAX_SYMLINK as SYMLINK_MAX
from pvboot.limits import Limits

STREAM_BUFFER = 256 * 1024
T = TypeVar("T")
ExtentSource = Sequence[Extent] | Callable[[], Sequence[Extent]]  # a factory is called on first read


def read_at(stream: BinaryIO, offset: int, length: int) -> bytes:
    """`length` bytes at `offset` for a probe, or b"" when the volume is shorter."""
    stream.seek(offset)
    data = stream.read(length)
    return data if len(data) == length else b""


def describe(exc: BaseException) -> str:
    """`exc` as a short single printable line (its text may quote hostile bytes: no terminal escapes)."""
    text = "".join(c if c.isprintable() else "?" for c in " ".join(str(exc).split())[:160])
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def guard(fstype: str) -> Iterator[None]:
    """Re-raise anything but our own errors as a GuestDataError naming `fstype`."""
    try:
        yield
    except PvbootError:
        raise
    except Exception as exc:  # hostile input may make third-party parsers raise anything
        raise GuestDataError(f"{fstype}: malformed or unsupported filesystem data ({describe(exc)})") from exc
    except BaseException as exc:
        if not is_codec_panic(exc):  # dissect.util's Rust codecs (lzo, lz4) panic on some corrupt input
            raise
        raise GuestDataError(f"{fstype}: malformed compressed data ({describe(exc)})") from exc


def map_cap(limits: Limits) -> int:
    """How many runs / tree nodes one file's block map may have.

    A file with more runs than this has more blocks than `max_file_size` allows at a 1 KiB block size,
    so it could not be loaded anyway; the bound keeps a hostile map from eating memory or time.
    """
    return max(1 << 16, limits.max_file_size // 1024)


def scan(entries: Iterable[T], limits: Limits, fstype: str) -> Iterator[T]:
    """`entries` of one directory, raising LimitError past `max_dir_entries` (child() scans stay bounded)."""
    for count, entry in enumerate(entries):
        if count >= limits.max_dir_entries:
            raise LimitError(f"{fstype}: more than {limits.max_dir_entries} directory entries")
        yield entry


def check_symlink_size(fstype: str, size: int) -> None:
    if size > SYMLINK_MAX:
        raise LimitError(f"{fstype}: symlink target of {size} bytes exceeds {SYMLINK_MAX}")


def decode_name(raw: bytes) -> str:
    """An on-disk byte name as str; undecodable bytes survive as surrogates so lookups round-trip."""
    return raw.decode("utf-8", "surrogateescape")


def runs_to_extents(runs: Sequence[tuple[int, int | None, int]], block_size: int, size: int) -> list[Extent]:
    """(logical block, physical block or None, count) runs in logical order -> byte Extents over [0, size).

    Gaps become holes, contiguous runs merge, everything is clipped to `size`.
    """
    out: list[Extent] = []
    pos = 0
    for lblk, pblk, count in runs:
        start = lblk * block_size
        if start >= size:
            break
        if start < pos:
            raise GuestDataError("overlapping file extents")
        if start > pos:
            _append(out, Extent(pos, None, start - pos))
        length = min(count * block_size, size - start)
        _append(out, Extent(start, None if pblk is None else pblk * block_size, length))
        pos = start + length
    if pos < size:
        _append(out, Extent(pos, None, size - pos))
    return out


def _append(out: list[Extent], ext: Extent) -> None:
    if out:
        last = out[-1]
        if last.volume_offset is None and ext.volume_offset is None:
            out[-1] = Extent(last.file_offset, None, last.length + ext.length)
            return
        if last.volume_offset is not None and ext.volume_offset == last.volume_offset + last.length:
            out[-1] = Extent(last.file_offset, last.volume_offset, last.length + ext.length)
            return
    out.append(ext)


class ExtentReader(RawReader):
    """A read-only stream of a file laid out as plain extents of the volume; holes and gaps read as zeros."""

    def __init__(self, volume: BinaryIO, extents: ExtentSource, size: int, fstype: str) -> None:
        super().__init__(size)
        self._volume = volume
        self._fstype = fstype
        # a factory maps the file on first read, so opening stays cheap (callers check the size first)
        self._factory = extents if callable(extents) else None
        self._set(extents if not callable(extents) else [])

    def _set(self, extents: Sequence[Extent]) -> None:
        self._extents = list(extents)
        self._starts = [e.file_offset for e in self._extents]

    def _load(self) -> None:
        if self._factory is not None:
            with guard(self._fstype):
                self._set(self._factory())
            self._factory = None

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.size - self._pos)
        if want > 0:
            self._load()
        done = 0
        while done < want:
            pos = self._pos + done
            index = bisect_right(self._starts, pos) - 1
            ext = self._extents[index] if index >= 0 else None
            if ext is None or pos >= ext.file_offset + ext.length:  # a gap: zeros up to the next extent
                nxt = self._starts[index + 1] if index + 1 < len(self._starts) else self.size
                count = min(want - done, nxt - pos)
                view[done : done + count] = bytes(count)
            else:
                count = min(want - done, ext.file_offset + ext.length - pos)
                if ext.volume_offset is None:
                    view[done : done + count] = bytes(count)
                else:
                    self._volume.seek(ext.volume_offset + pos - ext.file_offset)
                    data = self._volume.read(count)
                    if len(data) != count:
                        raise GuestDataError(f"{self._fstype}: file data lies beyond the end of the volume")
                    view[done : done + count] = data
            done += count
        self._pos += done
        return done


def extent_stream(volume: BinaryIO, extents: ExtentSource, size: int, fstype: str) -> BinaryIO:
    """A buffered ExtentReader, typed as the BinaryIO that Node.open() promises."""
    return io.BufferedReader(ExtentReader(volume, extents, size, fstype), STREAM_BUFFER)
