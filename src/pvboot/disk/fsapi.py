"""The narrow read-only filesystem interface every filesystem adapter implements.

Adapters expose single-component lookups and raw file streams; everything that is policy (path
resolution, symlink hops, bounds) lives once in `pvboot.disk.tree`, not in each adapter. Each adapter
module is an `Adapter`: it declares its name, the package it needs and its probe beside its reader.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from pvboot.limits import Limits


class Kind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    OTHER = "other"


@dataclass(frozen=True)
class Extent:
    """A run of a file's bytes stored plainly in its volume.

    `volume_offset` is None for a hole (reads as zeros). Used for zero-copy extraction.
    """

    file_offset: int
    volume_offset: int | None
    length: int


class Node(ABC):
    """One inode of a guest filesystem."""

    kind: Kind
    size: int

    @abstractmethod
    def child(self, name: str) -> Node | None:
        """The entry `name` of this directory (one component, no '/'), or None when absent.

        FAT and ISO9660 compare names case-insensitively, as those filesystems do.
        """

    @abstractmethod
    def names(self) -> Iterator[str]:
        """The entry names of this directory, without '.' and '..'."""

    @abstractmethod
    def readlink(self) -> str:
        """The target of this symlink."""

    @abstractmethod
    def open(self) -> BinaryIO:
        """A read-only stream of this file's bytes (never the whole file in memory)."""

    def extents(self) -> list[Extent] | None:
        """The file's plain extents covering [0, size), or None when it is compressed or inline."""
        return None


class FileSystem(ABC):
    """A mounted-read-only view of one volume's filesystem."""

    fstype: str  # GRUB's name: ext2, xfs, btrfs, fat, iso9660
    uuid: str | None  # as GRUB's `search --fs-uuid` prints it
    label: str | None

    @abstractmethod
    def root(self) -> Node:
        """The directory that '/' names (for Btrfs: the default subvolume)."""

    def alternate_roots(self) -> list[Node]:
        """Other roots to try when a path is absent from `root()` (Btrfs: the top-level subvolume)."""
        return []


class Adapter(Protocol):
    """What each adapter module of `pvboot.disk.fs` declares (the module itself satisfies this).

    Importing the module must stay cheap (its parser is imported on first use: `fs._deferred`), since
    detection imports every registered adapter to ask its probe.
    """

    FSTYPE: str  # GRUB's name for the filesystem, as `FileSystem.fstype`
    REQUIRES: str  # the Python package its reader needs, named when it is missing
    LABEL: str  # the filesystem's name for people ("ext2/3/4"), in "no supported filesystem" messages

    def probe(self, stream: BinaryIO) -> bool:
        """True when `stream` (one volume) holds this filesystem: magic numbers at fixed offsets or a
        boot-sector check, from a few small reads and without the parser."""
        ...

    def mount(self, stream: BinaryIO, limits: Limits) -> FileSystem:
        """The filesystem on `stream`, which `probe` recognised."""
        ...
