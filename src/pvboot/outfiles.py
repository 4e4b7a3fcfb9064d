"""The output files in --output-directory: created by the parent, removed on any failure; and the
--output answer file.

Named like pygrub's (`boot_kernel.XXXXXX`, `boot_ramdisk.XXXXXX`, mode 0600) because libxl and admins'
tooling know those names. The child only ever gets the open fds.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
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


_OPEN_REFUSALS = {
    errno.ELOOP: "it is a symbolic link",
    errno.ENXIO: "it is a FIFO nobody reads, a socket or a missing device",
    errno.EISDIR: "it is a directory",
}


class AnswerFile:
    """Where libxl's answer goes: `path` (--output), or stdout when None.

    libxl creates the file before it runs the bootloader, so an existing regular file is expected and
    truncated. pvboot runs as root, so the path is opened without following a symlink (which would
    truncate its target) and without blocking (a FIFO there would hang pvboot for ever), and must be a
    regular file. It is opened before any work, so a bad --output fails at once, and a failed write
    truncates it back to empty: libxl must never read half an answer."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.fd: int | None = None
        if path is None:
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            reason = _OPEN_REFUSALS.get(exc.errno or 0, exc.strerror)
            raise PvbootError(f"cannot open --output {path}: {reason}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PvbootError(f"--output {path} is not a regular file: refused")
            os.set_blocking(fd, True)
            os.ftruncate(fd, 0)
        except OSError as exc:
            os.close(fd)
            raise PvbootError(f"cannot use --output {path}: {exc.strerror}") from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def write(self, payload: bytes) -> None:
        """All of `payload`, or (file) nothing: a failed write leaves the file empty."""
        if self.fd is None:
            sys.stdout.flush()
            fd, where = sys.stdout.fileno(), "stdout"
        else:
            fd, where = self.fd, f"--output {self.path}"
        view = memoryview(payload)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except BrokenPipeError:
            raise
        except OSError as exc:
            if self.fd is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, 0)
            raise PvbootError(f"cannot write the answer to {where}: {exc.strerror}") from None

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
