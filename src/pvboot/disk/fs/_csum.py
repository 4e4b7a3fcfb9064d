"""Metadata checksums of ext4 (metadata_csum), XFS v5 and Btrfs, as their Linux drivers verify them.

None of the third-party parsers verifies them, so a flipped bit in an inode, a directory block or a
B-tree node could silently make pvboot copy the wrong bytes and exit 0. The adapters check these before
they trust a structure; a mismatch is a GuestDataError naming the structure.
"""

from __future__ import annotations

import struct

from pvboot.disk.fs._deferred import deferred
from pvboot.errors import GuestDataError

_hash = deferred("dissect.util.hash")

_M64 = (1 << 64) - 1
_P1, _P2, _P3, _P4, _P5 = (
    0x9E3779B185EBCA87,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0x85EBCA77C2B2AE63,
    0x27D4EB2F165667C5,
)


def crc32c_raw(seed: int, data: bytes | memoryview) -> int:
    """Linux's crc32c(seed, data): no pre- or post-inversion (ext4_chksum)."""
    return int(_hash.crc32c.update(seed ^ 0xFFFFFFFF, bytes(data))) ^ 0xFFFFFFFF


def crc32c_std(data: bytes | memoryview) -> int:
    """The usual CRC-32C (XFS's and Btrfs's checksums)."""
    return int(_hash.crc32c.update(0, bytes(data)))


def zeroed(data: bytes | memoryview, offset: int, length: int = 4) -> bytes:
    """`data` with the checksum field at `offset` zeroed, as it was when the checksum was computed."""
    raw = bytearray(data)
    raw[offset : offset + length] = bytes(length)
    return bytes(raw)


def xfs_ok(block: bytes | memoryview, offset: int) -> bool:
    """An XFS v5 metadata block: CRC-32C over the block with its crc field zeroed, stored little-endian."""
    stored: int = struct.unpack_from("<I", block, offset)[0]
    return crc32c_std(zeroed(block, offset)) == stored


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (64 - bits))) & _M64


def _round(acc: int, lane: int) -> int:
    return (_rotl((acc + lane * _P2) & _M64, 31) * _P1) & _M64


def xxh64(data: bytes) -> int:
    """XXH64 with seed 0 (Btrfs's csum_type 1); only small metadata blocks are hashed."""
    n, pos = len(data), 0
    if n >= 32:
        acc = [(_P1 + _P2) & _M64, _P2, 0, (-_P1) & _M64]
        while pos + 32 <= n:
            for i in range(4):
                acc[i] = _round(acc[i], int.from_bytes(data[pos + 8 * i : pos + 8 * i + 8], "little"))
            pos += 32
        h = (_rotl(acc[0], 1) + _rotl(acc[1], 7) + _rotl(acc[2], 12) + _rotl(acc[3], 18)) & _M64
        for a in acc:
            h = ((h ^ _round(0, a)) * _P1 + _P4) & _M64
    else:
        h = _P5
    h = (h + n) & _M64
    while pos + 8 <= n:
        h = (_rotl(h ^ _round(0, int.from_bytes(data[pos : pos + 8], "little")), 27) * _P1 + _P4) & _M64
        pos += 8
    if pos + 4 <= n:
        h = (_rotl(h ^ (int.from_bytes(data[pos : pos + 4], "little") * _P1) & _M64, 23) * _P2 + _P3) & _M64
        pos += 4
    while pos < n:
        h = (_rotl(h ^ (data[pos] * _P5) & _M64, 11) * _P1) & _M64
        pos += 1
    h = ((h ^ (h >> 33)) * _P2) & _M64
    h = ((h ^ (h >> 29)) * _P3) & _M64
    return h ^ (h >> 32)


def btrfs_csum(csum_type: int, data: bytes | memoryview) -> bytes:
    """The checksum Btrfs stores (first bytes of the 32-byte csum field) for `data`."""
    raw = bytes(data)
    if csum_type == 0:
        return struct.pack("<I", crc32c_std(raw))
    if csum_type == 1:
        return struct.pack("<Q", xxh64(raw))
    import hashlib  # (only the rare sha256/blake2b Btrfs pays for the import)

    if csum_type == 2:
        return hashlib.sha256(raw).digest()
    if csum_type == 3:
        return hashlib.blake2b(raw, digest_size=32).digest()
    raise GuestDataError(f"btrfs: unknown checksum type {csum_type}")


def btrfs_ok(csum_type: int, block: bytes | memoryview) -> bool:
    """A Btrfs superblock or tree block: the checksum of everything after the 32-byte csum field."""
    want = btrfs_csum(csum_type, memoryview(block)[32:])
    return bytes(memoryview(block)[: len(want)]) == want
