"""The little file access the flat config readers (BLS, extlinux, GRUB legacy) need.

These readers only ever look at the volume their config lives on, so they take a `ConfigFiles`: paths are
absolute on that volume ("/boot/extlinux/extlinux.conf"). The caller decides which volume that is and
resolves the `FileRef(volume=None, ...)` the readers return against it. `HostDirFiles` serves a directory
of the host (pygrub's --isconfig, and tests).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Protocol

from pvboot.errors import LimitError, NotFoundError
from pvboot.limits import Limits


class ConfigFiles(Protocol):
    def read(self, path: str) -> str:
        """A text file on the config's volume; raises pvboot.errors.NotFoundError when absent."""
        ...

    def listdir(self, path: str) -> list[str]:
        """The names in a directory (no '.' or '..'); raises NotFoundError when it is not one."""
        ...

    def exists(self, path: str) -> bool: ...


def join(directory: str, name: str) -> str:
    """`name` as a boot loader resolves it against `directory`: absolute names stand alone."""
    if name.startswith("/"):
        return name
    return f"{directory.rstrip('/')}/{name}"


def dirname(path: str) -> str:
    """The directory of a config file, '/' for one at the root."""
    return posixpath.dirname(path) or "/"


class HostDirFiles:
    """A host directory seen as a guest volume: "/x" is `root`/x. Paths never leave `root`."""

    def __init__(self, root: str | os.PathLike[str], limits: Limits | None = None) -> None:
        self.root = Path(root).resolve()
        self.limits = limits or Limits()

    def _host(self, path: str) -> Path:
        host = (self.root / path.lstrip("/")).resolve()
        if host != self.root and self.root not in host.parents:
            raise NotFoundError(f"{path}: outside the config directory")
        return host

    def read(self, path: str) -> str:
        host = self._host(path)
        try:
            with open(host, "rb") as f:
                data = f.read(self.limits.max_config_size + 1)
        except OSError as exc:
            raise NotFoundError(f"{path}: {exc.strerror}") from None
        if len(data) > self.limits.max_config_size:
            raise LimitError(f"{path}: larger than the config size limit of {self.limits.max_config_size}")
        return data.decode("utf-8", errors="replace")

    def listdir(self, path: str) -> list[str]:
        try:
            names = os.listdir(self._host(path))
        except OSError as exc:
            raise NotFoundError(f"{path}: {exc.strerror}") from None
        if len(names) > self.limits.max_dir_entries:
            raise LimitError(f"{path}: more than {self.limits.max_dir_entries} directory entries")
        return names

    def exists(self, path: str) -> bool:
        try:
            return self._host(path).exists()
        except NotFoundError:
            return False
