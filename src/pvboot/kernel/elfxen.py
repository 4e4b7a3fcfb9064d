"""An ELF kernel's Xen notes and whether libxc's domain builder would start it as a PV or a PVH guest.

The rules are those of Xen's own loader (read in xen.git, never copied):
- xen/common/libelf/libelf-dominfo.c `elf_xen_parse`: Xen notes (name "Xen") from PT_NOTE segments whose
  p_offset is not 0; if none, from SHT_NOTE sections; if still none and the guest is PV, the legacy
  `__xen_guest` section ("NAME=VALUE,..."). `elf_xen_parse_note` decodes each note type;
  `elf_xen_parse_features` refuses a required ("!name") feature it does not know.
- `elf_xen_note_check`: an x86 ELF with no notes and no `__xen_guest` is "Not a Xen-ELF image"; for PVH
  (hvm) a PHYS32_ENTRY note is enough; otherwise LOADER must start with "generic" or GUEST_OS with
  "linux", and XEN_VERSION must start with "xen-3.0".
- `elf_xen_addr_calc_check`: VIRT_BASE/PADDR_OFFSET defaults, the kernel's virtual range from the PT_LOAD
  segments (libelf-loader.c `elf_parse_binary`), the entry inside it, the P2M base outside it.
- tools/libs/guest/xg_dom_elfloader.c: a kernel that requires the `dom0` feature cannot be a domU
  (`xc_dom_parse_elf_kernel`), and `xc_dom_guest_type` accepts only EM_386/EM_X86_64 as PV, and a PVH
  (HVM container) guest only with PHYS32_ENTRY.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Protocol

from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import ELF_MAX_STRING as MAX_STRING
from pvboot.limits import KernelLimits

EM_386, EM_ARM, EM_X86_64, EM_AARCH64 = 3, 40, 62, 183
PT_LOAD, PT_NOTE = 1, 4
SHT_NOTE = 7
ET_NAMES = {0: "none", 1: "relocatable", 2: "executable", 3: "shared object", 4: "core file"}
MACHINES = {EM_386: "x86_32", EM_X86_64: "x86_64", EM_ARM: "arm32", EM_AARCH64: "arm64"}
MASK64 = (1 << 64) - 1
UNSET = MASK64  # libelf's UNSET_ADDR
UNSET32 = 0xFFFFFFFF  # libelf's UNSET_ADDR32

# XEN_ELFNOTE_* (xen/include/public/elfnote.h) -> (name, kind)
NOTE_TYPES: dict[int, tuple[str, str]] = {
    1: ("ENTRY", "int"),
    2: ("HYPERCALL_PAGE", "int"),
    3: ("VIRT_BASE", "int"),
    4: ("PADDR_OFFSET", "int"),
    5: ("XEN_VERSION", "str"),
    6: ("GUEST_OS", "str"),
    7: ("GUEST_VERSION", "str"),
    8: ("LOADER", "str"),
    9: ("PAE_MODE", "str"),
    10: ("FEATURES", "str"),
    11: ("BSD_SYMTAB", "str"),
    12: ("HV_START_LOW", "int"),
    13: ("L1_MFN_VALID", "name"),
    14: ("SUSPEND_CANCEL", "int"),
    15: ("INIT_P2M", "int"),
    16: ("MOD_START_PFN", "int"),
    17: ("SUPPORTED_FEATURES", "int"),
    18: ("PHYS32_ENTRY", "int"),
    19: ("PHYS32_RELOC", "name"),
}
# the XENFEAT_* names libelf knows (elf_xen_feature_names)
FEATURES = (
    "writable_page_tables",
    "writable_descriptor_tables",
    "auto_translated_physmap",
    "supervisor_mode_kernel",
    "pae_pgdir_above_4gb",
    "hvm_callback_vector",
    "dom0",
)


class Blob(Protocol):
    """Random reads of a (possibly decompressed) file; short at the end."""

    def read_at(self, offset: int, n: int) -> bytes: ...


class ElfError(GuestDataError):
    """The ELF is malformed in a way libelf refuses."""


@dataclass
class Elf:
    bits: int
    little: bool
    machine: int
    etype: int
    entry: int
    phoff: int
    phentsize: int
    phnum: int
    shoff: int
    shentsize: int
    shnum: int
    shstrndx: int
    loads: list[tuple[int, int]] = field(default_factory=list)  # (paddr, memsz) of loadable PT_LOADs
    note_segments: list[tuple[int, int]] = field(default_factory=list)  # (offset, filesz)

    @property
    def arch(self) -> str:
        return MACHINES.get(self.machine, f"machine {self.machine}")

    def u(self, fmt: str, data: bytes, offset: int = 0) -> tuple[int, ...]:
        return struct.unpack_from(("<" if self.little else ">") + fmt, data, offset)


@dataclass
class XenParms:
    """What libelf's elf_dom_parms records about a kernel (only the fields the checks use)."""

    source: str | None = None  # PT_NOTE, SHT_NOTE, __xen_guest
    notes: dict[str, Any] = field(default_factory=dict)  # note name -> value, for reports
    loader: str = ""
    guest_os: str = ""
    guest_ver: str = ""
    xen_ver: str = ""
    pae: str = "no"
    bsd_symtab: bool = False
    virt_base: int = UNSET
    virt_entry: int = UNSET
    virt_hypercall: int = UNSET
    p2m_base: int = UNSET
    paddr_offset: int = UNSET
    phys_entry: int = UNSET32
    required: set[str] = field(default_factory=set)
    supported: set[str] = field(default_factory=set)
    invalid: str | None = None  # why elf_xen_parse itself fails (an unknown required feature)


