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

    @classmethod
    def from_env(cls) -> Limits:
        return cls(max_file_size=_max_file_size_from_env())


def check(value: int, bound: int, what: str) -> None:
    """Raise a LimitError naming `what` when `value` exceeds `bound`."""
    if value > bound:
        raise LimitError(f"{what}: {value} exceeds the limit of {bound}")
