"""The bounds of the kernel stage, derived from pvboot's `Limits` so that one place stays authoritative.

Decompressing a bzImage payload to read its ELF notes is the one place where guest bytes can make pvboot
do much more work than they weigh, so it has two bounds: an absolute cap on decompressed bytes and a
ratio to the compressed payload (whichever is smaller), with a floor so that a tiny test kernel whose
first megabytes are zero padding still decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvboot.limits import MIB, Limits


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
