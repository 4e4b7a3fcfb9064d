"""check_kernel: real Debian kernels, every payload compression, and the libelf rules one by one."""

from __future__ import annotations

import gzip
import io
import lzma
import random
import shutil
import struct
from pathlib import Path

import pytest
from kernel_samples import (
    EM_386,
    EM_AARCH64,
    FEATURES,
    GUEST_OS,
    INIT_P2M,
    LOADER,
    PAE_MODE,
    PHYS32_ENTRY,
    VIRT_BASE_NOTE,
    XEN_VERSION,
    ElfSpec,
    arm64_image,
    arm_zimage,
    bzimage_of,
    compress,
    cstr,
    have_tool,
    make_bzimage,
    make_elf,
    pv_notes,
    u32,
    u64,
)

from pvboot.errors import LimitError, PvbootError
from pvboot.kernel import KernelInfo, KernelLimits, check_kernel
from pvboot.kernel.decompress import MAGICS

CODECS = [name for name, _ in MAGICS]


def check(data: bytes, limits: KernelLimits | None = None, host: str = "x86_64") -> KernelInfo:
    return check_kernel(io.BytesIO(data), len(data), limits, host_arch=host)


def check_file(path: Path) -> KernelInfo:
    with open(path, "rb") as fh:
        return check_kernel(fh, path.stat().st_size, None, host_arch="x86_64")


# --- real kernels ------------------------------------------------------------------------------------


def test_debian_amd64_bzimage_boots_pv_and_pvh(amd64_kernel):
    info = check_file(amd64_kernel.image)
    assert info.format == "bzImage"
    assert info.arch == "x86_64"
    assert info.pv and info.pvh and info.bootable
    assert info.problems == [] and info.warnings == []
    assert info.version == amd64_kernel.version
    assert info.notes_source == "PT_NOTE"
    assert info.xen_notes["GUEST_OS"] == "linux" and info.xen_notes["XEN_VERSION"] == "xen-3.0"
    assert "PHYS32_ENTRY" in info.xen_notes
    assert info.compression in CODECS
    assert info.boot_protocol is not None and info.boot_protocol >= "2.08"
    assert 0 < info.decoded_bytes <= KernelLimits().max_decompressed


def _payload(image: bytes) -> bytes:
    start = (image[0x1F1] + 1) * 512 + struct.unpack_from("<I", image, 0x248)[0]
    return image[start : start + struct.unpack_from("<I", image, 0x24C)[0]]


@pytest.fixture(scope="module")
def vmlinux(amd64_kernel) -> bytes:
    """The ELF inside the Debian bzImage, decompressed with the reference decoder of its format."""
    payload = _payload(amd64_kernel.image.read_bytes())
    info = check_file(amd64_kernel.image)
    if info.compression == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(payload)
    if info.compression == "gzip":
        return gzip.decompress(payload[:-4])
    pytest.skip(f"the host kernel's payload is {info.compression}")


def test_debian_vmlinux_elf_and_gzipped_elf(amd64_kernel, vmlinux):
    info = check(vmlinux)
    assert (info.format, info.compression, info.pv, info.pvh) == ("elf", None, True, True)
    assert info.version == amd64_kernel.version  # found by the "Linux version" scan
    packed = gzip.compress(vmlinux, 1, mtime=0)  # as SUSE's /boot/vmlinux-*.gz: libxc gunzips it whole
    info = check(packed)
    assert (info.format, info.compression, info.pv, info.pvh) == ("elf", "gzip", True, True)
    assert info.version == amd64_kernel.version


@pytest.mark.parametrize("codec", ["gzip", "zstd", "lz4", "lzo"])
def test_debian_vmlinux_repacked_with_each_fast_codec(vmlinux, codec):
    if codec in ("lz4", "lzo") and not have_tool("lz4" if codec == "lz4" else "lzop"):
        pytest.skip(f"needs the {codec} command")
    image = bzimage_of(vmlinux, codec, fast=True)
    info = check(image)
    assert (info.compression, info.pv, info.pvh, info.version) == (codec, True, True, "6.6.6-pvtest")


