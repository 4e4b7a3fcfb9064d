"""Bounded, streaming decompression of kernel payloads: the seven formats Linux compresses a bzImage with.

Only as much is decoded as the caller reads; every decoded byte counts against a cap (KernelLimits), and
reading backwards restarts the decoder (a bounded number of times). Formats, in the order Xen's
xg_dom_bzimageloader.c tests their magic:

| format | magic | decoder |
|---|---|---|
| gzip | 1f 8b | zlib (stdlib) |
| bzip2 | "BZh" | bz2 (stdlib) |
| xz | fd "7zXZ" 00 | lzma (stdlib), FORMAT_XZ |
| zstd | 28 b5 2f fd | backports.zstd (stdlib `compression.zstd` from 3.14), already a pvboot dependency |
| lzma | 5d 00 | lzma (stdlib), FORMAT_ALONE (the .lzma header Linux's `lzma -9` writes) |
| lzo | 89 "LZO" 00 | the lzop container parsed here; blocks decoded by dissect.util's lzo (LZO1X) |
| lz4 | 02 21 4c 18 | the lz4 "legacy" frame parsed here; blocks decoded by dissect.util's lz4 |

Why dissect.util for lz4/lzo: it is already a pvboot dependency (the disk layer uses it), it ships a native
(Rust) decoder with a pure-Python fallback, and it decodes exactly the raw blocks these two containers hold,
with the output size bounded by the caller. The containers themselves are a few lines each, parsed here so
that block sizes are bounded before anything is decoded. The `lz4` PyPI package would add a dependency for
the same block decoder; python-lzo has no wheels.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

from pvboot.errors import GuestDataError, LimitError, is_codec_panic
from pvboot.limits import LZMA_MEMLIMIT, KernelLimits

CHUNK = 1 << 20
IN_CHUNK = 64 << 10
HEAD_CACHE = 64 << 10  # decoded bytes kept from the start (ELF header and program headers live there)
# An xz/lzma header sizes the decoder's dictionary (up to 4 GiB); the kernel build and initramfs tools
# use 1-64 MiB: past LZMA_MEMLIMIT, "corrupt or unsupported" instead of a MemoryError under the reader's
# limit.

# (name, magic) in the order Xen's bzImage loader tests them
MAGICS: tuple[tuple[str, bytes], ...] = (
    ("gzip", b"\x1f\x8b"),
    ("bzip2", b"BZh"),
    ("xz", b"\xfd7zXZ\x00"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("lzma", b"\x5d\x00"),
    ("lzo", b"\x89LZO\x00"),
    ("lz4", b"\x02\x21"),
)

LZ4_LEGACY_MAGIC = 0x184C2102
LZOP_MAGIC = b"\x89LZO\x00\r\n\x1a\n"
_LZOP_ADLER32_D, _LZOP_ADLER32_C, _LZOP_FILTER, _LZOP_CRC32_D, _LZOP_CRC32_C = 0x1, 0x2, 0x800, 0x100, 0x200


class CorruptData(GuestDataError):
    """Compressed data that does not decode."""


def detect(head: bytes) -> str | None:
    """The compression format `head` starts with, or None."""
    for name, magic in MAGICS:
        if head.startswith(magic):
            return name
    return None


class Source:
    """`length` bytes of `stream` from `start`, read sequentially in bounded chunks."""

    def __init__(self, stream: BinaryIO, start: int, length: int) -> None:
        self.stream = stream
        self.remaining = max(0, length)
        self.consumed = 0
        stream.seek(start)

    def read(self, n: int = IN_CHUNK) -> bytes:
        n = min(n, self.remaining)
        if n <= 0:
            return b""
        data = self.stream.read(n)
        if len(data) > n:  # a misbehaving stream: never trust more than asked for
            data = data[:n]
        if not data:
            self.remaining = 0
            return b""
        self.remaining -= len(data)
        self.consumed += len(data)
        return data

    def read_exact(self, n: int, what: str) -> bytes:
        data = b""
        while len(data) < n:
            more = self.read(n - len(data))
            if not more:
                raise CorruptData(f"{what}: the data ends early")
            data += more
        return data


class Decoder(Protocol):
    def read(self, n: int) -> bytes:
        """Up to `n` decoded bytes; b"" at the end of the stream (or of the input)."""
        ...


class _Incremental:
    """zlib/bz2/lzma/zstd decompressor objects behind one `read(n)`."""

    def __init__(self, source: Source, name: str, make: Callable[[], Any]) -> None:
        self.source = source
        self.name = name
        self.obj = make()
        self.is_zlib = name == "gzip"  # zlib keeps unconsumed input outside the object
        self.pending = b""
        self.done = False

    def read(self, n: int) -> bytes:
        while not self.done:
            try:
                out = self._step(n)
            except (zlib.error, lzma.LZMAError, OSError, ValueError, EOFError) as exc:
                raise CorruptData(f"corrupt {self.name} data: {exc}") from None
            except Exception as exc:  # backports.zstd.ZstdError and friends
                if type(exc).__name__.startswith("Zstd"):
                    raise CorruptData(f"corrupt {self.name} data: {exc}") from None
                raise
            if out:
                return bytes(out)
        return b""

    def _step(self, n: int) -> bytes:
        obj = self.obj
        if self.is_zlib:
            if not self.pending:
                self.pending = self.source.read()
                if not self.pending and not obj.unconsumed_tail:
                    self.done = True
                    return obj.flush() if not obj.eof else b""
            out: bytes = obj.decompress(self.pending, n)
            self.pending = obj.unconsumed_tail
            if obj.eof:
                self.done = True
            return out
        if obj.eof:
            self.done = True
            return b""
        data = b""
        if obj.needs_input:
            data = self.source.read()
            if not data:
                self.done = True  # the input ends before the stream does: truncated
                return b""
        chunk: bytes = obj.decompress(data, n)
        if obj.eof:
            self.done = True
        return chunk


def _zstd_decompressor() -> Any:
    try:
        from compression import zstd  # Python >= 3.14
    except ImportError:
        try:
            from backports import zstd
        except ImportError:
            raise CorruptData("a zstd payload needs the backports.zstd package") from None
    return zstd.ZstdDecompressor()


class _Lz4Legacy:
    """The lz4 legacy frame (`lz4 -l`): magic, then [le32 size][block], blocks of at most 8 MiB output."""

    def __init__(self, source: Source, max_block: int) -> None:
        self.source = source
        self.max_block = max_block
        self.started = False
        self.done = False

    def read(self, n: int) -> bytes:
        from dissect.util.compression import lz4

        if not self.started:
            self.started = True
            magic = self.source.read_exact(4, "lz4 header")
            if struct.unpack("<I", magic)[0] != LZ4_LEGACY_MAGIC:
                raise CorruptData("lz4 payload without the legacy frame magic")
        while not self.done:
            head = self.source.read_exact(4, "lz4 block") if self.source.remaining >= 4 else b""
            if len(head) < 4:
                self.done = True
                break
            size = struct.unpack("<I", head)[0]
            if size == LZ4_LEGACY_MAGIC:
                continue
            if size > self.source.remaining:
                # Linux appends the decoded size (le32) after the last block: what is left is that
                self.done = True
                break
            if size == 0 or size > self.max_block + (self.max_block >> 8) + 64:
                raise CorruptData(f"lz4 block of {size} bytes")
            block = self.source.read_exact(size, "lz4 block")
            try:
                out = lz4.decompress(block, self.max_block)
            except Exception as exc:
                raise CorruptData(f"corrupt lz4 data: {exc}") from None
            except BaseException as exc:
                if not is_codec_panic(exc):
                    raise
                raise CorruptData(f"corrupt lz4 data: the decoder gave up ({exc})") from None
            if out:
                return bytes(out)
        return b""


class _Lzop:
    """The lzop container Linux's `lzop -9` writes: a header, then [be32 out][be32 in][checksums][block]."""

    def __init__(self, source: Source, max_block: int) -> None:
        self.source = source
        self.max_block = max_block
        self.flags = -1
        self.done = False

    def _header(self) -> None:
        src = self.source
        if src.read_exact(9, "lzo header") != LZOP_MAGIC:
            raise CorruptData("lzo payload without the lzop magic")
        version, _lib, _need, _method = struct.unpack(">HHHB", src.read_exact(7, "lzo header"))
        if version >= 0x0940:
            src.read_exact(1, "lzo header")  # level
        self.flags = struct.unpack(">I", src.read_exact(4, "lzo header"))[0]
        if self.flags & _LZOP_FILTER:
            src.read_exact(4, "lzo header")
        src.read_exact(8 + (4 if version >= 0x0940 else 0), "lzo header")  # mode, mtime (low, high)
        name_len = src.read_exact(1, "lzo header")[0]
        src.read_exact(name_len + 4, "lzo header")  # file name, header checksum

    def read(self, n: int) -> bytes:
        from dissect.util.compression import lzo

        if self.flags < 0:
            self._header()
        while not self.done:
            out_len = struct.unpack(">I", self.source.read_exact(4, "lzo block"))[0]
            if out_len == 0:
                self.done = True
                break
            if out_len > self.max_block:
                raise CorruptData(f"lzo block of {out_len} bytes exceeds {self.max_block}")
            in_len = struct.unpack(">I", self.source.read_exact(4, "lzo block"))[0]
            skip = 4 * (bool(self.flags & _LZOP_ADLER32_D) + bool(self.flags & _LZOP_CRC32_D))
            if in_len < out_len:
                skip += 4 * (bool(self.flags & _LZOP_ADLER32_C) + bool(self.flags & _LZOP_CRC32_C))
            if in_len == 0 or in_len > out_len:
                raise CorruptData(f"lzo block of {in_len} bytes for {out_len}")
            self.source.read_exact(skip, "lzo block")
            block = self.source.read_exact(in_len, "lzo block")
            if in_len == out_len:
                return block  # stored uncompressed
            try:
                out = lzo.decompress(block, False, out_len)
            except Exception as exc:
                raise CorruptData(f"corrupt lzo data: {exc}") from None
            except BaseException as exc:
                if not is_codec_panic(exc):
                    raise
                raise CorruptData(f"corrupt lzo data: the decoder gave up ({exc})") from None
            if len(out) != out_len:
                raise CorruptData(f"lzo block decodes to {len(out)} bytes, not {out_len}")
            return bytes(out)
        return b""


