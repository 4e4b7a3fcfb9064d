"""The guest disk as a list of volumes with GRUB's names, each possibly holding a filesystem.

`hd0` is the whole disk (a bare filesystem, as `xvda` often is), `hd0,msdos5` / `hd0,gpt2` partitions,
`lvm/VG-LV` logical volumes found on any partition or on the whole disk.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import BinaryIO

from pvboot.disk import fs as fsprobe
from pvboot.disk import partitions
from pvboot.disk.container import Container, open_container
from pvboot.disk.fsapi import FileSystem
from pvboot.disk.stream import append_run, window
from pvboot.disk.tree import FileTree
from pvboot.errors import GuestDataError, LimitError, NotFoundError
from pvboot.limits import Limits

log = logging.getLogger(__name__)

LVM_LABEL_SECTORS = 4


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

    def __init__(
        self, path: str, limits: Limits, offset: int | None = None, fmt: str | None = None
    ) -> None:
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
        volume = Volume(name, offset, size, stream, self.limits, part_type, container=self.container)
        volume.fstype = fsprobe.detect(stream)
        return volume

    def _scan(self, offset: int | None) -> None:
        base = self.container.stream
        size = self.container.size
        if offset is not None:
            if not 0 <= offset < size:
                raise GuestDataError(f"--offset={offset} lies outside the disk ({size} bytes)")
            tail = window(base, offset, size - offset)
            self.volumes.append(self._new_volume("hd0", offset, size - offset, tail, None))
            return
        whole = window(base, 0, size)
        base.seek(0)
        first = base.read(512)
        gpt_sector = partitions.find_gpt(whole)
        table: list[partitions.Partition] | None = None
        if gpt_sector is not None:
            table = partitions.read_gpt(whole, size, self.limits, gpt_sector)
        elif partitions.looks_like_mbr(first) and not _is_bare_fat(first):
            # A FAT boot sector also ends in 55aa; only its BPB tells a bare FAT volume from an MBR.
            table = partitions.read_mbr(whole, size, self.limits)
        if table is None:
            disk = self._new_volume("hd0", 0, size, whole, None)
            self.volumes.append(disk)
            if disk.fstype is None:
                self._add_lvm(disk)
            return
        for part in table:
            stream = window(base, part.offset, part.size)
            volume = self._new_volume(f"hd0,{part.label}", part.offset, part.size, stream, part.type)
            self.volumes.append(volume)
            if volume.fstype is None:
                self._add_lvm(volume)

    def _add_lvm(self, holder: Volume) -> None:
        """Logical volumes on `holder` when it is an LVM2 physical volume."""
        holder.stream.seek(0)
        head = holder.stream.read(512 * LVM_LABEL_SECTORS)
        if b"LABELONE" not in head:
            return
        from pvboot.disk.lvm import find_logical_volumes

        try:
            found = find_logical_volumes(holder.stream, holder.size, self.limits)
        except LimitError:
            raise
        except GuestDataError as exc:  # one corrupt PV does not hide the other volumes
            holder.error = f"LVM physical volume: {exc}"
            log.debug("(%s): %s", holder.name, holder.error)
            return
        for lv in found:
            reason = getattr(lv, "unsupported_reason", None)
            if reason:
                log.debug("(%s): skipped: %s", lv.grub_name, reason)
                continue
            volume = self._new_volume(lv.grub_name, holder.offset + lv.offset, lv.size, lv.open(), None)
            volume.runs = _disk_runs(lv.runs, holder)
            volume.aliases.append(lv.grub_id_name)
            self.volumes.append(volume)

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
    """An LV's (LV offset, PV offset, length) runs as (LV offset, disk offset, length), cut where they leave
    the PV (as reads through the PV's stream end there)."""
    out = []
    for lv_offset, pv_offset, length in runs:
        count = min(length, holder.size - pv_offset)
        if count <= 0:
            break
        out.append((lv_offset, holder.offset + pv_offset, count))
        if count < length:
            break
    return tuple(out)


def _is_bare_fat(sector: bytes) -> bool:
    """A FAT volume boot record: a jump, a power-of-two sector size and a FAT type string in the BPB."""
    if sector[0] not in (0xEB, 0xE9):
        return False
    bps = int.from_bytes(sector[11:13], "little")
    return bps in (512, 1024, 2048, 4096) and (sector[54:57] == b"FAT" or sector[82:87] == b"FAT32")
