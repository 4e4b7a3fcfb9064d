"""What a kernel file is, and whether Xen's domain builder (libxc, driven by libxl) would start it.

Formats, as tools/libs/guest/ probes them after `xc_dom_kernel_file` gunzips a gzip'd file whole
(xg_dom_core.c `xc_dom_try_gunzip`, refused above XC_DOM_DECOMPRESS_MAX, 1 GiB):
- x86 bzImage (xg_dom_bzimageloader.c): "HdrS" at 0x202, boot protocol >= 2.08, the payload at
  (setup_sects + 1) * 512 + payload_offset, payload_length bytes, compressed with one of seven formats;
  inside it, the ELF vmlinux, judged as below.
- ELF (xg_dom_elfloader.c + libelf): see `pvboot.kernel.elfxen`.
- arm64 Image (xg_dom_armzimageloader.c): code0 = 0x14000008 or "ARM\\x64" at 0x38; copied as is.
- arm zImage: 0x016f2818 at 0x24; copied as is.
On Arm, libxl builds every guest as type 'pvh' and Xen boots the Image/zImage directly, so such a kernel
counts as `pvh`; on x86 `pv` and `pvh` say whether libxl's type='pv' / type='pvh' guest could start it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pvboot.kernel.elfxen as elfxen
from pvboot.errors import GuestDataError, LimitError
from pvboot.kernel.decompress import BannerScanner, Unpacked, detect, printable
from pvboot.limits import KernelLimits, Limits

XC_DOM_DECOMPRESS_MAX = 1 << 30
ARM64_MAGIC_V0 = 0x14000008
ARM64_MAGIC = 0x644D5241  # "ARM\x64"
ZIMAGE_MAGIC = 0x016F2818
HOST_ARCHES: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86_64", "x86_32"),
    "amd64": ("x86_64", "x86_32"),
    "aarch64": ("arm64", "arm32"),
    "arm64": ("arm64", "arm32"),
    "armv7l": ("arm32",),
}


@dataclass
class KernelInfo:
    """The verdict on one kernel file. `problems` is non-empty exactly when it cannot boot at all."""

    format: str = "unknown"  # bzImage, elf, arm64-image, arm-zimage, pe, compressed, unknown, empty
    arch: str | None = None  # x86_64, x86_32, arm64, arm32
    pv: bool = False  # libxl type='pv' (x86) could start it
    pvh: bool = False  # libxl type='pvh' could start it (every Arm guest is 'pvh')
    version: str | None = None  # the release, "6.1.0-18-amd64"
    banner: str | None = None  # the whole version string, as the bzImage header or "Linux version" has it
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    compression: str | None = None  # the bzImage payload's format, or the whole file's (Image.gz)
    boot_protocol: str | None = None  # x86 boot protocol, "2.15"
    pv_reason: str | None = None  # why not pv (None when pv)
    pvh_reason: str | None = None  # why not pvh (None when pvh)
    xen_notes: dict[str, Any] = field(default_factory=dict)  # Xen ELF note name -> value
    notes_source: str | None = None  # PT_NOTE, SHT_NOTE, __xen_guest
    decoded_bytes: int = 0  # decompressed to decide
    remembered: bool = False  # the verdict of an earlier boot of the same bytes (kernel/verdicts.py)

    @property
    def bootable(self) -> bool:
        return self.pv or self.pvh

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "arch": self.arch,
            "pv": self.pv,
            "pvh": self.pvh,
            "bootable": self.bootable,
            "version": self.version,
            "banner": self.banner,
            "compression": self.compression,
            "boot_protocol": self.boot_protocol,
            "pv_reason": self.pv_reason,
            "pvh_reason": self.pvh_reason,
            "xen_notes": dict(self.xen_notes),
            "notes_source": self.notes_source,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "remembered": self.remembered,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> KernelInfo:
        """A verdict as to_json() wrote it (kernel/verdicts.py keeps positive ones), marked remembered."""

        def text(key: str) -> str | None:
            value = doc.get(key)
            return value if isinstance(value, str) else None

        notes = doc.get("xen_notes")
        warnings = doc.get("warnings")
        return cls(
            format=text("format") or "unknown",
            arch=text("arch"),
            pv=doc.get("pv") is True,
            pvh=doc.get("pvh") is True,
            version=text("version"),
            banner=text("banner"),
            warnings=[w for w in warnings if isinstance(w, str)] if isinstance(warnings, list) else [],
            compression=text("compression"),
            boot_protocol=text("boot_protocol"),
            pv_reason=text("pv_reason"),
            pvh_reason=text("pvh_reason"),
            xen_notes=dict(notes) if isinstance(notes, dict) else {},
            notes_source=text("notes_source"),
            remembered=True,
        )


class UnreadableKernel(GuestDataError):
    """The guest's filesystem cannot deliver the kernel's bytes: a disk error, not a kernel problem
    (--no-kernel-check would not help)."""


class _FileBlob:
    """Random reads of a guest file stream (seek + read, short at the end)."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream = stream
        self.size = size

    def read_at(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        if n == 0:
            return b""
        try:
            return self._read(offset, n)
        except UnreadableKernel:
            raise
        except GuestDataError as exc:
            raise UnreadableKernel(str(exc)) from None

    def _read(self, offset: int, n: int) -> bytes:
        self.stream.seek(offset)
        parts = []
        while n > 0:
            data = self.stream.read(min(n, 1 << 20))
            if not data:
                break
            data = data[:n]
            parts.append(data)
            n -= len(data)
        return b"".join(parts)


def _set_banner(info: KernelInfo, banner: str | None) -> None:
    if banner:
        info.banner = banner
        info.version = banner.split()[0] if banner.split() else None


def _scan_version(blob: _FileBlob | Unpacked, limits: KernelLimits) -> str | None:
    """The first linux_banner in the first `version_scan` bytes (of the first pass, when decoding)."""
    if isinstance(blob, Unpacked):
        if blob.banner is None or blob.passes > 1:
            return None
        if blob.banner.found is None:
            blob.drain(max(0, limits.version_scan - blob.pos))
        return blob.banner.found
    scanner = BannerScanner()
    pos = 0
    while pos < min(blob.size, limits.version_scan) and scanner.found is None:
        chunk = blob.read_at(pos, 1 << 20)
        if not chunk:
            break
        scanner.feed(chunk)
        pos += len(chunk)
    return scanner.found


def check_kernel(
    stream: BinaryIO, size: int, limits: Limits | KernelLimits | None = None, host_arch: str | None = None
) -> KernelInfo:
    """Identify the kernel in `stream` (`size` bytes) and judge it as libxc would.

    Raises only PvbootError subclasses: LimitError when a bound stops the check (the message names it),
    GuestDataError when the file cannot be read; a kernel that is merely unbootable is a KernelInfo with
    `problems`. `host_arch` (default: this machine's) only adds a warning when the kernel's differs."""
    kl = KernelLimits.from_limits(limits)
    info = KernelInfo()
    blob = _FileBlob(stream, size)
    try:
        _identify(blob, size, kl, info, nested=False)
    except (LimitError, UnreadableKernel):
        raise
    except GuestDataError as exc:
        info.problems.append(str(exc))
    except (struct.error, ValueError, IndexError, OverflowError, UnicodeError) as exc:
        info.problems.append(f"malformed: {exc}")
    except MemoryError:
        raise LimitError("checking the kernel ran out of memory (the child's address-space limit)") from None
    except OSError as exc:
        raise GuestDataError(f"cannot read the kernel: {exc.strerror or exc}") from None
    _conclude(info, host_arch if host_arch is not None else os.uname().machine)
    return info


def _conclude(info: KernelInfo, host_arch: str) -> None:
    if not info.bootable and not info.problems:
        if info.pv_reason and info.pvh_reason and info.pv_reason != info.pvh_reason:
            info.problems.append(f"as a PV guest: {info.pv_reason}; as a PVH guest: {info.pvh_reason}")
        else:
            info.problems.append(info.pv_reason or info.pvh_reason or "Xen cannot load it")
    if info.problems:
        info.pv = info.pvh = False
    host = HOST_ARCHES.get(host_arch.lower())
    if info.arch and host and info.arch not in host:
        info.warnings.append(
            f"an {info.arch} kernel on an {host_arch} host: only an {info.arch} Xen can run it"
        )


def _identify(
    blob: _FileBlob | Unpacked, size: int, kl: KernelLimits, info: KernelInfo, nested: bool
) -> None:
    if size <= 0:
        info.format = "empty"
        info.problems.append("the file is empty")
        return
    head = blob.read_at(0, 4096)
    if len(head) >= 0x250 and head[0x202:0x206] == b"HdrS":
        info.format = "bzImage"
        _bzimage(blob, size, head, kl, info)
    elif head[:4] == b"\x7fELF":
        info.format = "elf"
        _elf(blob, size, kl, info)
    elif len(head) >= 64 and (
        struct.unpack_from("<I", head, 0)[0] == ARM64_MAGIC_V0
        or struct.unpack_from("<I", head, 0x38)[0] == ARM64_MAGIC
    ):
        info.format = "arm64-image"
        _arm64(blob, head, kl, info)
    elif len(head) >= 0x30 and struct.unpack_from("<I", head, 0x24)[0] in (ZIMAGE_MAGIC, 0x18286F01):
        info.format = "arm-zimage"
        info.arch = "arm32"
        if struct.unpack_from("<I", head, 0x24)[0] != ZIMAGE_MAGIC:
            info.problems.append("a big-endian arm zImage: Xen's loader reads the zImage magic little-endian")
        else:
            info.pvh = True
            info.pv_reason = "Arm has no PV guests: libxl builds every Arm guest as type 'pvh'"
    elif head[:2] == b"\x1f\x8b" and not nested:
        _gzipped(blob, size, kl, info)
    elif detect(head) is not None:
        info.format = "compressed"
        info.compression = detect(head)
        info.problems.append(
            f"a {info.compression}-compressed file: Xen's domain builder decompresses only gzip'd kernels"
        )
    elif head[:2] == b"MZ":
        info.format = "pe"
        info.problems.append(
            "a PE/COFF (EFI) executable without a Linux boot header (a unified kernel image or an EFI "
            "application?): Xen's domain builder cannot load it"
        )
    else:
        shown = printable(head[:16]) if head[:16].isascii() else head[:8].hex(" ")
        info.problems.append(
            "not a kernel Xen can load: neither an x86 bzImage, an ELF, an arm64 Image nor an arm zImage "
            f"(it starts with {shown!r})"
        )


def _gzipped(blob: _FileBlob | Unpacked, size: int, kl: KernelLimits, info: KernelInfo) -> None:
    """A whole gzip'd file: libxc gunzips it (xc_dom_try_gunzip) and probes what comes out."""
    info.compression = "gzip"
    assert isinstance(blob, _FileBlob)
    if size < 6:
        info.problems.append("a gzip file too short to hold a kernel")
        return
    declared = struct.unpack("<I", blob.read_at(size - 4, 4))[0]
    if declared > XC_DOM_DECOMPRESS_MAX:
        info.problems.append(f"a gzip file declaring {declared} bytes: libxc does not decompress over 1 GiB")
        return
    unpacked = Unpacked(blob.stream, 0, size, "gzip", kl, "gzip-compressed kernel")
    unpacked.banner = BannerScanner()
    try:
        _identify(unpacked, declared or kl.max_decompressed, kl, info, nested=True)
    finally:
        info.decoded_bytes += unpacked.decoded
    info.compression = "gzip"


def _bzimage(blob: _FileBlob | Unpacked, size: int, head: bytes, kl: KernelLimits, info: KernelInfo) -> None:
    setup_sects = head[0x1F1]
    version, _rm, _start_sys, kver = struct.unpack_from("<HIHH", head, 0x206)
    info.boot_protocol = f"{version >> 8}.{version & 0xFF:02d}"
    if kver and version >= 0x200:
        _set_banner(info, printable(blob.read_at(kver + 0x200, 256).split(b"\0")[0]))
    if version < 0x208:
        info.problems.append(
            f"boot protocol {info.boot_protocol}: Xen's bzImage loader needs 2.08 or later (an ELF payload)"
        )
        return
    payload_offset, payload_length = struct.unpack_from("<II", head, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    if start >= size or start + payload_length > size:
        info.problems.append(
            f"the bzImage payload ({payload_length} bytes at {start}) lies outside the {size}-byte file"
        )
        return
    codec = detect(blob.read_at(start, 8))
    if codec is None:
        info.problems.append(
            f"the bzImage payload's compression is unknown (starts with {blob.read_at(start, 4).hex(' ')})"
        )
        return
    info.compression = codec
    declared = (
        struct.unpack("<I", blob.read_at(start + payload_length - 4, 4))[0] if payload_length >= 8 else 0
    )
    if declared > XC_DOM_DECOMPRESS_MAX:
        info.problems.append(f"the payload declares {declared} decompressed bytes, over libxc's 1 GiB")
        return
    source = blob.stream if isinstance(blob, _FileBlob) else None
    if source is None:
        info.problems.append(
            "a gzip'd bzImage: not a layout Linux produces, and pvboot does not check it (--no-kernel-check)"
        )
        return
    unpacked = Unpacked(source, start, payload_length, codec, kl, f"the bzImage's {codec} payload")
    try:
        if unpacked.read_at(0, 4) != b"\x7fELF":
            info.problems.append("the bzImage payload is not an ELF vmlinux, which Xen's loader needs")
            return
        _elf(unpacked, declared or None, kl, info)
    finally:
        info.decoded_bytes += unpacked.decoded


def _elf(blob: _FileBlob | Unpacked, size: int | None, kl: KernelLimits, info: KernelInfo) -> None:
    elf = elfxen.parse_elf(blob, size, kl)
    info.arch = elf.arch
    parms = elfxen.read_xen_parms(blob, elf, kl, pv=True)
    pvh_parms = parms if parms.source != "__xen_guest" else elfxen.XenParms()
    info.pv_reason = elfxen.verdict(elf, parms, hvm=False)
    info.pvh_reason = elfxen.verdict(elf, pvh_parms, hvm=True)
    info.pv, info.pvh = info.pv_reason is None, info.pvh_reason is None
    info.xen_notes = elfxen.describe(parms)
    info.notes_source = parms.source
    if parms.source is None and elf.machine in (elfxen.EM_386, elfxen.EM_X86_64):
        kind = elfxen.ET_NAMES.get(elf.etype, f"type {elf.etype}")
        info.problems.append(
            f"an {elf.arch} ELF {kind} without Xen ELF notes (no XEN_ELFNOTE_* in a PT_NOTE segment or "
            "SHT_NOTE section, no __xen_guest section): not a kernel built for Xen (CONFIG_XEN_PV/XEN_PVH)"
        )
    if info.pv and elf.machine == elfxen.EM_386:
        info.warnings.append("a 32-bit PV kernel: it needs a Xen built with CONFIG_PV32")
    if info.version is None and (info.pv or info.pvh):
        _set_banner(info, _scan_version(blob, kl))


def _arm64(blob: _FileBlob | Unpacked, head: bytes, kl: KernelLimits, info: KernelInfo) -> None:
    info.arch = "arm64"
    _code0, _code1, text_offset, image_size, flags = struct.unpack_from("<IIQQQ", head, 0)
    if flags & 1:
        info.warnings.append("a big-endian arm64 kernel")
    if text_offset >= 1 << 40:
        info.problems.append(f"an arm64 Image with an absurd text_offset {text_offset:#x}")
        return
    info.pvh = True
    info.pv_reason = "Arm has no PV guests: libxl builds every Arm guest as type 'pvh'"
    _ = image_size
    _set_banner(info, _scan_version(blob, kl))
