"""Length-prefixed JSON messages over a socket, bounded in size and in time."""

from __future__ import annotations

import json
import select
import socket
import struct
import time
from typing import Any

from pvboot.errors import LimitError, PvbootError

MAX_MESSAGE = 32 << 20
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

    def recv(self, deadline: float | None = None) -> dict[str, Any]:
        """The next message; raises TimeoutError past `deadline` (a time.monotonic() value)."""
        (length,) = _HEADER.unpack(self._read_exact(_HEADER.size, deadline))
        if length > MAX_MESSAGE:
            raise LimitError(f"message of {length} bytes exceeds the limit of {MAX_MESSAGE}")
        try:
            message = json.loads(self._read_exact(length, deadline))
        except (ValueError, RecursionError):
            raise ChannelClosed("malformed message from the child") from None
        if not isinstance(message, dict):
            raise ChannelClosed("malformed message from the child")
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


def pair() -> tuple[Channel, Channel]:
    """Two connected ends: (parent's, child's)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return Channel(a), Channel(b)
