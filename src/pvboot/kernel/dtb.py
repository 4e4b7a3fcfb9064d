"""Device tree blobs: is this a whole, well-formed flattened device tree? And which board does it describe?

The checks are those of libfdt's `fdt_check_header` + `fdt_check_full` (dtc's libfdt/fdt.c, fdt_check.c,
fdt_ro.c), the validation libfdt documents for blobs from untrusted sources, re-stated here in Python:
- header: magic 0xd00dfeed; version >= 16 (libfdt reads back to 2, but nothing has written those since
  2008; pvboot refuses them) and last_comp_version <= 17 <= ... version >= last_comp_version;
  totalsize within the data; the memory-reservation map, structure and strings blocks inside
  [header size, totalsize];
- the reservation map ends with a zero-size entry inside the blob;
- the structure block is a sequence of 4-byte aligned tokens: exactly one root node with an empty name,
  nodes nested and closed, every property's value inside the block and its name a NUL-terminated string
  inside the strings block, FDT_END after the root and nothing but it.
pylibfdt (PyPI) or Debian's python3-libfdt run the same checks in C; pvboot does not depend on either
(pylibfdt is an sdist that needs a compiler and SWIG to install), the tests compare the two on real and
corrupted blobs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import KernelLimits, Limits

FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9
HEADER_V17 = 40
HEADER_V16 = 36
LAST_SUPPORTED = 17


class DtbError(GuestDataError):
    """A device tree blob that is not a whole, valid FDT."""


@dataclass
class DtbInfo:
    """What a valid device tree says about itself."""

    name: str
    size: int  # totalsize
    version: int
    model: str | None = None
    compatible: list[str] = field(default_factory=list)
    nodes: int = 0
    reserved: int = 0  # memory reservation entries

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "size": self.size,
            "version": self.version,
            "model": self.model,
            "compatible": list(self.compatible),
            "nodes": self.nodes,
        }


def _text(raw: bytes) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in raw.decode("utf-8", "replace"))[:200]


def validate_dtb(data: bytes, name: str, limits: Limits | KernelLimits | None = None) -> DtbInfo:
    """Check `data` as a flattened device tree; raise DtbError naming `name` when it is not a valid one,
    LimitError when it is over the size or nesting bounds. Returns its model and compatible strings."""
    kl = KernelLimits.from_limits(limits)

    def bad(what: str) -> DtbError:
        return DtbError(f"device tree {name}: {what}")

    if len(data) > kl.max_dtb_size:
        raise LimitError(f"device tree {name}: {len(data)} bytes exceeds the limit of {kl.max_dtb_size}")
    if len(data) < HEADER_V16:
        raise bad(f"{len(data)} bytes: too short for a device tree header")
    (magic, total, off_struct, off_strings, off_rsv, version, last_comp) = struct.unpack_from(">7I", data, 0)
    if magic != FDT_MAGIC:
        raise bad(f"no device tree magic (0x{magic:08x}, not 0xd00dfeed): not a .dtb")
    if version < 16:
        raise bad(f"format version {version}: too old (pvboot reads 16 and 17)")
    if last_comp > LAST_SUPPORTED or version < last_comp:
        raise bad(f"format version {version}, compatible back to {last_comp}: unsupported")
    header = HEADER_V17 if version >= 17 else HEADER_V16
    if len(data) < header:
        raise bad("the header is truncated")
    _boot_cpu, size_strings = struct.unpack_from(">2I", data, 28)
    size_struct = struct.unpack_from(">I", data, 36)[0] if version >= 17 else None
    if total < header or total > 0x7FFFFFFF:
        raise bad(f"totalsize {total} is impossible")
    if total > len(data):
        raise bad(f"truncated: the header says {total} bytes, the file has {len(data)}")

    def inside(off: int, size: int = 0) -> bool:
        return bool(header <= off <= total and off + size <= total)

    if not inside(off_rsv):
        raise bad(f"the memory reservation map (at {off_rsv}) lies outside the blob")
    if size_struct is None:
        if not inside(off_struct):
            raise bad(f"the structure block (at {off_struct}) lies outside the blob")
        size_struct = total - off_struct
    elif not inside(off_struct, size_struct):
        raise bad(f"the structure block ({size_struct} bytes at {off_struct}) lies outside the blob")
    if not inside(off_strings, size_strings):
        raise bad(f"the strings block ({size_strings} bytes at {off_strings}) lies outside the blob")
    info = DtbInfo(name=name, size=total, version=version)
    info.reserved = _reservations(data, off_rsv, total, bad)
    _walk(data, off_struct, size_struct, off_strings, size_strings, total, kl, info, bad)
    return info


def _reservations(data: bytes, offset: int, total: int, bad: Any) -> int:
    count = 0
    pos = offset
    while True:
        if pos + 16 > total:
            raise bad("the memory reservation map has no terminating entry")
        _address, size = struct.unpack_from(">QQ", data, pos)
        if size == 0:
            return count
        count += 1
        pos += 16


def _string(data: bytes, start: int, limit: int) -> bytes | None:
    end = data.find(b"\0", start, limit)
    return None if end < 0 else data[start:end]


def _walk(
    data: bytes,
    base: int,
    size: int,
    strings: int,
    size_strings: int,
    total: int,
    kl: KernelLimits,
    info: DtbInfo,
    bad: Any,
) -> None:
    """fdt_check_full's token walk over the structure block `data[base:base+size]`."""
    end = min(base + size, total)
    pos = base
    depth = 0
    expect_end = False
    tokens = 0
    while True:
        tokens += 1
        if tokens > kl.max_dtb_tokens:
            raise LimitError(f"device tree {info.name}: more than {kl.max_dtb_tokens} structure tokens")
        if pos + 4 > end:
            raise bad("the structure block ends without FDT_END")
        tag = struct.unpack_from(">I", data, pos)[0]
        nxt = pos + 4
        if expect_end and tag != FDT_END:
            raise bad("content after the root node")
        if tag == FDT_BEGIN_NODE:
            node = _string(data, nxt, end)
            if node is None:
                raise bad("a node name runs past the structure block")
            depth += 1
            if depth > kl.max_dtb_depth:
                raise LimitError(f"device tree {info.name}: nodes nested deeper than {kl.max_dtb_depth}")
            if depth == 1 and node:
                raise bad(f"the root node has a name ({_text(node)!r})")
            info.nodes += 1
            nxt += len(node) + 1
        elif tag == FDT_END_NODE:
            if depth == 0:
                raise bad("FDT_END_NODE without an open node")
            depth -= 1
            expect_end = depth == 0
        elif tag == FDT_PROP:
            if nxt + 8 > end:
                raise bad("a property header runs past the structure block")
            length, nameoff = struct.unpack_from(">II", data, nxt)
            nxt += 8
            if depth == 0:
                raise bad("a property outside any node")
            if length > end - nxt:
                raise bad(f"a property value of {length} bytes runs past the structure block")
            if nameoff >= size_strings:
                raise bad(f"a property name offset {nameoff} lies outside the strings block")
            prop = _string(data, strings + nameoff, min(strings + size_strings, total))
            if prop is None:
                raise bad("a property name runs past the strings block")
            value = data[nxt : nxt + length]
            nxt += length
            if depth == 1:
                _root_property(prop, value, info)
        elif tag == FDT_NOP:
            pass
        elif tag == FDT_END:
            if depth != 0:
                raise bad("FDT_END inside an open node: the tree is truncated")
            if info.nodes == 0:
                raise bad("no root node")
            return
        else:
            raise bad(f"unknown structure token 0x{tag:08x} at offset {pos - base}")
        pos = (nxt + 3) & ~3


def _root_property(prop: bytes, value: bytes, info: DtbInfo) -> None:
    if prop == b"model":
        info.model = _text(value.split(b"\0")[0])
    elif prop == b"compatible":
        info.compatible = [_text(v) for v in value.split(b"\0") if v][:16]
