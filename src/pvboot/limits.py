"""Every bound pvboot enforces on guest data, in one place so that they are documented and tunable."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pvboot.errors import LimitError, UsageError

MIB = 1 << 20


def _max_file_size_from_env() -> int:
    """PYGRUB_MAX_FILE_SIZE_MB, as pygrub honours it (default 128 MiB)."""
    raw = os.environ.get("PYGRUB_MAX_FILE_SIZE_MB")
    if raw is None or raw == "":
        return 128 * MIB
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"PYGRUB_MAX_FILE_SIZE_MB must be a whole number of MiB, not {raw!r}") from None
    if value <= 0:
        raise UsageError("PYGRUB_MAX_FILE_SIZE_MB must be positive")
    return value * MIB


@dataclass(frozen=True)
class ReplyBounds:
    """What the root parent decodes of one reply of the reading process, checked before decoding: a
    subverted reader must not be able to make the unconfined parent allocate without bound."""

    size: int  # bytes of the JSON text (the length header is checked before the payload is read)
    items: int  # JSON values (counted as commas and containers outside strings)
    depth: int  # nesting of arrays and objects


@dataclass(frozen=True)
class Limits:
    """Bounds on what guest data may make pvboot do."""

    max_file_size: int = 128 * MIB  # kernel, each initrd, the concatenated ramdisk
    max_config_size: int = 16 * MIB  # one boot config file
    max_symlink_hops: int = 40  # as Linux's MAXSYMLINKS
    max_path_components: int = 4096
    max_dir_entries: int = 100_000  # entries read from one directory
    max_partitions: int = 256  # MBR logical chain and GPT entries in use
    max_lvm_metadata: int = 1 * MIB
    max_qcow2_table: int = 256 * MIB  # L1 + refcount table bytes
    max_backing_depth: int = 8
    max_decompress_ratio: int = 1024
    child_address_space: int = 512 * MIB  # test layouts peak under 48 MiB; qcow2 L2 cache: 32 MiB a layer
    child_cpu_seconds: int = 120
    # per request to the reading process; the backstop that bounds a run when every other limit holds but
    # each step is slow (path walks are steps too: a `search --file` loop spends max_steps in ~1 s)
    wall_timeout: float = 25.0
    # The root parent's own bounds, on what the reader replies and what pvboot does with it. A menu reply
    # carries every entry's commands: a 1 MiB grub.cfg of Debian-style entries gives 1.9 MiB (JSON escapes
    # \n and \t; ~2,800 entries, ~48,000 values), 1,000 entries 1.1 MiB (27,000 values), so 4 MiB holds a
    # 2 MiB grub.cfg (95,000 values). Every other reply names one entry, its files and the disk's volumes.
    max_menu_reply: int = 4 * MIB
    max_reply: int = 1 * MIB
    max_reply_items: int = 250_000
    max_reply_depth: int = 400  # 150 nested submenus (the interpreter's max_nesting) are ~300 levels
    # RLIMIT_AS of the parent (soft only: the reader sets its own below the hard limit). Its peak, as
    # VmPeak: 29 MiB on the console menu, 34 MiB for -l on 1,000 entries, 71 MiB for --report on a 4 MiB
    # menu reply; a hostile reply within the bounds above decodes into at most ~45 MiB.
    parent_address_space: int = 256 * MIB
    parent_seconds: float = 10.0  # wall clock for each parent-side step on guest data (render, redact)

    def reply_bounds(self, op: object) -> ReplyBounds:
        """The bounds of the reply to request `op`."""
        size = self.max_menu_reply if op == "menu" else self.max_reply
        return ReplyBounds(size, self.max_reply_items, self.max_reply_depth)

    @classmethod
    def from_env(cls) -> Limits:
        return cls(max_file_size=_max_file_size_from_env())


def check(value: int, bound: int, what: str) -> None:
    """Raise a LimitError naming `what` when `value` exceeds `bound`."""
    if value > bound:
        raise LimitError(f"{what}: {value} exceeds the limit of {bound}")