def parse_elf(blob: Blob, size: int | None, limits: KernelLimits) -> Elf:
    """The ELF header and program headers, with libelf's elf_init bounds checks."""
    ident = blob.read_at(0, 64)
    if len(ident) < 52 or ident[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    bits = 64 if ident[4] == 2 else 32
    little = ident[5] != 2
    if bits == 64 and len(ident) < 64:
        raise ElfError("ELF header ends early")
    e = ("<" if little else ">") + ("HHIQQQIHHHHHH" if bits == 64 else "HHIIIIIHHHHHH")
    etype, machine, _ver, entry, phoff, shoff, _flags, _eh, phentsize, phnum, shentsize, shnum, shstrndx = (
        struct.unpack_from(e, ident, 16)
    )
    elf = Elf(bits, little, machine, etype, entry, phoff, phentsize, phnum, shoff, shentsize, shnum, shstrndx)
    if size is not None:
        if phoff + phentsize * phnum > size:
            raise ElfError(f"program headers overflow the file (offset {phoff:#x} > size {size:#x})")
        if shoff + shentsize * shnum > size:
            raise ElfError(f"section headers overflow the file (offset {shoff:#x} > size {size:#x})")
    if phnum > limits.max_headers:
        raise LimitError(f"ELF with {phnum} program headers (limit {limits.max_headers})")
    min_ent = 56 if bits == 64 else 32
    if phnum and not min_ent <= phentsize <= 256:
        raise ElfError(f"program header entries of {phentsize} bytes")
    table = blob.read_at(phoff, phentsize * phnum) if phnum else b""
    for i in range(phnum):
        raw = table[i * phentsize : i * phentsize + min_ent]
        if len(raw) < min_ent:
            break  # libelf: an insane count stops the walk
        if bits == 64:
            ptype, pflags, poff, _va, paddr, filesz, memsz, _al = elf.u("IIQQQQQQ", raw)
        else:
            ptype, poff, _va, paddr, filesz, memsz, pflags, _al = elf.u("IIIIIIII", raw)
        if ptype == PT_LOAD and pflags & 7:
            elf.loads.append((paddr, memsz))
        elif ptype == PT_NOTE and poff != 0:  # "some versions of binutils" write 0: libelf skips those
            elf.note_segments.append((poff, filesz))
    return elf


def _cstring(data: bytes, offset: int) -> str | None:
    """A NUL-terminated string at `offset` (None when unterminated, as libelf's elf_strval)."""
    end = data.find(b"\0", offset, offset + MAX_STRING + 1)
    if end < 0:
        return None
    return data[offset:end].decode("latin-1")


def _numeric(elf: Elf, desc: bytes) -> int:
    fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}.get(len(desc))
    return elf.u(fmt, desc)[0] if fmt else 0


