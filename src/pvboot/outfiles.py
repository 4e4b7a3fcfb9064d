"""The output files in --output-directory: created by the parent, removed on any failure.

Named like pygrub's (`boot_kernel.XXXXXX`, `boot_ramdisk.XXXXXX`, mode 0600) because libxl and admins'
tooling know those names. The child only ever gets the open fds.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from pvboot.errors import PvbootError


class OutputFiles:
    """The kernel and ramdisk files of one run; `discard()` leaves nothing behind."""

    def __init__(
        self, directory: str, create_directory: bool, roles: tuple[str, ...] = ("kernel", "ramdisk")
    ) -> None:
        if not os.path.isdir(directory):
            if not create_directory:
                raise PvbootError(f"--output-directory {directory} is not an existing directory")
            try:
                os.makedirs(directory, 0o700, exist_ok=True)
            except OSError as exc:
                raise PvbootError(f"cannot create {directory}: {exc.strerror}") from None
        self.paths: dict[str, str] = {}
        self.fds: dict[str, int] = {}
        try:
            for role in roles:
                fd, path = tempfile.mkstemp(prefix=f"boot_{role}.", dir=directory)
                self.paths[role], self.fds[role] = path, fd
        except OSError as exc:
            self.discard()
            raise PvbootError(f"cannot create output files in {directory}: {exc.strerror}") from None

    def size(self, role: str) -> int:
        return os.fstat(self.fds[role]).st_size

    def drop(self, role: str) -> None:
        """Remove one file (the ramdisk when the entry has none)."""
        fd = self.fds.pop(role, None)
        if fd is not None:
            os.close(fd)
        path = self.paths.pop(role, None)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def keep(self) -> None:
        """Close the fds and keep the files: they now belong to libxl."""
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def discard(self) -> None:
        for role in list(self.paths):
            self.drop(role)
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
