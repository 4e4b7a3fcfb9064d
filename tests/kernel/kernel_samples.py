"""Small kernels built byte by byte: ELF images with chosen Xen notes, x86 bzImages around them, arm
headers, newc cpio archives. Each builder follows the published format (ELF gABI, Linux's x86 boot
protocol and arm64 booting.rst, xen/include/public/elfnote.h), so the checker is tested against the
formats, not against itself."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import struct
import subprocess
from dataclasses import dataclass, field

EM_386, EM_X86_64, EM_AARCH64 = 3, 62, 183
VIRT_BASE = 0xFFFFFFFF80000000
PADDR = 0x1000000
ENTRY = VIRT_BASE + PADDR + 0x100
PHYS_ENTRY = PADDR + 0x200
BANNER = b"Linux version 6.6.6-pvtest (builder@pvboot) (gcc) #1 SMP PREEMPT_DYNAMIC\n\0"

# XEN_ELFNOTE_* numbers
ENTRY_NOTE, HYPERCALL_PAGE, VIRT_BASE_NOTE, PADDR_OFFSET, XEN_VERSION, GUEST_OS = 1, 2, 3, 4, 5, 6
GUEST_VERSION, LOADER, PAE_MODE, FEATURES, INIT_P2M, PHYS32_ENTRY = 7, 8, 9, 10, 15, 18


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def pv_notes(
    *, pv: bool = True, pvh: bool = True, features: str = "!writable_page_tables|pae_pgdir_above_4gb"
):
    """The Xen notes a Linux x86_64 kernel built with CONFIG_XEN_PV / CONFIG_XEN_PVH carries."""
    notes: list[tuple[bytes, int, bytes]] = []
    if pv:
        notes += [
            (b"Xen", GUEST_OS, cstr("linux")),
            (b"Xen", GUEST_VERSION, cstr("2.6")),
            (b"Xen", XEN_VERSION, cstr("xen-3.0")),
            (b"Xen", VIRT_BASE_NOTE, u64(VIRT_BASE)),
            (b"Xen", ENTRY_NOTE, u64(ENTRY)),
            (b"Xen", HYPERCALL_PAGE, u64(ENTRY + 0x1000)),
            (b"Xen", FEATURES, cstr(features)),
            (b"Xen", PAE_MODE, cstr("yes")),
            (b"Xen", LOADER, cstr("generic")),
            (b"Xen", PADDR_OFFSET, u64(0)),
        ]
    if pvh:
        notes.append((b"Xen", PHYS32_ENTRY, u32(PHYS_ENTRY)))
    return notes


@dataclass
class ElfSpec:
    bits: int = 64
    machine: int = EM_X86_64
    etype: int = 2  # ET_EXEC
    entry: int = ENTRY
    notes: list[tuple[bytes, int, bytes]] = field(default_factory=pv_notes)
    notes_in: str = "segment"  # segment (PT_NOTE + SHT_NOTE), section (SHT_NOTE only), none
    xen_guest: bytes | None = None  # the legacy __xen_guest section's text
    loads: list[tuple[int, int, int]] = field(default_factory=lambda: [(VIRT_BASE + PADDR, PADDR, 0x200000)])
    body: bytes = BANNER
    pad: int = 0  # zero bytes between the headers and the notes (to push them far into the file)


def _note_blob(notes: list[tuple[bytes, int, bytes]]) -> bytes:
    out = b""
    for name, ntype, desc in notes:
        namez = name + b"\0"
        out += struct.pack("<III", len(namez), len(desc), ntype)
        out += namez + b"\0" * (-len(namez) % 4) + desc + b"\0" * (-len(desc) % 4)
    return out


def make_elf(spec: ElfSpec | None = None) -> bytes:
    """A little-endian ELF executable: headers, [padding], notes, body, __xen_guest, shstrtab, shdrs."""
    spec = spec or ElfSpec()
    b64 = spec.bits == 64
    ehsize, phent, shent = (64, 56, 64) if b64 else (52, 32, 40)
    notes = _note_blob(spec.notes) if spec.notes_in != "none" else b""
    phdrs: list[
        tuple[int, int, int, int, int, int, int]
    ] = []  # type, flags, offset, vaddr, paddr, filesz, memsz
    nph = len(spec.loads) + (1 if notes and spec.notes_in == "segment" else 0)
    data_start = ehsize + nph * phent + spec.pad
    notes_off = data_start
    body_off = notes_off + len(notes)
    guest_off = body_off + len(spec.body)
    guest = (spec.xen_guest + b"\0") if spec.xen_guest is not None else b""
    names = [b"", b".text", b".notes", b"__xen_guest", b".shstrtab"]
    shstr = b"\0".join(names) + b"\0"
    name_off = {n: shstr.index(n + b"\0") if n else 0 for n in names}
    shstr_off = guest_off + len(guest)
    shoff = (shstr_off + len(shstr) + 7) & ~7
    for vaddr, paddr, memsz in spec.loads:
        phdrs.append((1, 5, body_off, vaddr, paddr, len(spec.body), memsz))
    if notes and spec.notes_in == "segment":
        phdrs.append((4, 4, notes_off, 0, 0, len(notes), len(notes)))
    sections = [(0, 0, 0, 0)]  # (name, type, offset, size)
    sections.append((name_off[b".text"], 1, body_off, len(spec.body)))
    if notes:
        sections.append((name_off[b".notes"], 7, notes_off, len(notes)))
    if guest:
        sections.append((name_off[b"__xen_guest"], 1, guest_off, len(guest)))
    sections.append((name_off[b".shstrtab"], 3, shstr_off, len(shstr)))
    shstrndx = len(sections) - 1
    ident = b"\x7fELF" + bytes([2 if b64 else 1, 1, 1, 0]) + b"\0" * 8
    if b64:
        ehdr = ident + struct.pack(
            "<HHIQQQIHHHHHH", spec.etype, spec.machine, 1, spec.entry, ehsize, shoff, 0, ehsize, phent, nph,
            shent, len(sections), shstrndx,
        )  # fmt: skip
    else:
        ehdr = ident + struct.pack(
            "<HHIIIIIHHHHHH", spec.etype, spec.machine, 1, spec.entry & 0xFFFFFFFF, ehsize, shoff, 0, ehsize,
            phent, nph, shent, len(sections), shstrndx,
        )  # fmt: skip
    out = bytearray(ehdr)
    for ptype, flags, off, vaddr, paddr, filesz, memsz in phdrs:
        if b64:
            out += struct.pack("<IIQQQQQQ", ptype, flags, off, vaddr, paddr, filesz, memsz, 0x1000)
        else:
            out += struct.pack(
                "<IIIIIIII", ptype, off, vaddr & 0xFFFFFFFF, paddr, filesz, memsz, flags, 0x1000
            )
    out += b"\0" * spec.pad
    out += notes + spec.body + guest + shstr
    out += b"\0" * (shoff - len(out))
    for name, stype, off, size in sections:
        if b64:
            out += struct.pack("<IIQQQQIIQQ", name, stype, 0, 0, off, size, 0, 0, 1, 0)
        else:
            out += struct.pack("<IIIIIIIIII", name, stype, 0, 0, off, size, 0, 0, 1, 0)
    return bytes(out)


def have_tool(name: str) -> bool:
    return shutil.which(name) is not None


def compress(data: bytes, codec: str, fast: bool = False) -> bytes:
    """`data` compressed in the container Linux's scripts/Makefile.lib writes for a kernel payload (no
    size trailer); `fast` trades ratio for speed (the format is the same)."""
    if codec == "gzip":
        return gzip.compress(data, 1 if fast else 9, mtime=0)
    if codec == "bzip2":
        return bz2.compress(data, 1 if fast else 9)
    if codec == "lzma":
        return lzma.compress(data, lzma.FORMAT_ALONE, preset=0 if fast else 6)
    if codec == "xz":
        return lzma.compress(data, lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, preset=0 if fast else 6)
    if codec == "zstd":
        from backports import zstd

        return zstd.compress(data, 1 if fast else 19)
    if codec == "lz4":
        level = "-1" if fast else "-9"
        return subprocess.run(["lz4", "-l", level, "-c"], input=data, capture_output=True, check=True).stdout
    if codec == "lzo":
        level = "-1" if fast else "-9"
        return subprocess.run(["lzop", level, "-c"], input=data, capture_output=True, check=True).stdout
    raise ValueError(codec)


CODEC_TOOLS = {"lz4": "lz4", "lzo": "lzop"}


def make_bzimage(
    payload: bytes,
    *,
    version: int = 0x020F,
    kernel_version: str = "6.6.6-pvtest (builder@pvboot) #1 SMP",
    setup_sects: int = 4,
    decompressor: bytes = b"\x90" * 256,
) -> bytes:
    """An x86 bzImage (boot protocol `version`): setup sectors with the header, then the protected-mode
    part holding `payload` (already compressed, size trailer included) after a stand-in decompressor."""
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1F1] = setup_sects
    setup[0x1FE:0x200] = b"\x55\xaa"
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    kver_at = 0x300
    text = kernel_version.encode() + b"\0"
    setup[kver_at : kver_at + len(text)] = text
    struct.pack_into("<H", setup, 0x20E, kver_at - 0x200)
    setup[0x211] = 0x01  # loadflags: LOADED_HIGH
    struct.pack_into("<II", setup, 0x248, len(decompressor), len(payload))
    return bytes(setup) + decompressor + payload + b"\xcc" * 64


def bzimage_of(elf: bytes, codec: str = "gzip", fast: bool = False, **kwargs: object) -> bytes:
    """`elf` as the payload of a bzImage, compressed with `codec`, with Linux's size trailer."""
    return make_bzimage(compress(elf, codec, fast) + struct.pack("<I", len(elf)), **kwargs)  # type: ignore[arg-type]


