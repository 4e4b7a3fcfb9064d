"""Containers (raw files, block devices, qcow2 chains: disk/container.py), against qemu-img's images."""

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

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvboot.disk.container import Container, open_container
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