def open_decoder(codec: str, source: Source, limits: KernelLimits) -> Decoder:
    """A decoder of `codec` reading compressed bytes from `source`."""
    if codec == "gzip":
        return _Incremental(source, codec, lambda: zlib.decompressobj(16 + zlib.MAX_WBITS))
    if codec == "bzip2":
        return _Incremental(source, codec, bz2.BZ2Decompressor)
    if codec == "xz":
        return _Incremental(
            source, codec, lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=LZMA_MEMLIMIT)
        )
    if codec == "lzma":
        return _Incremental(
            source, codec, lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=LZMA_MEMLIMIT)
        )
    if codec == "zstd":
        return _Incremental(source, codec, _zstd_decompressor)
    if codec == "lz4":
        return _Lz4Legacy(source, limits.max_block)
    if codec == "lzo":
        return _Lzop(source, limits.max_block)
    raise ValueError(codec)


class BannerScanner:
    """Finds the first 'Linux version <digit>...' string (linux_banner) in a stream of chunks."""

    MARK = b"Linux version "

    def __init__(self) -> None:
        self.found: str | None = None
        self.tail = b""

    def feed(self, chunk: bytes) -> None:
        if self.found is not None:
            return
        data = self.tail + chunk
        start = 0
        while True:
            i = data.find(self.MARK, start)
            if i < 0:
                self.tail = data[-(len(self.MARK) + 255) :]
                return
            text = data[i + len(self.MARK) : i + len(self.MARK) + 256]
            if text[:1].isdigit():
                ends = [j for j in (text.find(b"\0"), text.find(b"\n")) if j >= 0]
                if not ends and len(text) < 256:
                    self.tail = data[i:]
                    return
                self.found = printable(text[: min(ends) if ends else 200])
                return
            start = i + 1


