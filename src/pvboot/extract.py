"""Bounded copy of guest files into the output files the parent created.

Runs in the child. Streams in 1 MiB chunks (memory stays flat whatever the size); several initrds are
concatenated in order into one ramdisk, as GRUB's `initrd a b` loads them. Every file, and the sum, is
capped by PYGRUB_MAX_FILE_SIZE_MB before and during the copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pvboot.disk.tree import FileTree
from pvboot.errors import GuestDataError, LimitError

CHUNK = 1 << 20


@dataclass(frozen=True)
class GuestFile:
    """A file to copy: the tree it lives in and its path there (for messages: `(volume)path`)."""

    tree: FileTree
    path: str

    @property
    def display(self) -> str:
        return f"({self.tree.where}){self.path}" if self.tree.where else self.path


def _cap_message(what: str, name: str, size: int, cap: int) -> str:
    return f"{what} {name} is {size} bytes, over the limit of {cap >> 20} MiB (PYGRUB_MAX_FILE_SIZE_MB)"


def copy_files(files: list[GuestFile], out_fd: int, cap: int, what: str) -> int:
    """Write the concatenation of `files` to `out_fd`; returns the bytes written."""
    opened = []
    total = 0
    for item in files:
        node, stream = item.tree.open_file(item.path)
        if node.size < 0:
            raise GuestDataError(f"{what} {item.display}: corrupt size {node.size}")
        total += node.size
        if node.size > cap or total > cap:
            raise LimitError(_cap_message(what, item.display, total, cap))
        opened.append((item, node.size, stream))
    written = 0
    for item, size, stream in opened:
        copied = 0
        while copied < size:
            chunk = stream.read(min(CHUNK, size - copied))
            if not chunk:
                raise GuestDataError(f"{what} {item.display}: file ends after {copied} of {size} bytes")
            _write_all(out_fd, chunk, what)
            copied += len(chunk)
        written += copied
    return written


def _write_all(fd: int, data: bytes, what: str) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError as exc:
            raise GuestDataError(f"cannot write the {what} copy: {exc.strerror}") from None
        view = view[n:]
