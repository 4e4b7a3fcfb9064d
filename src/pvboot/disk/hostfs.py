"""A host directory as a read-only FileSystem: only for `--isconfig`, where the admin hands pvboot a
boot config file from dom0 to see what it would boot. Paths never leave the directory (tree.py keeps
'..' and absolute symlinks inside the root)."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

from pvboot.disk.fsapi import FileSystem, Kind, Node
from pvboot.disk.tree import FileTree
from pvboot.disk.volumes import GuestDisk, Volume
from pvboot.limits import Limits


class HostNode(Node):
    def __init__(self, path: str) -> None:
        self.path = path
        info = os.lstat(path)
        self.size = info.st_size
        if stat.S_ISDIR(info.st_mode):
            self.kind = Kind.DIR
        elif stat.S_ISREG(info.st_mode):
            self.kind = Kind.FILE
        elif stat.S_ISLNK(info.st_mode):
            self.kind = Kind.SYMLINK
        else:
            self.kind = Kind.OTHER

    def child(self, name: str) -> Node | None:
        if "/" in name or name in ("", ".", ".."):
            return None
        try:
            return HostNode(os.path.join(self.path, name))
        except OSError:
            return None

    def names(self) -> Iterator[str]:
        yield from sorted(os.listdir(self.path))

    def readlink(self) -> str:
        return os.readlink(self.path)

    def open(self) -> BinaryIO:
        return open(self.path, "rb")


class HostDirectory(FileSystem):
    def __init__(self, root: str) -> None:
        self.fstype = "host"
        self.uuid = None
        self.label = None
        self._root = root

    def root(self) -> Node:
        return HostNode(self._root)


def host_config_disk(directory: str, limits: Limits) -> GuestDisk:
    """A stand-in disk whose one volume, hd0, is `directory` on the host (for --isconfig)."""
    disk = GuestDisk.__new__(GuestDisk)
    disk.path, disk.limits = directory, limits
    volume = Volume("hd0", 0, 0, io.BytesIO(), limits, fstype="host")
    volume._tree = FileTree(HostDirectory(directory), limits, "hd0")
    disk.volumes = [volume]
    return disk
