"""Bounded decompression of one Btrfs extent (zlib, lzo, zstd), kept apart from the tree walking.

A compressed Btrfs extent holds at most 128 KiB of data; every decoder here is given that output cap, so a
hostile extent can never expand beyond it (dissect's `decode_extent` decompresses without a cap).
KNOWN GAP: dissect needs `backports.zstd` (or Python 3.14's `compression.zstd`) for zstd but does not
declare it; pvboot declares `backports.zstd`, and `_zstd` also accepts the `zstandard` package.
"""

from __future__ import annotations

import struct
import zlib

from pvboot.disk.fs._deferred import deferred
from pvboot.errors import GuestDataError

_lzo = deferred("dissect.util.compression.lzo")

ZLIB, LZO, ZSTD = 1, 2, 3


def decompress(data: bytes, compression: int, cap: int, sector: int) -> bytes:
    """One compressed extent, producing at most `cap` (<= 128 KiB) bytes."""
    if compression == ZLIB:
        return zlib.decompressobj().decompress(data, cap)
    if compression == ZSTD:
        return _zstd(data, cap)
    # LZO: le32 total length, then (le32 length, lzo1x segment) pairs; a segment header never straddles
    # a sector, the gap is zero padding. Each segment expands to at most one sector.
    total = min(struct.unpack_from("<I", data, 0)[0], len(data))
    out = bytearray()
    pos = 4
    while pos + 4 <= total and len(out) < cap:
        (seg_len,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if not 0 < seg_len <= total - pos:
            raise GuestDataError("btrfs: corrupt lzo segment")
        segment = _lzo.decompress(data[pos : pos + seg_len], False, sector)
        if len(segment) > sector:
            raise GuestDataError("btrfs: lzo segment expands beyond a sector")
        out += segment
        pos += seg_len
        if sector - pos % sector < 4:
            pos += sector - pos % sector
    return bytes(out[:cap])


def _zstd(data: bytes, cap: int) -> bytes:
    try:
        from compression import zstd  # Python >= 3.14
    except ImportError:
        try:
            from backports import zstd
        except ImportError:
            zstd = None
    if zstd is not None:
        return bytes(zstd.ZstdDecompressor().decompress(data, max_length=cap))
    try:
        import zstandard
    except ImportError:
        raise GuestDataError("btrfs: zstd-compressed file; install backports.zstd") from None
    with zstandard.ZstdDecompressor().stream_reader(data) as reader:
        out = bytearray()
        while len(out) < cap and (chunk := reader.read(cap - len(out))):
            out += chunk
    return bytes(out)
