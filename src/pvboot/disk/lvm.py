"""LVM2 logical volumes on one physical volume, named as GRUB names them (`lvm/VG-LV`).

The on-disk label and metadata-area headers are parsed with dissect's struct definitions; the metadata
text is parsed here, because dissect's parser (a regex with quadratic backtracking on '#', then
`ast.literal_eval`) is unsafe on hostile text and its model raises KeyError on an LV-less VG. Only
linear LVs whose extents all lie on this PV are readable; every other LV is still listed, with the
reason in `unsupported_reason`, so that a missing volume can be explained.

A volume system (`pvboot.disk.layer.VolumeSystem`): sought on every volume that holds no filesystem.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, TypeGuard, cast

from pvboot.disk.layer import Found, Holder
from pvboot.disk.stream import RawReader
from pvboot.errors import GuestDataError
from pvboot.limits import LVM_MAX_METADATA_NESTING, Limits, check

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

NAME = "LVM physical volume"
WHOLE_DISK = False
SECTOR = 512
LABEL_SECTORS = 4  # the label lies in one of the first four sectors
_MDA_MAGIC = b" LVM2 x[5A%r0N*>"
_CRC_INIT = 0xF597A6CF
_RAW_LOCN_IGNORED = 1
_NAME = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,127}")
_TOKEN = re.compile(
    r'(?P<space>\s+|\#[^\n]*)|(?P<str>"(?:[^"\\]|\\.)*+")|(?P<punct>[{}\[\]=,])|(?P<word>[^\s{}\[\]=,"\#]+)',
    re.S,
)
Value = int | float | str | list[int | float | str]


log = logging.getLogger(__name__)


def probe(holder: Holder) -> bool:
    holder.stream.seek(0)
    return b"LABELONE" in holder.stream.read(SECTOR * LABEL_SECTORS)


def scan(holder: Holder, limits: Limits) -> list[Found]:
    """The readable LVs on the PV `holder`; the others are only logged, with the reason."""
    out = []
    for lv in find_logical_volumes(holder.stream, holder.size, limits):
        if lv.unsupported_reason is not None:
            log.debug("(%s): skipped: %s", lv.grub_name, lv.unsupported_reason)
            continue
        out.append(
            Found(lv.grub_name, lv.offset, lv.size, lv.open(), aliases=(lv.grub_id_name,), runs=lv.runs)
        )
    return out


def lvm_crc(data: bytes, initial: int = _CRC_INIT) -> int:
    """LVM's checksum: CRC-32 without the pre- and post-inversion zlib applies."""
    return ~zlib.crc32(data, ~initial & 0xFFFFFFFF) & 0xFFFFFFFF


@dataclass
class LogicalVolume:
    """One LV of the VG on this PV. `offset`, `runs` and `open()` are meaningful only when supported."""

    vg_name: str
    lv_name: str
    uuid: str
    vg_uuid: str
    size: int
    offset: int = 0  # where LV byte 0 lies in the PV stream
    runs: tuple[tuple[int, int, int], ...] = ()  # (LV offset, PV offset, length), in LV order
    unsupported_reason: str | None = None
    _pv: BinaryIO | None = field(default=None, repr=False)

    @property
    def grub_name(self) -> str:
        """GRUB's device name: the device-mapper name, '-' doubled within VG and LV names."""
        return f"lvm/{self.vg_name.replace('-', '--')}-{self.lv_name.replace('-', '--')}"

    @property
    def grub_id_name(self) -> str:
        """GRUB's alternative name, by UUIDs."""
        return f"lvmid/{self.vg_uuid}/{self.uuid}"

    def open(self) -> BinaryIO:
        """The LV's bytes, read from the PV stream."""
        if self.unsupported_reason is not None or self._pv is None:
            raise GuestDataError(f"({self.grub_name}): {self.unsupported_reason or 'not readable'}")
        return cast(BinaryIO, _RunStream(self._pv, self.runs, self.size))


