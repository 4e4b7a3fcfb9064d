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


# -- GRUB 2 --


@dataclass(frozen=True)
class ScriptLimits:
    """Bounds on one GRUB 2 script run; config/grub2/interp.py says how steps and nesting are counted."""

    max_steps: int = 1_000_000
    max_depth: int = 64  # nested function calls and run_new_scope
    max_source_depth: int = 16  # nested run_config/run_source/source/eval
    max_loop_iterations: int = 100_000  # per execution of one loop
    max_value_size: int = 1 << 20  # one variable
    max_variables: int = 10_000  # in one context
    max_script_size: int = 16 << 20
    max_nesting: int = 150  # blocks, loops, calls and sources together; bounds the Python stack
    max_total_size: int = 64 << 20  # all variables of all contexts together
    max_command_size: int = 4 << 20  # one command's expanded words together


GRUB_MAX_MENU_ENTRIES = 10_000  # entries in one menu (top level, a submenu, a configfile)
GRUB_MAX_CAT = 64 * 1024  # bytes of a file the console's `cat` shows
GRUB_MAX_LS = 64 * 1024  # characters of one `ls` listing
GRUB_MAX_CONSOLE_OUTPUT = 64 * 1024  # characters of output one console command line keeps
GRUB_MAX_ERE_PROGRAM = 20_000  # instructions of one compiled `regexp` pattern
GRUB_MAX_ERE_DEPTH = 48  # nested groups in one `regexp` pattern


# -- kernel checks --
# Decompressing a bzImage payload to read its ELF notes is the one place where guest bytes can make pvboot
# do much more work than they weigh, so it has two bounds: an absolute cap on decompressed bytes and a
# ratio to the compressed payload (whichever is smaller), with a floor so that a tiny test kernel whose
# first megabytes are zero padding still decodes.


@dataclass(frozen=True)
class KernelLimits:
    """Bounds on what a kernel, initrd or device tree may make the checker do."""

    max_decompressed: int = 256 * MIB  # bytes decoded from one payload, over all passes
    max_decompress_ratio: int = 1024  # decoded bytes per payload byte...
    ratio_floor: int = 16 * MIB  # ...but always this many (zero padding compresses ~1000:1)
    max_passes: int = 3  # restarts of a payload decoder (reading backwards needs one)
    max_headers: int = 4096  # ELF program or section headers read
    max_note_bytes: int = 1 * MIB  # one note segment or section
    max_notes: int = 65536  # as libelf's ELF_MAX_TOTAL_NOTE_COUNT
    max_block: int = 8 * MIB  # one lz4/lzo block's output (Linux writes 8 MiB / 256 KiB blocks)
    version_scan: int = 64 * MIB  # bytes searched for "Linux version " when no header names it
    max_dtb_size: int = 4 * MIB  # a device tree blob (Linux's largest are ~250 KiB)
    max_dtb_depth: int = 64  # node nesting in a device tree
    max_dtb_tokens: int = 1_000_000  # structure tokens walked in a device tree

    @classmethod
    def from_limits(cls, limits: Limits | KernelLimits | None) -> KernelLimits:
        """The kernel bounds for `limits` (pvboot's Limits, already KernelLimits, or None: defaults)."""
        if isinstance(limits, KernelLimits):
            return limits
        if limits is None:
            return cls()
        return cls(max_decompress_ratio=limits.max_decompress_ratio)

    def payload_cap(self, compressed: int) -> int:
        """Decoded bytes allowed for a payload of `compressed` bytes."""
        return min(self.max_decompressed, max(self.ratio_floor, compressed * self.max_decompress_ratio))


LZMA_MEMLIMIT = 160 * MIB  # the xz decoder's dictionary memory (xz's own -9 preset needs 65 MiB)


# -- boot-config readers and the kernel stage (imported under their modules' own names) --

EXTLINUX_MAX_LINE = 4095  # characters of one extlinux/syslinux config line, as SYSLINUX reads it
EXTLINUX_MAX_INCLUDE_DEPTH = 16  # nested INCLUDEs: pxelinux's (and U-Boot's) nesting limit
EXTLINUX_MAX_INCLUDES = 64  # INCLUDEs in one config
EXTLINUX_MAX_LABELS = 10_000  # labels in one config
LEGACY_MAX_ENTRIES = 10_000  # entries in one GRUB legacy menu.lst
BLSCFG_MAX_ENTRIES = 512  # BLS entries blscfg reads: its insertion sort is quadratic; real systems have tens
SDBOOT_MAX_ENTRIES = 512  # BLS entries of a systemd-boot menu
ELF_MAX_STRING = 4096  # one ELF note string: libelf's ELF_MAX_STRING_LENGTH
VERDICTS_MAX_ENTRIES = 256  # kernels the verdict cache remembers
VERDICTS_MAX_FILE_SIZE = 4 * MIB  # bytes of the verdict cache file read


# -- disk layers --

FS_MAX_SYMLINK = 4096  # bytes of a symlink's target: PATH_MAX, no real one is longer
# Volumes found inside volumes are scanned again (disk/volumes.py): these bound that walk. The deepest
# real layout is a logical volume on md RAID on a partition, 3 below the disk.

DISK_MAX_VOLUMES = 4096  # volumes listed on one disk (each partition table also has max_partitions)
DISK_MAX_NESTING = 6  # volume systems inside volume systems; deeper volumes are listed, not scanned
DISK_MAX_VIRTUAL_SIZE = 1 << 56  # bytes of a disk image (64 PiB); larger is not a real disk
QCOW2_L2_CACHE_BYTES = 32 * MIB  # L2 tables kept in memory per qcow2 layer
GPT_MAX_ENTRIES = 65536  # entries in a GPT partition array
GPT_MAX_ENTRY_ARRAY = 16 * MIB  # bytes of a GPT partition array
GPT_MAX_ENTRY_SIZE = 4096  # bytes of one GPT entry (UEFI's is 128; larger ones are multiples of 8)
LVM_MAX_METADATA_NESTING = 8  # sections in LVM metadata text (root > vg > logical_volumes > lv > segment: 4)
FS_MAX_DIR_BYTES = 64 * MIB  # one directory's bytes (100,000 entries are a few MiB on every filesystem here)
FS_TREE_CHILD_CACHE = 4096  # directory entries a FileTree caches: what a hostile config's lookups can pin
BTRFS_MAX_NODE_VISITS = 200_000  # B-tree nodes one Btrfs tree walk visits
ISO9660_MAX_DESCRIPTORS = 64  # volume descriptors read before the set terminator


# -- protocol --

PROTOCOL_MAX_MENU_DEPTH = 200  # nested submenus in a menu reply (the interpreter stops at 150)
