"""The guest disk as a list of volumes with GRUB's names, each possibly holding a filesystem.

`hd0` is the whole disk (a bare filesystem, as `xvda` often is), `hd0,msdos5` / `hd0,gpt2` partitions,
`lvm/VG-LV` logical volumes. `VOLUME_SYSTEMS` is the one list of the formats that divide a volume into
volumes; the scan is a worklist, so a volume found inside a volume is scanned again (an LV's PV on a
partition needs no special case, nor would md RAID inside or below it), bounded in depth and count.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import BinaryIO

from pvboot.disk import fs as fsprobe
from pvboot.disk import gpt, lvm, mbr
from pvboot.disk.container import Container, open_container
from pvboot.disk.fsapi import FileSystem
from pvboot.disk.layer import Found, VolumeSystem
from pvboot.disk.stream import append_run, window
from pvboot.disk.tree import FileTree
from pvboot.errors import GuestDataError, LimitError, NotFoundError
from pvboot.limits import DISK_MAX_NESTING, DISK_MAX_VOLUMES, Limits

log = logging.getLogger(__name__)

# The volume systems, in the order they are sought on a volume (see layer.VolumeSystem). A new one is
# its module plus one line here.
VOLUME_SYSTEMS: tuple[VolumeSystem, ...] = (
    gpt,  # partition tables, on the whole disk: GPT first, since a GPT disk's MBR is a protective one
    mbr,
    lvm,  # on any volume without a filesystem
)
LVM_LABEL_SECTORS = lvm.LABEL_SECTORS


@dataclass
class Volume:
    """A byte range of the guest disk that may hold a filesystem."""

    name: str  # GRUB's device name without parentheses: hd0, hd0,msdos1, lvm/vg-root
    offset: int  # in the guest disk (for LVs: of the first byte, when linear)
    size: int
    stream: BinaryIO
    limits: Limits
    part_type: str | None = None
    fstype: str | None = None
    error: str | None = None  # why the filesystem could not be opened
    aliases: list[str] = field(default_factory=list)  # other GRUB names (lvmid/VGUUID/LVUUID)
    _tree: FileTree | None = field(default=None, repr=False)
    container: Container | None = field(default=None, repr=False)  # the image, for host_ranges()
    # (volume offset, disk offset, length) in volume order for a multi-segment LV; () means the volume is
    # the disk's bytes [offset, offset+size)
    runs: tuple[tuple[int, int, int], ...] = ()

    def tree(self) -> FileTree:
        """This volume's filesystem as a FileTree, opened on first use."""
        if self._tree is None:
            if self.error is not None:
                raise GuestDataError(f"({self.name}): {self.error}")
            if self.fstype is None:
                raise NotFoundError(f"({self.name}): no filesystem")
            try:
                fs: FileSystem = fsprobe.open_filesystem(self.stream, self.limits)
            except GuestDataError as exc:
                self.error = str(exc)
                raise GuestDataError(f"({self.name}): {exc}") from None
            placement = self if self.container is not None else None
            self._tree = FileTree(fs, self.limits, self.name, placement)
        return self._tree

    def host_ranges(self, offset: int, length: int) -> list[tuple[int | None, int]]:
        """This volume's bytes [offset, offset+length), clamped to the volume, as (host offset or None,
        length) runs of `host_fd()` (see `Container.host_ranges`); adjacent runs are merged."""
        assert self.container is not None
        end = min(offset + length, self.size)
        out: list[tuple[int | None, int]] = []
        for disk_offset, count in self._disk_ranges(offset, end):
            for where, n in self.container.host_ranges(disk_offset, count):
                append_run(out, where, n)
        return out

    def host_fd(self) -> int:
        assert self.container is not None
        return self.container.fileno_for_plain()

    def _disk_ranges(self, start: int, end: int) -> list[tuple[int, int]]:
        """Volume bytes [start, end) as (guest disk offset, length) pieces."""
        if start < 0 or end <= start:
            return []
        if not self.runs:
            return [(self.offset + start, end - start)]
        out = []
        index = max(0, bisect_right([run[0] for run in self.runs], start) - 1)
        pos = start
        for vol_offset, disk_offset, count in self.runs[index:]:
            if pos >= end:
                break
            if not vol_offset <= pos < vol_offset + count:
                break  # a gap in the runs: not mapped
            n = min(end, vol_offset + count) - pos
            out.append((disk_offset + pos - vol_offset, n))
            pos += n
        return out

    @property
    def uuid(self) -> str | None:
        return self.tree().fs.uuid if self.has_filesystem() else None

    @property
    def label(self) -> str | None:
        return self.tree().fs.label if self.has_filesystem() else None

    def has_filesystem(self) -> bool:
        """True when a filesystem was detected and opens."""
        if self.fstype is None or self.error is not None:
            return False
        try:
            self.tree()
        except GuestDataError:
            return False
        return True


