"""GRUB's view of the guest disk: device names, `(dev)/path` resolution against `$root`, search keys.

Config readers see the disk only through this class, so one set of rules decides what `(hd0,1)/x`,
`/x` with `root=hd0,msdos5`, or a `search --fs-uuid` resolves to.
"""

from __future__ import annotations

import fnmatch
import re

from pvboot.disk.fsapi import Kind
from pvboot.disk.tree import FileTree
from pvboot.disk.volumes import GuestDisk, Volume
from pvboot.errors import GuestDataError, LimitError, NotFoundError
from pvboot.limits import Limits
from pvboot.menu import FileRef

_DEVICE_PATH = re.compile(r"^\(([^()]*)\)(.*)$", re.S)
_BARE_PARTITION = re.compile(r"^(hd\d+),(\d+)$")


class GuestView:
    """Name-based access to the guest's volumes and files, as GRUB names them."""

    def __init__(
        self, disk: GuestDisk, assume_files: bool = False, kernel_fallback: str | None = None
    ) -> None:
        self.disk = disk
        self.assume_files = assume_files  # --isconfig: loaders name files that are not there
        # XenServer's /kernel-xenserver (config/xenserver.py): loads in place of a missing kernel
        self.kernel_fallback = kernel_fallback

    def fallback_for(self, ref: FileRef) -> FileRef | None:
        """The kernel that loads in place of the missing `ref`: `kernel_fallback` on the same volume,
        when that is a file; else None."""
        if self.kernel_fallback is None or ref.volume is None:
            return None
        alternative = FileRef(ref.volume, self.kernel_fallback)
        return alternative if self.kind(alternative) is Kind.FILE else None

    def volume_names(self) -> list[str]:
        """Every volume in GRUB's device iteration order (whole disk, then its partitions, then LVs)."""
        return [v.name for v in self.disk.volumes]

    def find_volume(self, name: str) -> Volume | None:
        """The volume GRUB's device name `name` means (`hd0,1` is `hd0,msdos1` or `hd0,gpt1`)."""
        name = name.strip()
        if name.startswith("(") and name.endswith(")"):
            name = name[1:-1]
        for volume in self.disk.volumes:
            if volume.name == name or name in volume.aliases:
                return volume
        bare = _BARE_PARTITION.match(name)
        if bare:
            for volume in self.disk.volumes:
                disk, _, part = volume.name.partition(",")
                if disk == bare.group(1) and re.fullmatch(rf"[a-z]+{bare.group(2)}", part):
                    return volume
        return None

    def split(self, path: str, root: str | None) -> FileRef:
        """`(dev)/path` or `/path` (on `root`) as a FileRef; a bare device stays with path ''."""
        match = _DEVICE_PATH.match(path)
        if match:
            return FileRef(match.group(1), match.group(2))
        return FileRef(root.strip("()") if root else None, path)

    def tree_of(self, ref: FileRef) -> FileTree:
        if ref.volume is None:
            raise NotFoundError(f"{ref.path}: no device given and $root is not set")
        volume = self.find_volume(ref.volume)
        if volume is None:
            raise NotFoundError(f"({ref.volume}): no such device")
        return volume.tree()

    def kind(self, ref: FileRef) -> Kind | None:
        """What `ref` is (following symlinks), or None when absent or unreadable."""
        try:
            tree = self.tree_of(ref)
            return tree.lookup(ref.path or "/").kind
        except LimitError:
            raise  # symlink loops and oversized directories are named, not reported as "not found"
        except GuestDataError:
            return Kind.FILE if self.assume_files and ref.path not in ("", "/") else None

    def size(self, ref: FileRef) -> int:
        return self.tree_of(ref).lookup(ref.path).size

    def read_text(self, ref: FileRef, cap: int) -> str:
        data = self.tree_of(ref).read_small(ref.path, cap)
        return data.decode("utf-8", errors="replace")

    def listdir(self, ref: FileRef) -> list[str]:
        return self.tree_of(ref).listdir(ref.path or "/")

    def glob(self, ref: FileRef) -> list[str]:
        """Paths on ref's device matching ref.path's wildcards, one directory level at a time."""
        parts = [p for p in ref.path.split("/") if p]
        matches = ["/"]
        for part in parts:
            found: list[str] = []
            for base in matches:
                prefix = base.rstrip("/")
                if not any(ch in part for ch in "*?["):
                    found.append(f"{prefix}/{part}")
                    continue
                try:
                    names = self.listdir(FileRef(ref.volume, base))
                except GuestDataError:
                    continue
                found.extend(f"{prefix}/{n}" for n in sorted(names) if fnmatch.fnmatchcase(n, part))
            matches = found
        return [m for m in matches if self.kind(FileRef(ref.volume, m)) is not None]

    def fs_uuid(self, name: str) -> str | None:
        volume = self.find_volume(name)
        return volume.uuid if volume is not None else None

    def fs_label(self, name: str) -> str | None:
        volume = self.find_volume(name)
        return volume.label if volume is not None else None

    def fs_type(self, name: str) -> str | None:
        volume = self.find_volume(name)
        return volume.fstype if volume is not None and volume.has_filesystem() else None


class VolumeFiles:
    """`ConfigFiles` over one guest volume, text reads capped at the config size limit."""

    def __init__(self, view: GuestView, volume: str, limits: Limits) -> None:
        self.view = view
        self.volume = volume
        self.limits = limits

    def read(self, path: str) -> str:
        return self.view.read_text(FileRef(self.volume, path), self.limits.max_config_size)

    def listdir(self, path: str) -> list[str]:
        return self.view.listdir(FileRef(self.volume, path))

    def exists(self, path: str) -> bool:
        return self.view.kind(FileRef(self.volume, path)) is not None

    def is_file(self, path: str) -> bool:
        return self.view.kind(FileRef(self.volume, path)) is Kind.FILE