def parse_features(text: str, parms: XenParms) -> bool:
    """elf_xen_parse_features: '|'-separated names, '!' marks required; False on an unknown required one."""
    pos = 0
    while pos < len(text):
        token = ""
        length = 0
        while True:
            if length >= 63 or pos + length >= len(text):
                break
            ch = text[pos + length]
            if ch == "|":
                length += 1
                break
            token += ch
            length += 1
        pos += max(length, 1)
        if token.startswith("!"):
            if token[1:] in FEATURES:
                parms.required.add(token[1:])
                parms.supported.add(token[1:])
            else:
                parms.invalid = f"it requires the Xen feature '{token[1:]}', which Xen does not know"
                return False
        elif token in FEATURES:
            parms.supported.add(token)
    return True


def _apply_note(elf: Elf, parms: XenParms, ntype: int, desc: bytes) -> bool:
    """elf_xen_parse_note for one Xen note; False when the note makes the parse fail."""
    name, kind = NOTE_TYPES[ntype]
    text: str | None = None
    value = 0
    if kind == "str":
        text = _cstring(desc, 0)
        if text is None:
            return True  # libelf: an unterminated string is ignored
        parms.notes[name] = text
    elif kind == "int":
        value = _numeric(elf, desc)
        parms.notes[name] = value
    else:
        parms.notes[name] = True
    if ntype == 8:
        parms.loader = text or ""
    elif ntype == 6:
        parms.guest_os = text or ""
    elif ntype == 7:
        parms.guest_ver = text or ""
    elif ntype == 5:
        parms.xen_ver = text or ""
    elif ntype == 9 and text is not None:
        if text == "yes":
            parms.pae = "extcr3"
        if "bimodal" in text:
            parms.pae = "bimodal"
    elif ntype == 11 and text == "yes":
        parms.bsd_symtab = True
    elif ntype == 3:
        parms.virt_base = value
    elif ntype == 1:
        parms.virt_entry = value
    elif ntype == 15:
        parms.p2m_base = value
    elif ntype == 4:
        parms.paddr_offset = value
    elif ntype == 2:
        parms.virt_hypercall = value
    elif ntype == 10 and text is not None:
        return parse_features(text, parms)
    elif ntype == 18:
        parms.phys_entry = value
    return True


def parse_notes(elf: Elf, data: bytes, parms: XenParms, counter: list[int], limits: KernelLimits) -> int:
    """The Xen notes in one note segment/section; returns how many, -1 when the parse fails."""
    found = 0
    pos = 0
    while pos + 12 <= len(data):
        counter[0] += 1
        if counter[0] > limits.max_notes:
            break  # libelf: "too many ELF notes", marked broken, walk stops
        namesz, descsz, ntype = elf.u("III", data, pos)
        name_at = pos + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        nxt = desc_at + ((descsz + 3) & ~3)
        if _cstring(data[name_at : name_at + max(namesz, 4)], 0) == "Xen":
            desc = data[desc_at : desc_at + descsz]
            if ntype in NOTE_TYPES and not _apply_note(elf, parms, ntype, desc):
                return -1
            found += 1
        if nxt <= pos:
            break
        pos = nxt
    return found


def _read_region(blob: Blob, offset: int, size: int, limits: KernelLimits, what: str) -> bytes:
    if size > limits.max_note_bytes:
        raise LimitError(f"{what} of {size} bytes (limit {limits.max_note_bytes})")
    return blob.read_at(offset, size)


def _sections(blob: Blob, elf: Elf, limits: KernelLimits) -> list[tuple[int, int, int, int]]:
    """(name offset, type, offset, size) of each section header (index 0 included)."""
    count = elf.shnum
    if count > limits.max_headers * 16:
        raise LimitError(f"ELF with {count} section headers (limit {limits.max_headers * 16})")
    ent = 64 if elf.bits == 64 else 40
    if count == 0 or not ent <= elf.shentsize <= 256:
        return []
    table = blob.read_at(elf.shoff, elf.shentsize * count)
    out = []
    for i in range(count):
        raw = table[i * elf.shentsize : i * elf.shentsize + ent]
        if len(raw) < ent:
            break
        if elf.bits == 64:
            name, stype, _fl, _addr, off, size = elf.u("IIQQQQ", raw)
        else:
            name, stype, _fl, _addr, off, size = elf.u("IIIIII", raw)
        out.append((name, stype, off, size))
    return out