def test_debian_arm64_image_and_image_gz(arm64_kernel):
    data = arm64_kernel.image.read_bytes()
    info = check(data, host="aarch64")
    assert (info.format, info.arch, info.pv, info.pvh) == ("arm64-image", "arm64", False, True)
    assert info.version == arm64_kernel.version
    assert info.warnings == [] and info.problems == []
    info = check(gzip.compress(data, 1, mtime=0), host="aarch64")
    assert (info.format, info.compression, info.pvh, info.version) == (
        "arm64-image",
        "gzip",
        True,
        arm64_kernel.version,
    )
    on_x86 = check(data, host="x86_64")
    assert on_x86.bootable and any("only an arm64 Xen" in w for w in on_x86.warnings)


# --- every payload compression, on a small kernel ----------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_bzimage_payload_codecs(codec):
    if codec in ("lz4", "lzo") and not have_tool("lz4" if codec == "lz4" else "lzop"):
        pytest.skip(f"needs the {codec} command")
    image = bzimage_of(make_elf(ElfSpec(pad=3 << 20)), codec)  # notes 3 MiB into the ELF
    info = check(image)
    assert info.format == "bzImage" and info.compression == codec
    assert info.pv and info.pvh, info.problems
    assert info.version == "6.6.6-pvtest" and info.banner.startswith("6.6.6-pvtest (builder@pvboot)")
    assert info.boot_protocol == "2.15"


@pytest.mark.parametrize("codec", ["gzip", "xz", "zstd", "bzip2"])
def test_truncated_or_corrupt_payload_is_a_problem_not_a_crash(codec):
    elf = make_elf(ElfSpec(pad=1 << 20))
    packed = compress(elf, codec)
    for payload in (packed[: len(packed) // 3], packed[:8] + bytes(len(packed) - 8)):
        info = check(make_bzimage(payload + struct.pack("<I", len(elf))))
        assert not info.bootable and info.problems, codec


# --- what is refused, and why ------------------------------------------------------------------------


def test_bzimage_without_xen_support_is_refused():
    info = check(bzimage_of(make_elf(ElfSpec(notes=[])), "gzip"))
    assert info.format == "bzImage" and not info.bootable
    assert info.version == "6.6.6-pvtest"
    assert len(info.problems) == 1 and "without Xen ELF notes" in info.problems[0]


def test_an_elf_that_is_no_kernel_is_refused():
    true = Path(shutil.which("true") or "/bin/true")
    info = check_file(true)
    assert info.format == "elf" and not info.bootable
    assert "without Xen ELF notes" in info.problems[0]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"root:x:0:0:root:/root:/bin/bash\n" * 10, "not a kernel Xen can load"),
        (b"MZ" + bytes(4000), "PE/COFF"),
        (lzma.compress(make_elf(), lzma.FORMAT_XZ), "only gzip'd kernels"),
        (arm_zimage(big_endian=True), "big-endian"),
        (make_bzimage(b"\x00" * 64, version=0x0206), "2.08 or later"),
        (make_bzimage(b"NOTCOMPRESSED" * 8), "compression is unknown"),
        (make_bzimage(compress(b"not an elf" * 100, "gzip") + u32(1000)), "not an ELF vmlinux"),
    ],
)
def test_refusals_name_what_is_missing(data, words):
    info = check(data)
    assert not info.bootable and not info.pv and not info.pvh
    assert any(words in p for p in info.problems), info.problems


def test_payload_outside_the_file():
    image = bytearray(bzimage_of(make_elf()))
    struct.pack_into("<I", image, 0x24C, len(image))
    assert "outside" in check(bytes(image)).problems[0]


def notes_without(*types: int) -> list:
    return [n for n in pv_notes() if n[1] not in types]


