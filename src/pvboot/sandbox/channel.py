"""Length-prefixed JSON messages over a socket, bounded in size and in time.

The parent reads the reader's replies with `ReplyBounds`: the length header is checked before one byte
of the payload is read, and the payload's values and nesting are counted (over its bytes, strings
skipped, by C-speed scans) before it is decoded, so a subverted reader cannot make the root parent build
an arbitrarily large object graph (a 32 MiB reply of `{}`s decodes into ~820 MiB of dicts).
"""

from __future__ import annotations

import itertools
import json
import re
import select
import socket
import struct
import time
from typing import Any

from pvboot.errors import GuestDataError, LimitError, PvbootError
from pvboot.limits import ReplyBounds

MAX_MESSAGE = 32 << 20  # the parent's requests (an edited entry's text), and the child's own sends
_HEADER = struct.Struct("!I")
# A JSON string (possessive: linear, no backtracking), replaced by "" before counting
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA = [0] * 256
_DELTA[ord("[")] = _DELTA[ord("{")] = 1
_DELTA[ord("]")] = _DELTA[ord("}")] = -1


class ChannelClosed(PvbootError):
    """The other side went away without a word (the child died or was killed)."""


class Channel:
    """One end of the parent/child conversation."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message, ensure_ascii=True).encode()
        if len(payload) > MAX_MESSAGE:
            raise LimitError(f"message of {len(payload)} bytes exceeds the limit of {MAX_MESSAGE}")
        self.sock.sendall(_HEADER.pack(len(payload)) + payload)

    def recv(self, deadline: float | None = None, bounds: ReplyBounds | None = None) -> dict[str, Any]:
        """The next message; raises TimeoutError past `deadline` (a time.monotonic() value). With
        `bounds` (the parent, reading a reply) a message beyond them raises LimitError, unread or
        undecoded, and a malformed one GuestDataError: either way the stream cannot be trusted after."""
        (length,) = _HEADER.unpack(self._read_exact(_HEADER.size, deadline))
        if bounds is None and length > MAX_MESSAGE:
            raise LimitError(f"message of {length} bytes exceeds the limit of {MAX_MESSAGE}")
        if bounds is not None and length > bounds.size:
            raise LimitError(
                f"a reply of {length} bytes from the process reading the guest disk exceeds the limit of "
                f"{_size_text(bounds.size)}"
            )
        payload = self._read_exact(length, deadline)
        if bounds is None:
            try:
                message = json.loads(payload)
            except (ValueError, RecursionError):
                raise ChannelClosed("malformed message from the child") from None
            if not isinstance(message, dict):
                raise ChannelClosed("malformed message from the child")
            return message
        message = _decode_bounded(payload, bounds)
        if not isinstance(message, dict):
            raise GuestDataError("malformed reply from the process reading the guest disk (not an object)")
        return message

    def _read_exact(self, size: int, deadline: float | None) -> bytes:
        chunks: list[bytes] = []
        remaining = size
        while remaining:
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([self.sock], [], [], wait)[0]:
                    raise TimeoutError
            chunk = self.sock.recv(min(remaining, 1 << 20))
            if not chunk:
                raise ChannelClosed("the child process ended unexpectedly")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


def _size_text(size: int) -> str:
    return f"{size >> 20} MiB" if size and size % (1 << 20) == 0 else f"{size} bytes"


def _decode_bounded(payload: bytes, bounds: ReplyBounds) -> Any:
    """`payload` decoded, after checking (without decoding) that it holds at most `bounds.items` values
    nested at most `bounds.depth` deep. The sender writes ASCII (ensure_ascii), so anything else is
    malformed, and the scan below sees every structural byte as what it is."""
    if not payload.isascii():
        raise GuestDataError("malformed reply from the process reading the guest disk (not ASCII)")
    skeleton = _STRING.sub(b'""', payload)
    items = skeleton.count(b",") + skeleton.count(b"[") + skeleton.count(b"{")
    if items > bounds.items:
        raise LimitError(
            f"a reply from the process reading the guest disk holds about {items} values, more than the "
            f"limit of {bounds.items}"
        )
    brackets = skeleton.translate(None, _NOT_BRACKET)
    if len(brackets) > bounds.depth:  # (fewer brackets cannot nest deeper)
        depth = max(itertools.accumulate(map(_DELTA.__getitem__, brackets)), default=0)
        if depth > bounds.depth:
            raise LimitError(
                f"a reply from the process reading the guest disk nests {depth} levels deep, more than "
                f"the limit of {bounds.depth}"
            )
    del skeleton, brackets
    try:
        return json.loads(payload.decode("ascii"))
    except (ValueError, RecursionError):
        raise GuestDataError("malformed reply from the process reading the guest disk") from None
    except MemoryError:
        raise LimitError(
            "a reply from the process reading the guest disk needs more memory than pvboot's limit"
        ) from None


def pair() -> tuple[Channel, Channel]:
    """Two connected ends: (parent's, child's)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return Channel(a), Channel(b)