class _RunStream(RawReader):
    """A read-only LV: the concatenation of PV byte ranges."""

    def __init__(self, base: BinaryIO, runs: Sequence[tuple[int, int, int]], size: int) -> None:
        super().__init__(size)
        self._base, self._runs = base, runs

    def readinto(self, buf: WriteableBuffer) -> int:
        view = memoryview(buf).cast("B")
        done = 0
        for lv_off, pv_off, length in self._runs:
            if done == len(view) or self._pos >= self.size:
                break
            if not lv_off <= self._pos < lv_off + length:
                continue
            n = min(len(view) - done, lv_off + length - self._pos)
            self._base.seek(pv_off + self._pos - lv_off)
            data = self._base.read(n)
            view[done : done + len(data)] = data
            done += len(data)
            self._pos += len(data)
            if len(data) < n:
                break
        return done


def find_logical_volumes(stream: BinaryIO, size: int, limits: Limits) -> list[LogicalVolume]:
    """The LVs described by the metadata on the PV `stream` (a partition or whole disk); [] if not a PV."""
    from dissect.volume.lvm.c_lvm2 import c_lvm

    label = _find_label(stream)
    if label is None:
        return []
    sector_no, sector = label
    try:
        header = c_lvm.label_header(sector)
        if lvm_crc(sector[20:]) != header.crc or header.sector != sector_no:
            raise GuestDataError(f"LVM label in sector {sector_no} has a bad checksum or sector number")
        if not 32 <= header.offset <= SECTOR - 40:
            raise GuestDataError("LVM label points outside its sector")
        pv_uuid = bytes(sector[header.offset : header.offset + 32]).decode("ascii", "replace")
        areas = sector[header.offset + 40 :]
        _, areas = _disk_locns(areas)  # data areas: extents are placed by pe_start instead
        metadata_areas, _ = _disk_locns(areas)
    except GuestDataError:
        raise
    except Exception as e:  # cstruct on short or odd input
        raise GuestDataError(f"bad LVM label: {type(e).__name__}") from None
    texts = [_read_metadata(stream, size, offset, length, limits) for offset, length in metadata_areas]
    for text in texts:
        if text:
            return _volumes(parse_metadata(text), pv_uuid, stream, size)
    if None in texts:
        raise GuestDataError("LVM physical volume has no intact metadata copy")
    return []  # an orphan PV, or its VG's metadata is kept on other PVs only


