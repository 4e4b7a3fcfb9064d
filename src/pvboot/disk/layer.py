"""What a volume system is, and what it reports: the interface every module in `VOLUME_SYSTEMS`
(`pvboot.disk.volumes`) declares, kept apart so that those modules need not import the disk scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from pvboot.limits import Limits


class Holder(Protocol):
    """The volume a volume system looks inside (a `volumes.Volume`)."""

    name: str  # GRUB's name, e.g. hd0 or hd0,gpt2
    size: int
    stream: BinaryIO  # its bytes [0, size)


@dataclass(frozen=True)
class Found:
    """A volume found inside a holder; offsets are the holder's."""

    name: str  # GRUB's name: hd0,msdos5, hd0,gpt2, lvm/VG-LV
    offset: int  # where its byte 0 lies in the holder
    size: int
    stream: BinaryIO | None = None  # None: the holder's bytes [offset, offset+size); else `runs` say
    part_type: str | None = None  # MBR: two hex digits; GPT: the type GUID
    aliases: tuple[str, ...] = ()  # other GRUB names (lvmid/VGUUID/LVUUID)
    # where its stream's bytes lie: (volume offset, holder offset, length), in volume order
    runs: tuple[tuple[int, int, int], ...] = ()


class VolumeSystem(Protocol):
    """A format that divides a volume into volumes (the module itself satisfies this).

    A partition table (`WHOLE_DISK`) is sought on the whole disk only, as GRUB does, and the volumes it
    finds replace the disk. Any other volume system is sought on every volume that holds no filesystem,
    the disk and volumes found inside volumes included, and its holder stays listed.
    """

    NAME: str  # what its errors and log lines call it: "GPT", "MBR", "LVM physical volume"
    WHOLE_DISK: bool

    def probe(self, holder: Holder) -> bool:
        """True when `holder` carries this volume system's signature (a few small reads)."""
        ...

    def scan(self, holder: Holder, limits: Limits) -> list[Found]:
        """The volumes inside `holder`, in GRUB's order; GuestDataError when its structures are corrupt."""
        ...
