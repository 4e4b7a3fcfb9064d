"""A bounded window onto a seekable stream: what a partition or logical volume is to its filesystem."""

from __future__ import annotations

import io
from typing import BinaryIO, cast


class RawReader(io.RawIOBase):
    """Seekable read-only raw stream of `size` bytes; subclasses implement readinto() from `_pos`."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos


class SliceStream(RawReader):
    """Bytes [offset, offset+size) of `base`, read-only; reads never leave the window."""

    def __init__(self, base: BinaryIO, offset: int, size: int) -> None:
        super().__init__(size)
        self.base = base
        self.offset = offset

    def read(self, n: int | None = -1) -> bytes:
        remaining = self.size - self._pos
        if remaining <= 0:
            return b""
        if n is None or n < 0 or n > remaining:
            n = remaining
        self.base.seek(self.offset + self._pos)
        data = self.base.read(n)
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)


def window(base: BinaryIO, offset: int, size: int) -> BinaryIO:
    """A SliceStream typed as the binary stream every reader takes."""
    return cast(BinaryIO, SliceStream(base, offset, size))


def append_run(out: list[tuple[int | None, int]], where: int | None, length: int) -> None:
    """Add (host offset or None, length) to `out`, merging it into the last run when contiguous."""
    if out:
        prev, prev_n = out[-1]
        if (prev is None and where is None) or (
            prev is not None and where is not None and prev + prev_n == where
        ):
            out[-1] = (prev, prev_n + length)
            return
    out.append((where, length))
