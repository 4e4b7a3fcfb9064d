"""Remembered kernel verdicts, so that the same compressed kernel is not decoded on every boot.

Checking a bzImage means decoding its payload up to the Xen ELF notes: about 24 MB of xz for a Debian
kernel, a third of a second, several times the rest of a boot. A host boots the same few kernels again
and again, so the parent keeps the positive verdicts in `kernel-verdicts.json` under $PVBOOT_CACHE_DIR
(default /var/cache/pvboot; "", "none" or "off" turn it off), keyed by the SHA-256 of the kernel file.

The file is shared by every guest, so no process that reads guest bytes ever sees it (kernel/judge.py
does the rest): the parent reads it only after the reader has stopped, looks up the one digest it
computed itself of the kernel copy it holds, and stores only what a fresh confined judge, forked
before the file was read, concluded from that very copy. Nothing a reader says is stored, and a reader
learns nothing of the file, not even whether its kernel was in it.

Writing is never fatal and never follows a symlink; the file holds at most MAX_ENTRIES verdicts (the
oldest go first) and is replaced atomically, so concurrent boots lose at most one another's entry.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterator
from typing import Any

from pvboot.limits import VERDICTS_MAX_ENTRIES as MAX_ENTRIES
from pvboot.limits import VERDICTS_MAX_FILE_SIZE as MAX_FILE_SIZE

ENV = "PVBOOT_CACHE_DIR"
DEFAULT_DIR = "/var/cache/pvboot"
OFF = ("", "-", "none", "off")
FILE_NAME = "kernel-verdicts.json"
CHUNK = 1 << 20
_DIGEST = re.compile(r"[0-9a-f]{64}")
BZIMAGE_MAGIC = b"HdrS"  # at 0x202: a bzImage, whose payload the check decodes
GZIP_MAGIC = b"\x1f\x8b"  # a gzip'd Image (arm64 Image.gz), decoded as a whole


def cache_dir() -> str | None:
    """The directory of the cache, or None when it is off."""
    chosen = os.environ.get(ENV, DEFAULT_DIR)
    return None if chosen.strip().lower() in OFF else chosen


def needs_decoding(head: bytes) -> bool:
    """Whether checking a kernel starting with `head` (its first 4 KiB) means decompressing it."""
    return head[0x202:0x206] == BZIMAGE_MAGIC or head[:2] == GZIP_MAGIC


def file_digest(chunks: Iterator[bytes]) -> str:
    import hashlib  # (only boots of compressed kernels pay for the import)

    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def fd_chunks(fd: int) -> Iterator[bytes]:
    """The whole of the regular file open at `fd`, read with pread (the offset stays)."""
    offset = 0
    while chunk := os.pread(fd, CHUNK, offset):
        offset += len(chunk)
        yield chunk


class VerdictCache:
    """The remembered verdicts: SHA-256 hex digest -> KernelInfo.to_json() of a bootable kernel."""

    def __init__(self, directory: str | None, entries: dict[str, dict[str, Any]] | None = None) -> None:
        self.directory = directory
        self.entries = entries or {}

    @classmethod
    def load(cls, directory: str | None = None) -> VerdictCache:
        """The cache in `directory` (default: cache_dir()); empty when off, absent or unreadable."""
        directory = directory if directory is not None else cache_dir()
        if directory is None:
            return cls(None)
        entries: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(OSError, ValueError, RecursionError):
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(os.path.join(directory, FILE_NAME), flags)
            try:
                data = os.read(fd, MAX_FILE_SIZE + 1) if stat.S_ISREG(os.fstat(fd).st_mode) else b"{}"
            finally:
                os.close(fd)
            doc = json.loads(data) if len(data) <= MAX_FILE_SIZE else {}
            if isinstance(doc, dict):
                entries = {
                    k: v for k, v in doc.items() if isinstance(k, str) and _DIGEST.fullmatch(k) and _valid(v)
                }
        return cls(directory, entries)

    def lookup(self, digest: str) -> dict[str, Any] | None:
        return self.entries.get(digest)

    def remember(self, digest: str, verdict: dict[str, Any]) -> None:
        """Store a positive verdict (anything else is ignored); never raises."""
        if self.directory is None or not _DIGEST.fullmatch(digest) or not _valid(verdict):
            return
        self.entries.pop(digest, None)
        self.entries[digest] = verdict
        while len(self.entries) > MAX_ENTRIES:
            del self.entries[next(iter(self.entries))]
        payload = json.dumps(self.entries, ensure_ascii=True, sort_keys=False).encode()
        if len(payload) > MAX_FILE_SIZE:
            return
        temp = os.path.join(self.directory, f".{FILE_NAME}.{os.getpid()}")
        with contextlib.suppress(OSError):
            os.makedirs(self.directory, mode=0o755, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
            os.rename(temp, os.path.join(self.directory, FILE_NAME))
        with contextlib.suppress(OSError):
            os.unlink(temp)  # (gone after a rename; left behind when the write failed)


def _valid(verdict: Any) -> bool:
    """A remembered verdict says the kernel boots and has no problems (nothing else is ever stored)."""
    return (
        isinstance(verdict, dict)
        and verdict.get("bootable") is True
        and (verdict.get("pv") is True or verdict.get("pvh") is True)
        and verdict.get("problems") == []
    )