def _find_label(stream: BinaryIO) -> tuple[int, bytes] | None:
    stream.seek(0)
    head = stream.read(SECTOR * LABEL_SECTORS)
    for i in range(len(head) // SECTOR):
        sector = head[i * SECTOR : (i + 1) * SECTOR]
        if sector[:8] == b"LABELONE" and sector[24:32] == b"LVM2 001":
            return i, sector
    return None


def _disk_locns(data: bytes) -> tuple[list[tuple[int, int]], bytes]:
    """A zero-terminated list of (offset, size) pairs, and what follows it; bounded by the label sector."""
    out: list[tuple[int, int]] = []
    while True:
        if len(data) < 16:
            raise GuestDataError("LVM label area list runs past its sector")
        offset, length = int.from_bytes(data[:8], "little"), int.from_bytes(data[8:16], "little")
        data = data[16:]
        if offset == 0:
            return out, data
        out.append((offset, length))


def _read_metadata(stream: BinaryIO, size: int, start: int, area: int, limits: Limits) -> str | None:
    """The current metadata text of one metadata area (a ring buffer); "" if none is kept, None if corrupt."""
    from dissect.volume.lvm.c_lvm2 import c_lvm

    if area < 2 * SECTOR or start + area > size:
        return None
    stream.seek(start)
    raw = stream.read(SECTOR)
    if len(raw) < SECTOR or raw[4:20] != _MDA_MAGIC or lvm_crc(raw[4:]) != int.from_bytes(raw[:4], "little"):
        return None
    mda = c_lvm.mda_header(raw)
    locn = c_lvm.raw_locn(raw[40:64])
    if mda.version != 1 or mda.start != start:
        return None
    if locn.offset == 0 or locn.flags & _RAW_LOCN_IGNORED:
        return ""
    check(locn.size, limits.max_lvm_metadata, "LVM metadata text")
    if not SECTOR <= locn.offset < area:
        raise GuestDataError("LVM metadata lies outside its metadata area")
    first = min(locn.size, area - locn.offset)
    if locn.size - first > locn.offset - SECTOR:
        raise GuestDataError("LVM metadata overruns its metadata area")
    stream.seek(start + locn.offset)
    data = stream.read(first)
    if first < locn.size:  # wrapped around the end of the ring
        stream.seek(start + SECTOR)
        data += stream.read(locn.size - first)
    if len(data) != locn.size or lvm_crc(data) != locn.checksum:
        return None
    return data.rstrip(b"\0").decode("utf-8", "replace") or None


def parse_metadata(text: str) -> dict[str, object]:
    """LVM's text format as nested dicts: `name { ... }` sections and `key = value` settings.

    One pass over lazily produced tokens, without recursion, so hostile text costs time and memory
    linear in its (bounded) size.
    """
    tokens = _tokens(text)
    root: dict[str, object] = {}
    stack = [root]
    tok = next(tokens, None)
    while tok is not None:
        kind, word = tok
        if tok == ("punct", "}") and len(stack) > 1:
            stack.pop()
            tok = next(tokens, None)
            continue
        nxt = next(tokens, ("", ""))[1]
        if kind != "word" or nxt not in ("{", "=") or word in stack[-1]:
            raise GuestDataError(f"LVM metadata: unexpected {word[:40]!r}")
        if nxt == "{":
            if len(stack) > LVM_MAX_METADATA_NESTING:
                raise GuestDataError("LVM metadata: sections nested too deeply")
            child: dict[str, object] = {}
            stack[-1][word] = child
            stack.append(child)
        else:
            stack[-1][word] = _value(tokens)
        tok = next(tokens, None)
    if len(stack) != 1:
        raise GuestDataError("LVM metadata: unclosed section")
    return root


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise GuestDataError(f"LVM metadata: unterminated string at byte {pos}")
        pos = m.end()
        if m.lastgroup != "space":
            yield cast(str, m.lastgroup), m.group()


def _value(tokens: Iterator[tuple[str, str]]) -> Value:
    tok = next(tokens, None)
    if tok != ("punct", "["):
        return _scalar(tok)
    items: list[int | float | str] = []
    while (tok := next(tokens, None)) != ("punct", "]"):
        if items:
            if tok != ("punct", ","):
                raise GuestDataError("LVM metadata: malformed list")
            tok = next(tokens, None)
        items.append(_scalar(tok))
    return items


def _scalar(tok: tuple[str, str] | None) -> int | float | str:
    if tok is None:
        raise GuestDataError("LVM metadata: value missing at the end")
    kind, word = tok
    if kind == "str":
        return re.sub(r"\\(.)", r"\1", word[1:-1], flags=re.S)
    try:
        if kind == "word":
            return int(word) if re.fullmatch(r"-?[0-9]+", word) else float(word)
    except ValueError:
        pass
    raise GuestDataError(f"LVM metadata: bad value {word[:40]!r}")


def _get(section: object, key: str, kind: type, what: str) -> object:
    value = section.get(key) if isinstance(section, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise GuestDataError(f"LVM metadata: {what} has no valid {key!r}")
    return value


def _volumes(meta: dict[str, object], pv_uuid: str, pv: BinaryIO, size: int) -> list[LogicalVolume]:
    groups = [(k, v) for k, v in meta.items() if isinstance(v, dict)]
    if len(groups) != 1:
        raise GuestDataError(f"LVM metadata describes {len(groups)} volume groups, not one")
    vg_name, vg = groups[0]
    if not _NAME.fullmatch(vg_name) or vg_name in (".", ".."):
        raise GuestDataError(f"LVM volume group name {vg_name[:40]!r} is invalid")
    vg_uuid = cast(str, _get(vg, "id", str, f"VG {vg_name}"))
    extent = cast(int, _get(vg, "extent_size", int, f"VG {vg_name}")) * SECTOR
    if extent <= 0:
        raise GuestDataError(f"LVM VG {vg_name}: bad extent_size")
    here = None
    for pv_name, pv_meta in cast(
        dict[str, object], _get(vg, "physical_volumes", dict, f"VG {vg_name}")
    ).items():
        if cast(str, _get(pv_meta, "id", str, f"PV {pv_name}")).replace("-", "") == pv_uuid:
            pe_start = cast(int, _get(pv_meta, "pe_start", int, f"PV {pv_name}")) * SECTOR
            here = (pv_name, pe_start)
    if here is None:
        raise GuestDataError(f"LVM VG {vg_name} does not list this physical volume")
    out = []
    lvs = vg.get("logical_volumes", {})  # absent when the VG has no LV
    if not isinstance(lvs, dict):
        raise GuestDataError(f"LVM VG {vg_name}: logical_volumes is not a section")
    for lv_name, lv in lvs.items():
        if not isinstance(lv, dict):
            raise GuestDataError(f"LVM VG {vg_name}: logical_volumes holds a setting {lv_name[:40]!r}")
        lv_uuid = cast(str, _get(lv, "id", str, f"LV {lv_name}"))
        segments = [s for s in lv.values() if isinstance(s, dict)]
        extents = sum(s.get("extent_count", 0) for s in segments if isinstance(s.get("extent_count"), int))
        volume = LogicalVolume(vg_name, lv_name, lv_uuid, vg_uuid, max(0, extents) * extent)
        volume.unsupported_reason = _place(volume, lv, segments, here, extent, size)
        if volume.unsupported_reason is None:
            volume._pv = pv
        out.append(volume)
    return out


def _place(
    volume: LogicalVolume,
    lv: dict[str, object],
    segments: list[dict[str, object]],
    here: tuple[str, int],
    extent: int,
    size: int,
) -> str | None:
    """Fill `volume.runs`/`offset` for a linear LV on this PV, or say why it cannot be read."""
    if not _NAME.fullmatch(volume.lv_name) or volume.lv_name in (".", ".."):
        return "invalid LV name"
    status = lv.get("status")
    if not isinstance(status, list) or "VISIBLE" not in status:
        return "hidden LV (part of another LV)"
    if not segments:
        return "no segments"
    runs, lv_pos = [], 0
    for seg in sorted(segments, key=_start_extent):
        start, count, kind = seg.get("start_extent"), seg.get("extent_count"), seg.get("type")
        stripes, stripe_count = seg.get("stripes"), seg.get("stripe_count")
        if not (_is_int(start) and _is_int(count) and isinstance(kind, str)) or count <= 0:
            return "malformed segment"
        if kind not in ("striped", "linear"):
            return f"segment type {kind[:40]!r} is not supported"
        if stripe_count != 1 or not isinstance(stripes, list) or len(stripes) != 2:
            return "striped across several stripes"
        pv_name, pe = stripes
        if pv_name != here[0]:
            return "extents on another physical volume"
        if not _is_int(pe) or pe < 0 or start * extent != lv_pos:
            return "segments do not map the LV contiguously"
        pv_off, length = here[1] + pe * extent, count * extent
        if pv_off + length > size:
            return "extends beyond the physical volume"
        runs.append((lv_pos, pv_off, length))
        lv_pos += length
    volume.runs, volume.offset, volume.size = tuple(runs), runs[0][1], lv_pos
    return None


def _start_extent(segment: dict[str, object]) -> int:
    start = segment.get("start_extent")
    return start if _is_int(start) else -1


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
