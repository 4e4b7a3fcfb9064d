"""Length-prefixed JSON messages over a socket, bounded in size and in time.

The parent reads the reader's replies with `ReplyBounds`: the length header is checked here before one
byte of the payload is read, and the payload is then decoded by `protocol.decode_reply`, which counts
its values and nesting (over its bytes, strings skipped, by C-speed scans) first, so a subverted reader
cannot make the root parent build an arbitrarily large object graph (a 32 MiB reply of `{}`s decodes
into ~820 MiB of dicts). What the decoded reply may say is checked by `protocol.validate_reply`.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import time
from typing import Any

from pvboot.errors import LimitError, PvbootError
from pvboot.limits import ReplyBounds
from pvboot.sandbox.protocol import decode_reply

MAX_MESSAGE = 32 << 20  # the parent's requests (an edited entry's text), and the child's own sends
_HEADER = struct.Struct("!I")


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
        return decode_reply(payload, bounds)

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


def pair() -> tuple[Channel, Channel]:
    """Two connected ends: (parent's, child's)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return Channel(a), Channel(b)