class GuestDisk:
    """An opened guest image: its container and the volumes on it."""

    def __init__(self, path: str, limits: Limits, offset: int | None = None, fmt: str | None = None) -> None:
        self.path = path
        self.limits = limits
        self.container: Container = open_container(path, limits, fmt)  # fmt: --format (None: probe)
        self.volumes: list[Volume] = []
        try:
            self._scan(offset)
        except GuestDataError:
            self.close()
            raise
        except (OSError, ValueError, OverflowError) as exc:
            self.close()
            raise GuestDataError(f"{path}: unreadable disk: {exc}") from None

    def close(self) -> None:
        self.container.close()

    def _new_volume(
        self, name: str, offset: int, size: int, stream: BinaryIO, part_type: str | None
    ) -> Volume:
        return Volume(name, offset, size, stream, self.limits, part_type, container=self.container)

    def _scan(self, offset: int | None) -> None:
        base = self.container.stream
        size = self.container.size
        if offset is not None:  # --offset: one filesystem there, nothing else is sought
            if not 0 <= offset < size:
                raise GuestDataError(f"--offset={offset} lies outside the disk ({size} bytes)")
            tail = self._new_volume("hd0", offset, size - offset, window(base, offset, size - offset), None)
            self._list(tail)
            return
        # A stack: the volumes found inside a volume are scanned next, so they follow it in self.volumes
        # (hd0,msdos1, lvm/vg-root, hd0,msdos2, ...), in the order their volume system gives them.
        todo: list[tuple[Volume, int]] = [(self._new_volume("hd0", 0, size, window(base, 0, size), None), 0)]
        while todo:
            volume, depth = todo.pop()
            table = self._partition_table(volume) if depth == 0 else None
            if table is not None:  # a partitioned disk is its partitions, as GRUB lists it
                todo.extend((child, depth + 1) for child in reversed(table))
                continue
            self._list(volume)
            if volume.fstype is not None:
                continue
            if depth >= DISK_MAX_NESTING:
                log.debug("(%s): volumes nested %d deep: not scanned further", volume.name, depth)
                continue
            todo.extend((child, depth + 1) for child in reversed(self._stacked(volume)))

    def _list(self, volume: Volume) -> None:
        if len(self.volumes) >= DISK_MAX_VOLUMES:
            raise LimitError(f"more than {DISK_MAX_VOLUMES} volumes on the disk")
        volume.fstype = fsprobe.detect(volume.stream)
        self.volumes.append(volume)

    def _partition_table(self, disk: Volume) -> list[Volume] | None:
        """The partitions of the whole disk, or None when no partition table claims it."""
        for system in VOLUME_SYSTEMS:
            if system.WHOLE_DISK and system.probe(disk):
                return [self._child(disk, found) for found in system.scan(disk, self.limits)]
        return None

    def _stacked(self, holder: Volume) -> list[Volume]:
        """The volumes inside `holder` (which holds no filesystem) by the first volume system that claims
        it; a corrupt one marks `holder` with the reason and hides nothing else."""
        for system in VOLUME_SYSTEMS:
            if system.WHOLE_DISK or not system.probe(holder):
                continue
            try:
                return [self._child(holder, found) for found in system.scan(holder, self.limits)]
            except LimitError:
                raise
            except GuestDataError as exc:
                holder.error = f"{system.NAME}: {exc}"
                log.debug("(%s): %s", holder.name, holder.error)
                return []
        return []

    def _child(self, holder: Volume, found: Found) -> Volume:
        """`found` as a volume of the disk: its range, or its runs, mapped through `holder`'s."""
        runs, stream = found.runs, found.stream
        if stream is None and not holder.runs:  # a range of a range of the disk: read the disk directly
            start = holder.offset + found.offset
            stream = window(self.container.stream, start, found.size)
        else:
            if stream is None:
                runs = ((0, found.offset, found.size),)
                stream = window(holder.stream, found.offset, found.size)
            runs = _disk_runs(runs, holder)
            start = runs[0][1] if runs else holder.offset + found.offset
        volume = self._new_volume(found.name, start, found.size, stream, found.part_type)
        volume.runs = runs
        volume.aliases.extend(found.aliases)
        return volume

    def volume(self, name: str) -> Volume:
        """The volume GRUB calls `name` (without parentheses)."""
        for volume in self.volumes:
            if volume.name == name:
                return volume
        raise NotFoundError(f"no volume ({name}) on this disk")

    def filesystems(self) -> list[Volume]:
        """Volumes holding a filesystem that opens, in disk order."""
        return [v for v in self.volumes if v.has_filesystem()]


def _disk_runs(runs: tuple[tuple[int, int, int], ...], holder: Volume) -> tuple[tuple[int, int, int], ...]:
    """A volume's (volume offset, holder offset, length) runs as (volume offset, disk offset, length), cut
    where they leave the holder (as reads through the holder's stream end there)."""
    out: list[tuple[int, int, int]] = []
    for vol_offset, holder_offset, length in runs:
        end = min(holder_offset + length, holder.size)
        done = 0
        for disk_offset, count in holder._disk_ranges(holder_offset, end):
            out.append((vol_offset + done, disk_offset, count))
            done += count
        if done < length:
            break
    return tuple(out)
