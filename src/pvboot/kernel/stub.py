"""The smallest file pvboot's kernel check accepts: an x86_64 ELF with the Xen notes of a Linux PV/PVH
kernel around any body. For tests and demos whose kernels are stand-ins (marker text, random bytes): wrap
them with `stub_kernel(body)` and the copy still holds `body`, byte for byte, after a fixed header.
It would not run: its "code" is `body`.
"""

from __future__ import annotations

import struct

VIRT_BASE = 0xFFFFFFFF80000000
PADDR = 0x1000000
HEADER = 0x200  # ELF header, two program headers and the notes, padded: `body` starts here


def _note(ntype: int, desc: bytes) -> bytes:
    return struct.pack("<III", 4, len(desc), ntype) + b"Xen\0" + desc + b"\0" * (-len(desc) % 4)


def stub_kernel(body: bytes = b"", *, pv: bool = True, pvh: bool = True) -> bytes:
    """An ELF whose loadable segment is `body` (at offset HEADER), with the Xen notes that make it a PV
    (`pv`) and/or PVH (`pvh`) guest kernel for libxc's rules."""
    memsz = max(len(body), 0x1000)
    notes = b""
    if pv:
        notes += _note(6, b"linux\0\0\0") + _note(5, b"xen-3.0\0") + _note(3, struct.pack("<Q", VIRT_BASE))
        notes += _note(1, struct.pack("<Q", VIRT_BASE + PADDR)) + _note(8, b"generic\0")
    if pvh:
        notes += _note(18, struct.pack("<I", PADDR))
    ehdr = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    ehdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, VIRT_BASE + PADDR, 64, 0, 0, 64, 56, 2, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, HEADER, VIRT_BASE + PADDR, PADDR, len(body), memsz, 0x1000)
    note = struct.pack("<IIQQQQQQ", 4, 4, 64 + 2 * 56, 0, 0, len(notes), len(notes), 4)
    head = ehdr + load + note + notes
    assert len(head) <= HEADER
    return head + b"\0" * (HEADER - len(head)) + body