def arm64_image(size: int = 1 << 16, *, banner: bytes = BANNER, flags: int = 0b1010) -> bytes:
    """An arm64 Image header (Documentation/arch/arm64/booting.rst) and a body holding the banner."""
    head = struct.pack("<IIQQQQQQII", 0x91005A4D, 0x14000000, 0, size, flags, 0, 0, 0, 0x644D5241, 0)
    body = bytearray(size - len(head))
    body[0x1000 : 0x1000 + len(banner)] = banner
    return head + bytes(body)


def arm_zimage(size: int = 4096, big_endian: bool = False) -> bytes:
    """An arm (32-bit) zImage: the magic at 0x24, start/end at 0x28/0x2c."""
    out = bytearray(size)
    struct.pack_into(">I" if big_endian else "<I", out, 0x24, 0x016F2818)
    struct.pack_into("<II", out, 0x28, 0, size)
    return bytes(out)


def newc(files: dict[str, bytes]) -> bytes:
    """A newc cpio archive of regular files, with the trailer (as `cpio -H newc -o` writes it)."""
    out = b""
    for ino, (name, data) in enumerate([*files.items(), ("TRAILER!!!", b"")], start=1):
        namez = name.encode() + b"\0"
        mode = 0o100644 if name != "TRAILER!!!" else 0
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(namez), 0]
        header = b"070701" + b"".join(b"%08X" % v for v in fields)
        out += header + namez + b"\0" * (-(len(header) + len(namez)) % 4)
        out += data + b"\0" * (-len(data) % 4)
    return out + b"\0" * (-len(out) % 512)