def printable(raw: bytes) -> str:
    """Guest bytes as a short printable string (control characters as '?')."""
    return "".join(ch if ch.isprintable() else "?" for ch in raw.decode("latin-1"))[:200].strip()


class Unpacked:
    """Random reads of the decoded form of `length` compressed bytes at `start` of `stream`.

    Reads forward decode and discard; a read behind the decoder restarts it (at most `max_passes` times).
    Every decoded byte, over all passes, counts against `cap`."""

    def __init__(
        self, stream: BinaryIO, start: int, length: int, codec: str, limits: KernelLimits, name: str
    ) -> None:
        self.stream, self.start, self.length = stream, start, length
        self.codec = codec
        self.limits = limits
        self.name = name
        self.cap = limits.payload_cap(length)
        self.decoded = 0  # over all passes
        self.passes = 0
        self.head = b""
        self.banner: BannerScanner | None = None  # fed every decoded byte of the first pass
        self._restart()

    def _restart(self) -> None:
        self.passes += 1
        if self.passes > self.limits.max_passes:
            raise LimitError(f"{self.name}: more than {self.limits.max_passes} passes over the payload")
        self.decoder = open_decoder(self.codec, Source(self.stream, self.start, self.length), self.limits)
        self.pos = 0
        self.buffer = b""  # decoded, not yet consumed, starting at self.pos

    def _pull(self, n: int) -> bytes:
        """Up to `n` bytes at self.pos, advancing it."""
        if not self.buffer:
            chunk = self.decoder.read(max(n, CHUNK))
            if not chunk:
                return b""
            self.decoded += len(chunk)
            if self.decoded > self.cap:
                raise LimitError(
                    f"{self.name}: decoding the {self.codec} payload needs more than {self.cap} bytes "
                    f"(limit: {self.limits.max_decompressed} bytes, or {self.limits.max_decompress_ratio}x "
                    "the payload)"
                )
            if self.pos < HEAD_CACHE and self.passes == 1:
                self.head += chunk[: HEAD_CACHE - self.pos]
            if self.banner is not None and self.passes == 1:
                self.banner.feed(chunk)
            self.buffer = chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        self.pos += len(out)
        return out

    def read_at(self, offset: int, n: int) -> bytes:
        """`n` bytes at decoded `offset` (fewer at the end of the data)."""
        if offset + n <= len(self.head):
            return self.head[offset : offset + n]
        if offset < self.pos:
            self._restart()
        while self.pos < offset:
            if not self._pull(min(CHUNK, offset - self.pos)):
                return b""
        parts = []
        want = n
        while want > 0:
            part = self._pull(want)
            if not part:
                break
            parts.append(part)
            want -= len(part)
        return b"".join(parts)

    def drain(self, limit: int) -> int:
        """Decode forward up to `limit` bytes past the current position (for a version scan)."""
        start = self.pos
        while self.pos - start < limit:
            if not self._pull(min(CHUNK, limit - (self.pos - start))):
                break
        return self.pos - start