def c_strtoull(text: str) -> int:
    """strtoull(text, NULL, 0): a leading C number (0x hex, 0 octal, decimal), 0 when none."""
    s = text.lstrip(" \t\n\r\f\v")
    neg = s.startswith("-")
    if s[:1] in "+-":
        s = s[1:]
    base = 10
    if s[:2].lower() == "0x" and len(s) > 2 and s[2].lower() in "0123456789abcdef":
        base, s = 16, s[2:]
    elif s.startswith("0"):
        base = 8
    digits = "0123456789abcdef"[:base]
    value = 0
    for ch in s.lower():
        if ch not in digits:
            break
        value = min(value * base + digits.index(ch), MASK64)
    return (-value) & MASK64 if neg else value


def parse_guest_info(text: str, parms: XenParms) -> None:
    """elf_xen_parse_guest_info: the legacy `__xen_guest` string, NAME=VALUE pairs split by ','."""
    for item in text.split(","):
        name, eq, value = item.partition("=")
        name, value = name[:31], value[:127] if eq else ""
        if not name and not value:
            continue
        parms.notes[name] = value
        if name == "LOADER":
            parms.loader = value
        elif name == "GUEST_OS":
            parms.guest_os = value
        elif name == "GUEST_VER":
            parms.guest_ver = value
        elif name == "XEN_VER":
            parms.xen_ver = value
        elif name == "PAE":
            if value == "yes[extended-cr3]":
                parms.pae = "extcr3"
            elif value.startswith("yes"):
                parms.pae = "yes"
        elif name == "BSD_SYMTAB":
            parms.bsd_symtab = True
        elif name == "VIRT_BASE":
            parms.virt_base = c_strtoull(value)
        elif name == "VIRT_ENTRY":
            parms.virt_entry = c_strtoull(value)
        elif name == "ELF_PADDR_OFFSET":
            parms.paddr_offset = c_strtoull(value)
        elif name == "HYPERCALL_PAGE":
            parms.virt_hypercall = (c_strtoull(value) << 12) & MASK64
        elif name == "FEATURES" and not parse_features(value, parms):
            return
    if parms.virt_base != UNSET and parms.virt_hypercall != UNSET:
        parms.virt_hypercall = (parms.virt_hypercall + parms.virt_base) & MASK64


class _NoteScan:
    """Xen notes read from ELF regions into one XenParms (elf_xen_parse's two passes: segments, then
    sections), sharing the note counter."""

    def __init__(self, blob: Blob, elf: Elf, limits: KernelLimits, parms: XenParms) -> None:
        self.blob, self.elf, self.limits, self.parms = blob, elf, limits, parms
        self.counter = [0]

    def regions(self, regions: list[tuple[int, int]], what: str, source: str) -> int | None:
        """How many Xen notes `regions` ((offset, size) pairs) hold; None when one ends the search."""
        found = 0
        for offset, size in regions:
            data = _read_region(self.blob, offset, size, self.limits, what)
            got = parse_notes(self.elf, data, self.parms, self.counter, self.limits)
            if got < 0:
                return None
            if got:
                self.parms.source = self.parms.source or source
            found += got
        return found


def read_xen_parms(blob: Blob, elf: Elf, limits: KernelLimits, pv: bool) -> XenParms:
    """elf_xen_parse's note search, for a PV (`pv`) or a PVH guest."""
    parms = XenParms()
    scan = _NoteScan(blob, elf, limits, parms)
    found = scan.regions(sorted(elf.note_segments), "ELF note segment", "PT_NOTE")
    if found is None or found:
        return parms
    sections = _sections(blob, elf, limits)
    notes = [(offset, size) for _name, stype, offset, size in sections[1:] if stype == SHT_NOTE]
    found = scan.regions(notes, "ELF note section", "SHT_NOTE")
    if found is None or found or not pv or not sections:
        return parms
    if not 0 < elf.shstrndx < len(sections):
        return parms
    _n, _t, str_off, str_size = sections[elf.shstrndx]
    names = blob.read_at(str_off, min(str_size, limits.max_note_bytes))
    for name_off, _stype, offset, size in sections[1:]:
        if _cstring(names, name_off) == "__xen_guest":
            data = _read_region(blob, offset, min(size, 64 << 10), limits, "__xen_guest section")
            text = _cstring(data + b"\0", 0) or ""
            parms.source = "__xen_guest"
            parse_guest_info(text, parms)
            break
    return parms