@pytest.mark.parametrize(
    ("notes", "pv", "pvh", "reason"),
    [
        (pv_notes(), True, True, None),
        (pv_notes(pvh=False), True, False, "PHYS32_ENTRY"),
        (pv_notes(pv=False), False, True, "neither LOADER"),
        (notes_without(LOADER), True, True, None),  # GUEST_OS linux is enough
        (notes_without(LOADER, GUEST_OS), False, True, "neither LOADER"),
        (notes_without(XEN_VERSION), False, True, "XEN_VERSION"),
        ([*notes_without(XEN_VERSION), (b"Xen", XEN_VERSION, cstr("xen-4.0"))], False, True, "xen-4.0"),
        ([*pv_notes(), (b"Xen", FEATURES, cstr("!dom0"))], False, False, "dom0"),
        ([*pv_notes(), (b"Xen", FEATURES, cstr("!warp_drive"))], False, False, "warp_drive"),
        ([*pv_notes(), (b"Xen", FEATURES, cstr("warp_drive"))], True, True, None),  # unknown, optional
        ([*pv_notes(), (b"Xen", INIT_P2M, u64(0xFFFFFFFF81000800))], False, True, "INIT_P2M"),
        ([*pv_notes(), (b"Xen", 0x99, b"whatever")], True, True, None),  # unknown note types are skipped
        ([(b"Linux", GUEST_OS, cstr("linux")), (b"GNU", 3, b"\x01" * 20)], False, False, "notes"),
    ],
)
def test_libelf_note_rules(notes, pv, pvh, reason):
    info = check(make_elf(ElfSpec(notes=notes)))
    assert (info.pv, info.pvh) == (pv, pvh), (info.pv_reason, info.pvh_reason, info.problems)
    reasons = " ".join(filter(None, [info.pv_reason, info.pvh_reason, *info.problems]))
    if reason is None:
        assert info.bootable
    else:
        assert reason in reasons


def test_entry_outside_the_kernel_is_refused():
    info = check(make_elf(ElfSpec(notes=notes_without(1), entry=0x1234)))
    assert not info.pv and "out of bounds" in info.pv_reason
    assert info.pvh  # PVH enters at PHYS32_ENTRY


def test_notes_only_in_a_section_are_found():
    info = check(make_elf(ElfSpec(notes_in="section")))
    assert info.notes_source == "SHT_NOTE" and info.pv and info.pvh


def test_legacy_xen_guest_section_is_pv_only():
    spec = ElfSpec(
        notes_in="none",
        xen_guest=b"GUEST_OS=linux,GUEST_VER=2.6,XEN_VER=xen-3.0,VIRT_BASE=0xffffffff80000000,"
        b"ELF_PADDR_OFFSET=0x0,HYPERCALL_PAGE=0x101,LOADER=generic,FEATURES=writable_page_tables",
    )
    info = check(make_elf(spec))
    assert info.notes_source == "__xen_guest" and info.pv and not info.pvh
    assert info.xen_notes["GUEST_OS"] == "linux"


def test_xen_guest_defaults_paddr_offset_to_virt_base():
    # with __xen_guest and no ELF_PADDR_OFFSET, libelf takes p_paddr as virtual: 0x1000000 is then below
    # VIRT_BASE and the kernel is out of bounds
    spec = ElfSpec(notes_in="none", xen_guest=b"GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xffffffff80000000")
    info = check(make_elf(spec))
    assert not info.pv and "out of bounds" in info.pv_reason


def test_32bit_pv_needs_pae():
    base = 0xC0000000
    notes = [
        (b"Xen", GUEST_OS, cstr("linux")),
        (b"Xen", XEN_VERSION, cstr("xen-3.0")),
        (b"Xen", VIRT_BASE_NOTE, u32(base)),
    ]
    spec = ElfSpec(
        bits=32, machine=EM_386, entry=base + 0x100100, loads=[(base + 0x100000, 0x100000, 0x100000)]
    )
    spec.notes = notes
    assert "PAE" in check(make_elf(spec)).problems[0]
    spec.notes = [*notes, (b"Xen", PAE_MODE, cstr("yes"))]
    info = check(make_elf(spec))
    assert info.pv and info.arch == "x86_32" and any("CONFIG_PV32" in w for w in info.warnings)


