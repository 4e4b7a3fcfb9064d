"""Containers (raw, qcow2 chains) and LVM logical volumes, against images built by qemu-img and lvm2."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvboot.disk.container import Container, open_container
from pvboot.disk.lvm import LogicalVolume, find_logical_volumes, lvm_crc, parse_metadata
from pvboot.disk.stream import SliceStream
from pvboot.errors import GuestDataError, LimitError, PvbootError, UsageError
from pvboot.limits import MIB, Limits

LIMITS = Limits()
needs_qemu = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loop devices)")


def run(*cmd: str | Path | int) -> str:
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True).stdout


def source_bytes(seed: int = 1) -> bytes:
    """6 MiB + 5 sectors: compressible text, a zero run, random data, so every cluster type occurs."""
    rnd = random.Random(seed)
    text = base64.encodebytes(rnd.randbytes(1_600_000))[: 2 * MIB]
    return text + bytes(MIB) + rnd.randbytes(MIB // 2) + bytes(2 * MIB + MIB // 2 + 5 * 512)


def digest(stream: object, size: int) -> str:
    h = hashlib.sha256()
    stream.seek(0)  # type: ignore[attr-defined]
    left = size
    while left:
        chunk = stream.read(min(MIB, left))  # type: ignore[attr-defined]
        assert chunk, "short read"
        h.update(chunk)
        left -= len(chunk)
    return h.hexdigest()


def assert_matches_qemu(container: Container, image: Path) -> None:
    """Guest bytes equal `qemu-img convert -O raw`, by chunked hash, at odd offsets and per host range."""
    ref_path = image.with_suffix(".ref")
    run("qemu-img", "convert", "-O", "raw", image, ref_path)
    ref = ref_path.read_bytes()
    assert container.size == len(ref)
    assert digest(container.stream, container.size) == hashlib.sha256(ref).hexdigest()
    rnd = random.Random(7)
    for _ in range(50):
        off, n = rnd.randrange(len(ref)), rnd.randrange(1, 200_000)
        container.stream.seek(off)
        assert container.stream.read(n) == ref[off : off + n]
    pos = 1234
    ranges = container.host_ranges(pos, len(ref))
    assert sum(n for _, n in ranges) == len(ref) - pos
    for host, n in ranges:
        if host is not None:
            assert os.pread(container.fileno_for_plain(), n, host) == ref[pos : pos + n]
        pos += n


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "disk.img"
    path.write_bytes(source_bytes())
    return path


def test_raw_file(src: Path) -> None:
    with open_container(str(src), LIMITS) as c:
        assert c.format == "raw" and c.size == src.stat().st_size
        assert digest(c.stream, c.size) == hashlib.sha256(src.read_bytes()).hexdigest()
        assert c.host_ranges(100, 1000) == [(100, 1000)]
        assert c.host_ranges(c.size - 10, 1000) == [(c.size - 10, 10)]
        assert c.host_ranges(c.size, 10) == []


@needs_qemu
def test_declared_format(src: Path, tmp_path: Path) -> None:
    image = tmp_path / "disk.qcow2"
    run("qemu-img", "convert", "-O", "qcow2", src, image)
    with open_container(str(image), LIMITS, "raw") as c:  # declared raw: the magic is not probed
        assert (c.format, c.size) == ("raw", image.stat().st_size)
    with open_container(str(image), LIMITS, "qcow2") as c:
        assert (c.format, c.size) == ("qcow2", src.stat().st_size)
    with pytest.raises(GuestDataError, match="not a qcow2"):
        open_container(str(src), LIMITS, "qcow2")
    with pytest.raises(UsageError):
        open_container(str(src), LIMITS, "vmdk")
    with pytest.raises(UsageError):
        open_container(str(tmp_path / "absent.img"), LIMITS)


@needs_root
def test_raw_block_device(src: Path) -> None:
    loop = run("losetup", "-f", "--show", "-r", src).strip()
    try:
        with open_container(loop, LIMITS) as c:
            assert c.format == "raw" and c.size == src.stat().st_size
            c.stream.seek(3 * MIB)
            assert c.stream.read(4096) == src.read_bytes()[3 * MIB : 3 * MIB + 4096]
    finally:
        run("losetup", "-d", loop)


@needs_qemu
@pytest.mark.parametrize(
    "options",
    [
        [],
        ["-c"],
        ["-c", "-o", "compression_type=zstd,cluster_size=4096"],
        ["-c", "-o", "compat=0.10,cluster_size=512"],
        ["-o", "cluster_size=2M"],
    ],
    ids=["plain", "zlib", "zstd-4k", "v2-512", "2M"],
)
def test_qcow2_matches_qemu(src: Path, tmp_path: Path, options: list[str]) -> None:
    image = tmp_path / "disk.qcow2"
    run("qemu-img", "convert", "-O", "qcow2", *options, src, image)
    with open_container(str(image), LIMITS) as c:
        assert c.format == "qcow2"
        assert_matches_qemu(c, image)
        kinds = {host is None for host, _ in c.host_ranges(0, c.size)}
        assert kinds == ({True, False} if "-c" in options else kinds)


@needs_qemu
def test_qcow2_backing_chain(src: Path, tmp_path: Path) -> None:
    shutil.copy(src, tmp_path / "base.img")
    mid = tmp_path / "mid.qcow2"
    run("qemu-img", "convert", "-O", "qcow2", "-o", "compat=0.10,cluster_size=512", src, mid)
    run("qemu-img", "rebase", "-u", "-b", "base.img", "-F", "raw", mid)
    run("qemu-io", "-c", "write -P 0x33 4096 100k", mid)
    top = tmp_path / "top.qcow2"  # larger than its backing file: the tail reads as zeros
    run("qemu-img", "create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top, "9M")
    run("qemu-io", "-c", "write -P 0x55 1M 64k", "-c", "write -P 0x66 6M 100k", top)
    with open_container(str(top), LIMITS) as c:
        assert_matches_qemu(c, top)  # named *.qcow2: its backing chain is followed
    renamed = tmp_path / "top.img"
    shutil.copy(top, renamed)
    with pytest.raises(GuestDataError, match="only with --format=qcow2"):
        open_container(str(renamed), LIMITS)  # probed, neither named nor declared qcow2
    with open_container(str(renamed), LIMITS, "qcow2") as c:
        assert_matches_qemu(c, top)
        plain = [h for h, _ in c.host_ranges(0, c.size) if h is not None]
        assert plain, "the overlay's own clusters are plain in its host file"
    with pytest.raises(LimitError, match="depth: 2"):
        open_container(str(top), Limits(max_backing_depth=1), "qcow2")


@needs_qemu
def test_backing_depth_limit(tmp_path: Path) -> None:
    run("qemu-img", "create", "-q", "-f", "qcow2", tmp_path / "l0.qcow2", "1M")
    for i in range(1, 4):
        run("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", f"l{i - 1}.qcow2", "-F", "qcow2",
            tmp_path / f"l{i}.qcow2", "1M")  # fmt: skip
    open_container(str(tmp_path / "l3.qcow2"), Limits(max_backing_depth=3), "qcow2").close()
    with pytest.raises(LimitError, match="depth"):
        open_container(str(tmp_path / "l3.qcow2"), Limits(max_backing_depth=2), "qcow2")


def _with_backing(tmp_path: Path, name: str, fmt: str = "raw") -> str:
    image = tmp_path / "evil.qcow2"
    image.unlink(missing_ok=True)
    run("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", name, "-F", fmt, image, "1M")
    return str(image)


@needs_qemu
@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [
        ("/etc/passwd", "raw", "not a plain name"),
        ("../outside.img", "raw", "not a plain name"),
        ("sub/inner.img", "raw", "not a plain name"),
        ("..", "raw", "not a plain name"),
        ("link.img", "raw", "symlink"),
        ("fifo", "raw", "not a regular file"),
        ("missing.img", "raw", "No such file"),
        ("sibling.img", "vmdk", "unsupported backing file format"),
        ("sibling.img", "qcow2", "not qcow2"),
        ("evil.qcow2", "qcow2", "loops"),
    ],
)
def test_backing_file_refused(tmp_path: Path, name: str, fmt: str, message: str) -> None:
    box = tmp_path / "box"
    (box / "sub").mkdir(parents=True)
    (box / "sub" / "inner.img").write_bytes(bytes(MIB))
    (tmp_path / "outside.img").write_bytes(bytes(MIB))
    (box / "sibling.img").write_bytes(bytes(MIB))
    (box / "link.img").symlink_to("/etc/passwd")
    os.mkfifo(box / "fifo")
    started = time.monotonic()
    with pytest.raises(GuestDataError, match=message):
        open_container(_with_backing(box, name, fmt), LIMITS, "qcow2")
    assert time.monotonic() - started < 5


@needs_qemu
def test_backing_loop_of_two(tmp_path: Path) -> None:
    for a, b in (("a", "b"), ("b", "a")):
        run("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", f"{b}.qcow2", "-F", "qcow2",
            tmp_path / f"{a}.qcow2", "1M")  # fmt: skip
    with pytest.raises(GuestDataError, match="loops"):
        open_container(str(tmp_path / "a.qcow2"), LIMITS, "qcow2")


HEADER_PATCHES = [
    (4, ">I", 4, GuestDataError, "version"),
    (20, ">I", 30, GuestDataError, "cluster_bits"),
    (24, ">Q", 1 << 62, GuestDataError, "implausible"),
    (32, ">I", 1, GuestDataError, "encrypted"),
    (36, ">I", 0xFFFF_FFFF, LimitError, "L1"),
    (36, ">I", 0, GuestDataError, "too small"),
    (40, ">Q", 0x12345, GuestDataError, "L1 table at"),
    (40, ">Q", 1 << 40, GuestDataError, "L1 table at"),
    (56, ">I", 0x10000, LimitError, "refcount"),
    (72, ">Q", 1 << 2, GuestDataError, "external data file"),
    (72, ">Q", 1 << 9, GuestDataError, "incompatible features"),
    (100, ">I", 12, GuestDataError, "header_length"),
]


@needs_qemu
@pytest.mark.parametrize(("offset", "fmt", "value", "error", "message"), HEADER_PATCHES)
def test_bad_header_refused(
    tmp_path: Path, offset: int, fmt: str, value: int, error: type, message: str
) -> None:
    image = tmp_path / "bad.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", image, "64M")
    with image.open("r+b") as f:
        f.seek(offset)
        f.write(struct.pack(fmt, value))
    with pytest.raises(error, match=message) as info:
        open_container(str(image), LIMITS)
    assert "\n" not in str(info.value)


@needs_qemu
@pytest.mark.parametrize("options", [[], ["-c"]], ids=["plain", "compressed"])
def test_truncated_qcow2_fails(src: Path, tmp_path: Path, options: list[str]) -> None:
    """Clusters stored past the end of a cut image are an error, not zeros: it must not boot."""
    image = tmp_path / "cut.qcow2"
    run("qemu-img", "convert", "-O", "qcow2", *options, src, image)
    with image.open("r+b") as f:
        f.truncate(image.stat().st_size // 2)
    with open_container(str(image), LIMITS) as c, pytest.raises(GuestDataError, match="beyond the end"):
        digest(c.stream, c.size)


@needs_qemu
def test_extended_l2_refused(tmp_path: Path) -> None:
    image = tmp_path / "ext.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", image, "1M")
    with pytest.raises(GuestDataError, match="subclusters"):
        open_container(str(image), LIMITS)


def _read_all(image: Path) -> None:
    try:
        with open_container(str(image), LIMITS) as c:
            c.stream.seek(0)
            c.stream.read(min(c.size, 2 * MIB))
            c.host_ranges(0, min(c.size, 2 * MIB))
    except PvbootError as e:
        assert "\n" not in str(e)


@pytest.fixture(scope="module")
def small_qcow2s(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img not installed")
    d = tmp_path_factory.mktemp("fuzz")
    (d / "s.img").write_bytes(source_bytes(2)[: 3 * MIB])
    out = []
    for opts in (["-o", "cluster_size=512"], ["-c", "-o", "cluster_size=4096"], ["-c"]):
        run("qemu-img", "convert", "-O", "qcow2", *opts, d / "s.img", d / "s.qcow2")
        out.append((d / "s.qcow2").read_bytes())
    return out


@needs_qemu
@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    which=st.integers(0, 2),
    edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.none() | st.integers(0, 1 << 20),
)
def test_mutated_qcow2_never_crashes(
    small_qcow2s: list[bytes], tmp_path_factory: pytest.TempPathFactory, which: int,
    edits: list[tuple[int, int]], cut: int | None,
) -> None:  # fmt: skip
    data = bytearray(small_qcow2s[which])
    for pos, byte in edits:
        if pos < len(data):
            data[pos] = byte
    image = tmp_path_factory.getbasetemp() / "mutant.qcow2"
    image.write_bytes(bytes(data[:cut] if cut is not None else data))
    _read_all(image)


# ---------------------------------------------------------------------------------------------- LVM


def build_pv(
    text: bytes | None, *, size: int = 4 * MIB, ring_offset: int = 512, uuid: bytes = b"P" * 32
) -> bytes:
    """A PV as pvcreate lays it out: label in sector 1, metadata area at 4 KiB, extents from 1 MiB."""
    img = bytearray(size)
    mda_start, mda_size = 4096, MIB - 4096
    pvh = uuid + struct.pack("<Q", size) + struct.pack("<QQQQ", MIB, 0, 0, 0)
    pvh += struct.pack("<QQQQ", mda_start, mda_size, 0, 0)
    label = bytearray(b"LABELONE" + struct.pack("<QII", 1, 0, 32) + b"LVM2 001" + pvh)
    label += bytes(512 - len(label))
    label[16:20] = struct.pack("<I", lvm_crc(bytes(label[20:])))
    img[512:1024] = label
    body = b"" if text is None else text + b"\0"  # None: an orphan PV, as pvcreate leaves it
    mda = bytearray(b"\0\0\0\0 LVM2 x[5A%r0N*>" + struct.pack("<IQQ", 1, mda_start, mda_size))
    mda += struct.pack("<QQII", ring_offset if body else 0, len(body), lvm_crc(body), 0)
    mda += bytes(512 - len(mda))
    mda[0:4] = struct.pack("<I", lvm_crc(bytes(mda[4:])))
    img[mda_start : mda_start + 512] = mda
    first = min(len(body), mda_size - ring_offset)
    img[mda_start + ring_offset : mda_start + ring_offset + first] = body[:first]
    img[mda_start + 512 : mda_start + 512 + len(body) - first] = body[first:]
    return bytes(img)


PV_ID = "PPPPPP-PPPP-PPPP-PPPP-PPPP-PPPP-PPPPPP"


def vg_text(lvs: str, vg: str = "my-vg") -> bytes:
    return f"""{vg} {{
id = "VVVVVV-VVVV-VVVV-VVVV-VVVV-VVVV-VVVVVV"
seqno = 3
extent_size = 2048 # 1 MiB
physical_volumes {{
pv0 {{
id = "{PV_ID}"
device = "/dev/x"  # Hint only
status = ["ALLOCATABLE"]
pe_start = 2048
pe_count = 3
}}
}}
logical_volumes {{
{lvs}
}}
}}
# Generated by a test
contents = "Text Format Volume Group"
version = 1
description = "with \\"quotes\\" and # hash"
""".encode()


def lv_text(name: str, segs: str, status: str = '"READ", "WRITE", "VISIBLE"') -> str:
    return f'{name} {{\nid = "LLLLLL-{name}"\nstatus = [{status}]\nsegment_count = 1\n{segs}\n}}'


def seg_text(
    start: int, count: int, pe: int, kind: str = "striped", pv: str = "pv0", stripes: int = 1
) -> str:
    return (f"segment{start + 1} {{\nstart_extent = {start}\nextent_count = {count}\ntype = \"{kind}\"\n"
            f"stripe_count = {stripes}\nstripes = [\n\"{pv}\", {pe}\n]\n}}")  # fmt: skip


def lvs_of(image: bytes, limits: Limits = LIMITS) -> dict[str, LogicalVolume]:
    import io

    stream = io.BytesIO(image)
    return {lv.grub_name: lv for lv in find_logical_volumes(stream, len(image), limits)}


@pytest.mark.parametrize("ring_offset", [512, MIB - 4096 - 300], ids=["flat", "wrapped"])
def test_synthetic_pv(ring_offset: int) -> None:
    text = vg_text(
        lv_text("boot", seg_text(0, 1, 2))
        + lv_text("a-b", seg_text(1, 1, 0) + seg_text(0, 1, 1))
        + lv_text("thin", seg_text(0, 1, 0, kind="thin"))
        + lv_text("wide", seg_text(0, 1, 0, stripes=2))
        + lv_text("far", seg_text(0, 1, 0, pv="pv9"))
        + lv_text("hidden", seg_text(0, 1, 0), status='"READ"')
        + lv_text("past", seg_text(0, 1, 3))
    )
    image = bytearray(build_pv(text, ring_offset=ring_offset))
    for pe in range(3):
        image[MIB + pe * MIB : MIB + (pe + 1) * MIB] = bytes([pe + 1]) * MIB
    found = lvs_of(bytes(image))
    boot, ab = found.pop("lvm/my--vg-boot"), found.pop("lvm/my--vg-a--b")
    assert (boot.offset, boot.size, boot.vg_name, boot.lv_name) == (3 * MIB, MIB, "my-vg", "boot")
    assert boot.grub_id_name == "lvmid/VVVVVV-VVVV-VVVV-VVVV-VVVV-VVVV-VVVVVV/LLLLLL-boot"
    assert boot.open().read() == b"\3" * MIB
    stream = ab.open()
    assert (ab.offset, ab.size, stream.read()) == (2 * MIB, 2 * MIB, b"\2" * MIB + b"\1" * MIB)
    stream.seek(MIB - 2)
    assert stream.read(4) == b"\2\2\1\1"
    reasons = {name: lv.unsupported_reason for name, lv in found.items()}
    assert all(reasons.values()) and len(reasons) == 5, reasons
    with pytest.raises(GuestDataError):
        found["lvm/my--vg-thin"].open()


def test_not_a_pv_or_orphan() -> None:
    assert lvs_of(bytes(MIB)) == {}
    assert lvs_of(build_pv(None)) == {}


def test_metadata_limit() -> None:
    with pytest.raises(LimitError, match="LVM metadata"):
        lvs_of(build_pv(vg_text("")), Limits(max_lvm_metadata=100))


def test_bad_checksums_refused() -> None:
    image = bytearray(build_pv(vg_text("")))
    image[600] ^= 1
    with pytest.raises(GuestDataError, match="checksum"):
        lvs_of(bytes(image))
    image = bytearray(build_pv(vg_text("")))
    image[4096 + 600] ^= 1  # metadata text no longer matches its checksum: no usable copy
    with pytest.raises(GuestDataError, match="no intact metadata"):
        lvs_of(bytes(image))


@pytest.mark.parametrize(
    "text",
    [
        b'vg {\nid = "unterminated\n}',
        b"vg {\n" * 100 + b"}" * 100,
        b"vg {\nx = [1, [2]]\n}",
        b"vg {\nx = " + b"[" * 100_000 + b"\n}",
        b"vg {\nx = 1" + b"9" * 5000 + b"\n}",
        b"vg {\nx = 1\nx = 2\n}",
        b"vg {\n}\n}",
        b"vg {\nid = 5\n}",
        b"a {\n}\nb {\n}\n",
        b"#a" * 200_000,
        b"vg {\n" + b'#"#' * 100_000 + b"\n}",
        b"vg { = }",
        vg_text("").replace(b"physical_volumes", b"physical_volume"),
        vg_text("").replace(PV_ID.encode(), b"other"),
        vg_text("x = 1"),
        vg_text("", vg="-bad"),
    ],
)
def test_hostile_metadata_is_guest_data_error(text: bytes) -> None:
    started = time.monotonic()
    with pytest.raises(GuestDataError) as info:
        lvs_of(build_pv(text))
    assert "\n" not in str(info.value)
    assert time.monotonic() - started < 2


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet='{}[]=,"#\\ \n\tabc-_.019', max_size=300))
def test_fuzzed_metadata_text(text: str) -> None:
    try:
        parse_metadata(text)
        lvs_of(build_pv(vg_text("") + text.encode()))
    except GuestDataError:
        pass


# ------------------------------------------------------------------------------- LVM built by lvm2

LVM_CONFIG = (
    "global{activation=0} backup{backup=0 archive=0} "
    'devices{use_devicesfile=0 hints="none" filter=["a|^%s$|","r|.*|"]}'
)


@pytest.fixture(scope="module")
def lvm_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """GPT disk, partition 1 a PV; VG t-vg-N with LVs root (two segments) and data-lv, filled with patterns.

    Activation is off and backups, hints and the devices file are not written, so once the loop device
    is detached the host keeps no trace of the VG.
    """
    if os.geteuid() != 0 or shutil.which("pvcreate") is None or shutil.which("sfdisk") is None:
        pytest.skip("needs root, lvm2 and fdisk")
    image = tmp_path_factory.mktemp("lvm") / "disk.img"
    with image.open("wb") as out:
        out.truncate(48 * MIB)
    subprocess.run(["sfdisk", "-q", str(image)], input="label: gpt\nstart=2048, type=E6D6D379-F507-44C2-A23C"
                   "-238F2A3DF928\n", text=True, check=True, capture_output=True)  # fmt: skip
    part = 2048 * 512
    psize = 48 * MIB - part - 34 * 512
    vg = f"t-vg-{os.getpid()}"
    env = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")
    loop = run("losetup", "-f", "--show", "-o", part, "--sizelimit", psize, image).strip()
    try:
        cfg = ["--config", LVM_CONFIG % loop]

        def lvm(*args: str | int) -> str:
            cmd = [str(args[0]), *cfg, *[str(a) for a in args[1:]]]
            return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout

        lvm("pvcreate", "-q", "-ff", "-y", loop)
        lvm("vgcreate", "-q", "-s", "1M", vg, loop)
        lvm("lvcreate", "-q", "-an", "-Zn", "-y", "-L", "4M", "-n", "root", vg)
        lvm("lvcreate", "-q", "-an", "-Zn", "-y", "-L", "3M", "-n", "data-lv", vg)
        lvm("lvextend", "-q", "-L", "+2M", f"{vg}/root")
        pe_start = int(lvm("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start", loop))
        rows = lvm("lvs", "--noheadings", "--units", "b", "--nosuffix", "--separator", ";",
                   "-o", "lv_name,lv_uuid,seg_pe_ranges,seg_start,seg_size", vg)  # fmt: skip
    finally:
        run("losetup", "-d", loop)
    expect: dict[str, dict[str, object]] = {}
    rnd = random.Random(3)
    with image.open("r+b") as f:
        for row in rows.split("\n"):
            if not row.strip():
                continue
            name, uuid, ranges, seg_start, seg_size = (x.strip() for x in row.split(";"))
            first_pe = int(ranges.split(":")[1].split("-")[0])
            pv_off = pe_start + first_pe * MIB
            pattern = rnd.randbytes(int(seg_size))
            f.seek(part + pv_off)
            f.write(pattern)
            lv = expect.setdefault(name, {"uuid": uuid, "segs": []})
            lv["segs"].append((int(seg_start), pv_off, pattern))  # type: ignore[attr-defined]
    return image, {"vg": vg, "part": part, "psize": psize, "lvs": expect}


def test_lvm_built_by_lvm2(lvm_image: tuple[Path, dict]) -> None:
    image, info = lvm_image
    with open_container(str(image), LIMITS) as c:
        pv = SliceStream(c.stream, info["part"], info["psize"])
        found = {lv.lv_name: lv for lv in find_logical_volumes(cast(BinaryIO, pv), info["psize"], LIMITS)}
        assert set(found) == {"root", "data-lv"}
        vg = info["vg"]
        assert found["data-lv"].grub_name == f"lvm/{vg.replace('-', '--')}-data--lv"
        assert found["root"].grub_name == f"lvm/{vg.replace('-', '--')}-root"
        for name, lv in found.items():
            want = info["lvs"][name]
            segs = sorted(want["segs"])
            assert lv.unsupported_reason is None and lv.uuid == want["uuid"] and lv.vg_name == vg
            assert lv.offset == segs[0][1]
            assert lv.size == sum(len(p) for _, _, p in segs)
            assert lv.open().read() == b"".join(p for _, _, p in segs)
        assert len(found["root"].runs) == 2
    hints = Path("/run/lvm/hints")
    assert not hints.exists() or info["vg"] not in hints.read_text(), "the host kept an LVM trace"
    assert not list(Path("/etc/lvm").glob(f"*/{info['vg']}*")), "the host kept an LVM backup"