def verdict(elf: Elf, parms: XenParms, hvm: bool) -> str | None:
    """None when libxc would build this ELF as a PV (hvm=False) or PVH (hvm=True) guest, else why not."""
    if parms.invalid:
        return parms.invalid
    x86 = elf.machine in (EM_386, EM_X86_64)
    if parms.source is None:
        if x86:
            return "no Xen ELF notes (XEN_ELFNOTE_* in a PT_NOTE segment or SHT_NOTE section) and no " + (
                "__xen_guest section" if not hvm else "PHYS32_ENTRY note"
            )
        return f"an {elf.arch} ELF: Xen's ELF loader builds only x86 guests"
    if hvm:
        if parms.phys_entry == UNSET32:
            return "no XEN_ELFNOTE_PHYS32_ENTRY note (the PVH entry point)"
    else:
        if not x86:
            return f"an {elf.arch} ELF: Xen's ELF loader builds only x86 PV guests"
        if not (parms.loader.startswith("generic") or parms.guest_os.startswith("linux")):
            return (
                f"the Xen notes name neither LOADER 'generic' nor GUEST_OS 'linux' "
                f"(LOADER '{parms.loader}', GUEST_OS '{parms.guest_os}')"
            )
        if not parms.xen_ver.startswith("xen-3.0"):
            return f"XEN_VERSION is '{parms.xen_ver}', not 'xen-3.0'"
        if elf.machine == EM_386 and parms.pae == "no":
            return "a 32-bit kernel without PAE: a 64-bit Xen runs only PAE 32-bit PV guests"
    problem = _address_check(elf, parms, hvm)
    if problem:
        return problem
    if "dom0" in parms.required:
        return "it requires the 'dom0' feature: it cannot run unprivileged (as a domU)"
    return None


def _address_check(elf: Elf, parms: XenParms, hvm: bool) -> str | None:
    """elf_xen_addr_calc_check on a copy of the values (the two verdicts must not share defaults)."""
    virt_base, paddr_offset, entry = parms.virt_base, parms.paddr_offset, parms.virt_entry
    if paddr_offset != UNSET and virt_base == UNSET and not hvm:
        return "ELF_PADDR_OFFSET is set but VIRT_BASE is not"
    if virt_base == UNSET or hvm:
        virt_base = 0
    if paddr_offset == UNSET or hvm:
        paddr_offset = 0 if (parms.source != "__xen_guest" or hvm) else virt_base
    offset = (virt_base - paddr_offset) & MASK64
    pstart = min((p for p, _ in elf.loads), default=MASK64)
    pend = max(((p + m) & MASK64 for p, m in elf.loads), default=0)
    kstart, kend = (pstart + offset) & MASK64, (pend + offset) & MASK64
    if entry == UNSET or hvm:
        entry = parms.phys_entry if (hvm and parms.phys_entry != UNSET32) else elf.entry
    if not elf.loads:
        return "no loadable PT_LOAD segment"
    if kstart > kend or entry < kstart or (entry > kend and not parms.bsd_symtab) or virt_base > kstart:
        return (
            f"the entry point {entry:#x} or the kernel's range {kstart:#x}-{kend:#x} is out of bounds "
            f"(VIRT_BASE {virt_base:#x})"
        )
    if parms.p2m_base != UNSET and kstart <= parms.p2m_base < kend:
        return f"INIT_P2M {parms.p2m_base:#x} lies inside the kernel"
    return None


def describe(parms: XenParms) -> dict[str, Any]:
    """The Xen notes as JSON-able values (integers as hex strings: JSON loses 64-bit precision)."""
    out: dict[str, Any] = {}
    for name, value in parms.notes.items():
        out[name] = f"{value:#x}" if isinstance(value, int) and not isinstance(value, bool) else value
    return out