def test_arm64_elf_is_not_a_pv_kernel():
    info = check(make_elf(ElfSpec(machine=EM_AARCH64, notes=[])))
    assert not info.bootable and "x86" in info.problems[0]


def test_pvh_only_kernel_passes():
    info = check(make_elf(ElfSpec(notes=[(b"Xen", PHYS32_ENTRY, u32(0x1000200))])))
    assert info.pvh and not info.pv and info.bootable and info.problems == []


def test_arm_headers():
    info = check(arm64_image(), host="aarch64")
    assert (info.format, info.pvh, info.version) == ("arm64-image", True, "6.6.6-pvtest")
    info = check(arm_zimage(), host="armv7l")
    assert (info.format, info.arch, info.pvh, info.warnings) == ("arm-zimage", "arm32", True, [])


# --- bounds ------------------------------------------------------------------------------------------


def test_decompression_bomb_hits_the_limit():
    bomb = bzimage_of(make_elf(ElfSpec(pad=64 << 20)), "xz", fast=True)  # notes 64 MiB in, ~10 KiB
    with pytest.raises(LimitError, match="limit"):
        check(bomb)  # default: 16 MiB floor, 1024x ratio
    limits = KernelLimits(max_decompressed=2 << 20, ratio_floor=1 << 20)
    far = bzimage_of(make_elf(ElfSpec(pad=4 << 20)), "gzip")  # notes beyond 2 MiB
    with pytest.raises(LimitError):
        check(far, limits)


def test_payload_cap_combines_ratio_floor_and_absolute():
    kl = KernelLimits()
    assert kl.payload_cap(1000) == kl.ratio_floor
    assert kl.payload_cap(8 << 20) == kl.max_decompressed
    assert KernelLimits(max_decompress_ratio=4).payload_cap(10 << 20) == 40 << 20


def test_mutated_kernels_never_raise_anything_but_pvboot_errors():
    rng = random.Random(7)
    seeds = [
        bzimage_of(make_elf(), "gzip"),
        bzimage_of(make_elf(), "xz"),
        bzimage_of(make_elf(), "zstd"),
        make_elf(),
        make_elf(ElfSpec(notes_in="section")),
        make_elf(ElfSpec(bits=32, machine=EM_386, notes=[])),
        arm64_image(4096),
        gzip.compress(make_elf(), mtime=0),
    ]
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 6)):
            pos = rng.randrange(len(data))
            data[pos] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        try:
            info = check(bytes(data), KernelLimits(max_decompressed=8 << 20))
        except PvbootError:
            continue
        assert info.bootable == (not info.problems)


def test_stub_kernel_for_stand_in_tests():
    from pvboot.kernel.stub import HEADER, stub_kernel

    body = b"PVBOOT-TEST-KERNEL:/boot/vmlinuz-6.1.0-10-amd64\n"
    data = stub_kernel(body)
    assert data[HEADER:] == body
    info = check(data)
    assert (info.format, info.pv, info.pvh) == ("elf", True, True), info.problems
    assert (check(stub_kernel(body, pv=False)).pv, check(stub_kernel(body, pvh=False)).pvh) == (False, False)
    assert check(stub_kernel(bytes(3 << 20))).bootable


def test_header_tables_are_bounded():
    elf = bytearray(make_elf())
    struct.pack_into("<HH", elf, 54, 65535, 4096)  # e_phentsize, e_phnum: a 256 MiB table
    info = check(bytes(elf))
    assert not info.bootable and "program header" in info.problems[0]
    struct.pack_into("<HH", elf, 54, 56, 60000)
    with pytest.raises(LimitError):
        check(bytes(elf) + bytes(60000 * 56))
