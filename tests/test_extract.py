"""Extraction (pvboot.extract): every copy path gives the original bytes on every layout, memory stays flat.

No timings here (the benchmark is bench/run.py). Each path is forced in turn: copy_file_range,
sendfile and bounded streaming reads, plus the fallbacks between them (a tmpfs output directory, a
block-device image, a refused syscall), holes, multi-segment LVs, truncated images and the size cap.
Expected bytes are the sha256 of the source tree the images were built from, never pvboot's own reads.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pvrun
from layouts import INITRD, KERNEL, LAYOUTS, MIB, mkext, partition, sha256_file, sparse_file
from pvboot.disk.fsapi import Extent, FileSystem, Kind, Node
from pvboot.disk.tree import FileTree
from pvboot.disk.volumes import GuestDisk
from pvboot.errors import GuestDataError, LimitError
from pvboot.extract import COPY_FILE_RANGE, METHODS, SENDFILE, STREAM, GuestFile, copy_files
from pvboot.limits import Limits

if TYPE_CHECKING:
    from conftest import LayoutImages

LIMITS = Limits()
CAP = 128 * MIB
# layouts whose boot files lie plainly in the image: every byte goes through the forced syscall
PLAIN = {
    "ext4-logical", "ext2-mbr", "ext4-mbr", "xfs-gpt", "ext4-gpt-4k", "fat32-esp", "iso9660", "lvm",
    "bare-ext4", "qcow2",
}  # fmt: skip
FORCED = {
    "auto": METHODS,
    "copy_file_range": (COPY_FILE_RANGE,),
    "sendfile": (SENDFILE,),
    "stream": (STREAM,),
}


class Spy:
    """Counts the bytes each host-fd path moved (os.copy_file_range / os.sendfile / os.preadv)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.moved = {COPY_FILE_RANGE: 0, SENDFILE: 0, STREAM: 0}
        self.fail: dict[str, int] = {}  # method -> errno to raise instead
        for name, method in (
            ("copy_file_range", COPY_FILE_RANGE),
            ("sendfile", SENDFILE),
            ("preadv", STREAM),
        ):
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name), method))

    def _wrap(self, real: Callable[..., int], method: str) -> Callable[..., int]:
        def call(*args: Any) -> int:
            if method in self.fail:
                raise OSError(self.fail[method], os.strerror(self.fail[method]))
            n = real(*args)
            self.moved[method] += n
            return n

        return call


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    return Spy(monkeypatch)


def guest_file(disk: GuestDisk, path: str) -> GuestFile:
    for volume in disk.filesystems():
        if volume.tree().is_file(path):
            return GuestFile(volume.tree(), path)
    raise AssertionError(f"{path} not found on any volume")


def extract(
    image: Path, out: Path, paths: list[str], methods: tuple[str, ...] = METHODS, limits: Limits = LIMITS
) -> int:
    disk = GuestDisk(str(image), limits)
    try:
        files = [guest_file(disk, p) for p in paths]
        fd = os.open(out, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            return copy_files(files, fd, limits.max_file_size, "ramdisk", methods)
        finally:
            os.close(fd)
    finally:
        disk.close()


# -- every layout, every path ------------------------------------------------------------------------


@pytest.mark.parametrize("forced", list(FORCED))
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_path_gives_the_original_bytes(
    layout: str, forced: str, layout_images: LayoutImages, spy: Spy, tmp_path: Path
) -> None:
    """Kernel alone, then initrd + kernel concatenated (offsets carry across files), by each path."""
    image = layout_images(layout)
    digests = layout_images.tree.sha256
    methods = FORCED[forced]
    kernel_out, both_out = tmp_path / "kernel", tmp_path / "both"
    size = extract(image, kernel_out, [KERNEL], methods)
    assert sha256_file(kernel_out) == digests[KERNEL] and size == kernel_out.stat().st_size
    total = extract(image, both_out, [INITRD, KERNEL], methods)
    initrd_size = total - size
    with open(both_out, "rb") as f:
        assert hashlib.sha256(f.read(initrd_size)).hexdigest() == digests[INITRD]
        assert hashlib.sha256(f.read()).hexdigest() == digests[KERNEL]
    moved = spy.moved
    if layout in PLAIN:
        expected = COPY_FILE_RANGE if forced == "auto" else methods[0]
        assert moved[expected] == size + total, moved  # every byte went the forced way
        assert sum(moved.values()) == moved[expected], moved
    elif layout == "btrfs-zstd":  # compressed extents: no plain map, the whole file streams
        assert sum(moved.values()) == 0, moved


# -- fallbacks ---------------------------------------------------------------------------------------


def test_cross_filesystem_output_falls_back_to_sendfile(layout_images: LayoutImages, spy: Spy) -> None:
    """A tmpfs output directory: copy_file_range says EXDEV (Linux >= 5.19), sendfile copies."""
    shm = Path("/dev/shm")
    image = layout_images("ext4-mbr")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(image).st_dev:
        pytest.skip("no tmpfs on another filesystem than the images")
    out = shm / f"pvboot-test-{os.getpid()}"
    try:
        size = extract(image, out, [INITRD])
        assert sha256_file(out) == layout_images.tree.sha256[INITRD]
    finally:
        out.unlink(missing_ok=True)
    assert spy.moved[COPY_FILE_RANGE] + spy.moved[SENDFILE] == size
    assert spy.moved[STREAM] == 0


@pytest.mark.parametrize(
    ("failing", "used"),
    [
        ({COPY_FILE_RANGE: errno.EXDEV}, SENDFILE),
        ({COPY_FILE_RANGE: errno.ENOSYS}, SENDFILE),
        ({COPY_FILE_RANGE: errno.EINVAL, SENDFILE: errno.EINVAL}, STREAM),
        ({COPY_FILE_RANGE: errno.EOPNOTSUPP, SENDFILE: errno.ENOSYS}, STREAM),
    ],
    ids=["exdev", "enosys", "both-einval", "both-unsupported"],
)
def test_refused_syscalls_fall_back(
    failing: dict[str, int], used: str, layout_images: LayoutImages, spy: Spy, tmp_path: Path
) -> None:
    spy.fail = failing
    size = extract(layout_images("ext4-mbr"), tmp_path / "out", [INITRD, KERNEL])
    assert spy.moved[used] == size
    root = layout_images.tree.root
    assert (tmp_path / "out").read_bytes() == (root / INITRD[1:]).read_bytes() + (
        root / KERNEL[1:]
    ).read_bytes()


@pytest.mark.parametrize("errno_", [errno.EIO, errno.ENOSPC, errno.EFBIG])
def test_real_copy_errors_are_not_masked(
    errno_: int, layout_images: LayoutImages, spy: Spy, tmp_path: Path
) -> None:
    """An error that says the copy failed (not "not this way") ends it; nothing falls back."""
    spy.fail = {COPY_FILE_RANGE: errno_}
    with pytest.raises(GuestDataError, match=os.strerror(errno_)):
        extract(layout_images("ext4-mbr"), tmp_path / "out", [KERNEL])
    assert spy.moved[SENDFILE] == spy.moved[STREAM] == 0


def test_block_device_image(layout_images: LayoutImages, spy: Spy, tmp_path: Path) -> None:
    """A raw block device: copy_file_range refuses it (EINVAL), sendfile reads it."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root and losetup")
    image = layout_images("ext4-mbr")
    loop = subprocess.run(
        ["losetup", "-f", "--show", "-r", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        size = extract(Path(loop), tmp_path / "out", [INITRD])
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
    assert sha256_file(tmp_path / "out") == layout_images.tree.sha256[INITRD]
    assert spy.moved[SENDFILE] + spy.moved[COPY_FILE_RANGE] == size and spy.moved[STREAM] == 0


# -- holes, LVM segments, truncation, the cap ---------------------------------------------------------


@pytest.fixture(scope="module")
def sparse_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("needs mkfs.ext4")
    base = tmp_path_factory.mktemp("sparse")
    tree = base / "tree"
    (tree / "boot").mkdir(parents=True)
    rnd = random.Random(5)
    data = bytearray(9 * MIB)  # data, a 5 MiB hole, data, a 4 MiB trailing hole
    data[:100_000] = rnd.randbytes(100_000)
    data[5 * MIB : 5 * MIB + 70_000] = rnd.randbytes(70_000)
    with open(tree / "boot" / "sparse", "wb") as f:
        f.write(data[:100_000])
        f.seek(5 * MIB)
        f.write(data[5 * MIB : 5 * MIB + 70_000])
        f.truncate(len(data))
    return mkext("ext4", tree, base / "disk.img", 32 * MIB), bytes(data)


@pytest.mark.parametrize("forced", list(FORCED))
def test_holes_stay_sparse(forced: str, sparse_image: tuple[Path, bytes], tmp_path: Path) -> None:
    image, data = sparse_image
    disk = GuestDisk(str(image), LIMITS)
    try:
        extents = disk.volumes[0].tree().lookup("/boot/sparse").extents()
    finally:
        disk.close()
    assert extents is not None and any(e.volume_offset is None for e in extents), "the image has no hole"
    out = tmp_path / "out"
    assert extract(image, out, ["/boot/sparse", "/boot/sparse"], FORCED[forced]) == 2 * len(data)
    assert out.read_bytes() == data + data
    assert out.stat().st_blocks * 512 < len(data), "holes were written out"


@pytest.fixture(scope="module")
def lvm_two_segments(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """GPT -> PV -> LV `boot` in two non-adjacent segments (4 MiB, then 28 MiB after LV `gap`), holding
    ext4 with a 20 MiB file that crosses the segment boundary. Activation off, no host traces."""
    if os.geteuid() != 0 or shutil.which("lvm") is None or shutil.which("sfdisk") is None:
        pytest.skip("needs root, lvm2 and sfdisk")
    base = tmp_path_factory.mktemp("lvm2seg")
    tree = base / "tree"
    (tree / "boot").mkdir(parents=True)
    payload = random.Random(11).randbytes(20 * MIB)
    (tree / "boot" / "big").write_bytes(payload)
    fs = mkext("ext4", tree, base / "fs.ext4", 32 * MIB)
    disk = sparse_file(base / "disk.img", 48 * MIB)
    (part,) = partition(disk, "label: gpt\nstart=2048, size=44M, type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n")
    offset, size = int(part["start"]) * 512, int(part["size"]) * 512
    vg = f"pvbperf{os.getpid()}"
    cfg = (
        "global{activation=0} backup{backup=0 archive=0} "
        'devices{use_devicesfile=0 hints="none" filter=["a|^%s$|","r|.*|"]}'
    )
    env = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")
    loop = subprocess.run(
        ["losetup", "-f", "--show", "-o", str(offset), "--sizelimit", str(size), str(disk)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:

        def lvm(*args: str) -> str:
            cmd = ["lvm", args[0], "--config", cfg % loop, *args[1:]]
            return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout

        lvm("pvcreate", "-q", "-ff", "-y", loop)
        lvm("vgcreate", "-q", "-s", "1M", vg, loop)
        lvm("lvcreate", "-q", "-an", "-Zn", "-y", "-L", "4M", "-n", "boot", vg)
        lvm("lvcreate", "-q", "-an", "-Zn", "-y", "-L", "2M", "-n", "gap", vg)
        lvm("lvextend", "-q", "-L", "+28M", f"{vg}/boot")
        pe_start = int(lvm("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start", loop))
        rows = lvm("lvs", "--noheadings", "--units", "b", "--nosuffix", "--separator", ";",
                   "-o", "seg_pe_ranges,seg_start,seg_size", f"{vg}/boot")  # fmt: skip
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
    segments = []
    for row in rows.strip().splitlines():
        ranges, seg_start, seg_size = (x.strip() for x in row.split(";"))
        first_pe = int(ranges.split(":")[1].split("-")[0])
        segments.append((int(seg_start), offset + pe_start + first_pe * MIB, int(seg_size)))
    assert len(segments) == 2, rows
    with open(fs, "rb") as src, open(disk, "r+b") as dst:
        for lv_offset, disk_offset, length in segments:
            src.seek(lv_offset)
            dst.seek(disk_offset)
            dst.write(src.read(length))
    fs.unlink()
    return disk, f"lvm/{vg}-boot", hashlib.sha256(payload).hexdigest()


def test_multi_segment_logical_volume(
    lvm_two_segments: tuple[Path, str, str], spy: Spy, tmp_path: Path
) -> None:
    image, name, digest = lvm_two_segments
    disk = GuestDisk(str(image), LIMITS)
    try:
        volume = disk.volume(name)
        assert len(volume.runs) == 2
        node = volume.tree().lookup("/boot/big")
        assert node.extents() is not None
        fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            size = copy_files([GuestFile(volume.tree(), "/boot/big")], fd, CAP, "kernel")
        finally:
            os.close(fd)
    finally:
        disk.close()
    assert sha256_file(tmp_path / "out") == digest
    assert spy.moved[COPY_FILE_RANGE] == size  # both segments mapped to the host, no streaming


def test_truncated_image_fails(layout_images: LayoutImages, tmp_path: Path) -> None:
    """The image shrinks after it was opened: the copy stops with an error, never a short file."""
    image = tmp_path / "disk.img"
    shutil.copyfile(layout_images("bare-ext4"), image)
    disk = GuestDisk(str(image), LIMITS)
    try:
        initrd = guest_file(disk, INITRD)
        extents = initrd.tree.lookup(INITRD).extents()
        assert extents
        os.truncate(image, min(e.volume_offset or 0 for e in extents) + 4096)
        fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with pytest.raises(GuestDataError, match="ends before"):
                copy_files([initrd], fd, CAP, "ramdisk")
        finally:
            os.close(fd)
    finally:
        disk.close()


def test_cap_is_checked_before_copying(layout_images: LayoutImages, spy: Spy, tmp_path: Path) -> None:
    image = layout_images("ext4-mbr")
    with pytest.raises(LimitError, match="PYGRUB_MAX_FILE_SIZE_MB"):
        extract(image, tmp_path / "out", [INITRD, KERNEL], limits=Limits(max_file_size=9 * MIB))
    assert sum(spy.moved.values()) == 0 and (tmp_path / "out").stat().st_size == 0


# -- maps that do not tile the file fall back to the stream ------------------------------------------


class _FakeNode(Node):
    def __init__(self, data: bytes, extents: list[Extent] | None) -> None:
        self.kind, self.size, self._data, self._extents = Kind.FILE, len(data), data, extents

    def child(self, name: str) -> Node | None:
        return None

    def names(self) -> Iterator[str]:
        return iter(())

    def readlink(self) -> str:
        raise GuestDataError("no")

    def open(self) -> Any:
        import io

        return io.BytesIO(self._data)

    def extents(self) -> list[Extent] | None:
        return self._extents


class _FakeFs(FileSystem):
    fstype, uuid, label = "fake", None, None

    def __init__(self, node: Node) -> None:
        self._root = _FakeDir(node)

    def root(self) -> Node:
        return self._root


class _FakeDir(_FakeNode):
    def __init__(self, file: Node) -> None:
        super().__init__(b"", None)
        self.kind, self._file = Kind.DIR, file

    def child(self, name: str) -> Node | None:
        return self._file if name == "f" else None


class _HostPlacement:
    """The volume is the host file `fd` itself."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size

    def host_ranges(self, offset: int, length: int) -> list[tuple[int | None, int]]:
        n = max(0, min(length, self.size - offset))
        return [(offset, n)] if n else []

    def host_fd(self) -> int:
        return self.fd


@pytest.mark.parametrize(
    "extents",
    [
        [Extent(0, 0, 4096), Extent(8192, 8192, 4096)],  # a gap
        [Extent(0, 0, 8192), Extent(4096, 4096, 8192)],  # an overlap
        [Extent(0, 0, 4096)],  # short
        [Extent(0, -4096, 12288)],  # a negative volume offset
    ],
    ids=["gap", "overlap", "short", "negative"],
)
def test_maps_that_do_not_tile_are_streamed(extents: list[Extent], spy: Spy, tmp_path: Path) -> None:
    data = random.Random(1).randbytes(12288)
    volume = tmp_path / "volume"
    volume.write_bytes(bytes(len(data)))  # what the bad map points at: zeros
    vfd = os.open(volume, os.O_RDONLY)
    try:
        tree = FileTree(_FakeFs(_FakeNode(data, extents)), LIMITS, "fake", _HostPlacement(vfd, len(data)))
        fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            assert copy_files([GuestFile(tree, "/f")], fd, CAP, "kernel") == len(data)
        finally:
            os.close(fd)
    finally:
        os.close(vfd)
    assert (tmp_path / "out").read_bytes() == data and sum(spy.moved.values()) == 0


def test_extent_beyond_the_volume_fails(spy: Spy, tmp_path: Path) -> None:
    data = bytes(8192)
    volume = tmp_path / "volume"
    volume.write_bytes(bytes(4096))
    vfd = os.open(volume, os.O_RDONLY)
    try:
        node = _FakeNode(data, [Extent(0, 0, 8192)])
        tree = FileTree(_FakeFs(node), LIMITS, "fake", _HostPlacement(vfd, 4096))
        fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with pytest.raises(GuestDataError, match="beyond the end of its volume"):
                copy_files([GuestFile(tree, "/f")], fd, CAP, "kernel")
        finally:
            os.close(fd)
    finally:
        os.close(vfd)


# -- flat memory -------------------------------------------------------------------------------------

BIG = 300 * MIB


@pytest.fixture(scope="module")
def big_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Bare ext4 holding /boot/big: 300 MiB of random bytes (and a grub.cfg booting it)."""
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("needs mkfs.ext4")
    base = tmp_path_factory.mktemp("big")
    tree = base / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text(
        "set default=0\nmenuentry 'big' {\n\tlinux /boot/vmlinuz\n\tinitrd /boot/big\n}\n"
    )
    (tree / "boot" / "vmlinuz").write_bytes(os.urandom(MIB))
    digest = hashlib.sha256()
    with open(tree / "boot" / "big", "wb") as f:
        for _ in range(BIG // (16 * MIB)):
            chunk = os.urandom(16 * MIB)
            digest.update(chunk)
            f.write(chunk)
    image = mkext("ext4", tree, base / "disk.img", BIG + 48 * MIB)
    shutil.rmtree(tree)
    return image, digest.hexdigest()


def _peak_growth_in_child(fn: Callable[[], None]) -> int:
    """Run `fn` in a forked child; the growth of its peak RSS (KiB) over what it started with."""
    import resource

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_end)
            start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            fn()
            growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start
            os.write(write_end, str(growth).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        text = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and text, "the child failed"
    return int(text)


@pytest.mark.slow
@pytest.mark.parametrize("forced", list(FORCED))
def test_memory_stays_flat(forced: str, big_image: tuple[Path, str], tmp_path: Path) -> None:
    """300 MiB through each path: the peak RSS grows by a few MiB at most (the stream buffer)."""
    image, digest = big_image
    out = tmp_path / "out"
    limits = Limits(max_file_size=512 * MIB)
    growth = _peak_growth_in_child(lambda: extract(image, out, ["/boot/big"], FORCED[forced], limits))
    assert sha256_file(out) == digest
    assert growth < 16 * 1024, f"peak RSS grew by {growth} KiB"


@pytest.mark.slow
def test_cli_peak_rss_for_a_300_mib_initrd(big_image: tuple[Path, str], tmp_path: Path) -> None:
    """The whole pvboot process tree, from a small fresh wrapper: peak RSS under 64 MiB for 300 MiB."""
    image, digest = big_image
    out = tmp_path / "out"
    out.mkdir()
    answer = out / "answer"
    wrapper = (
        "import os, resource, sys\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.execv(sys.argv[1], sys.argv[1:])\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    env = pvrun.environment({"PYGRUB_MAX_FILE_SIZE_MB": "512"})
    argv = [
        "-q",
        "--no-kernel-check",  # the stand-in kernel is random bytes: this measures the copy
        f"--output={answer}",
        "--output-format=simple0",
        f"--output-directory={out}",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *pvrun.command(*argv, str(image))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    fields = dict(item.partition(" ")[::2] for item in answer.read_text().split("\0") if item)
    assert sha256_file(Path(fields["ramdisk"])) == digest
    peak_kib = int(proc.stdout.split()[-1])
    assert peak_kib < 64 * 1024, f"peak RSS {peak_kib} KiB"


SPANS = [(0, 10), (99_990, 20), (4096, 5 * MIB), (5 * MIB - 5, 70_010), (9 * MIB - 7, 7), (123, 0)]


@pytest.mark.parametrize("forced", list(FORCED))
def test_a_byte_range_of_a_file_is_copied_alone(
    forced: str, sparse_image: tuple[Path, bytes], tmp_path: Path
) -> None:
    """A GuestFile with a span (a UKI's section) copies exactly those bytes, across data, holes and the
    file's end, by every copy method; its stream reads the same bytes."""
    image, data = sparse_image
    disk = GuestDisk(str(image), LIMITS)
    try:
        tree = disk.volumes[0].tree()
        files = [GuestFile(tree, "/boot/sparse", span, ".linux") for span in SPANS]
        with open(tmp_path / "out", "wb") as out:
            size = copy_files(files, out.fileno(), CAP, "kernel", FORCED[forced])
        want = b"".join(data[offset : offset + length] for offset, length in SPANS)
        assert size == len(want) and (tmp_path / "out").read_bytes() == want
        length, stream = files[3].open()
        assert length == 70_010 and stream.read() == data[5 * MIB - 5 : 5 * MIB + 70_005]
        assert files[0].display == "(hd0)/boot/sparse:.linux[0+10]"
    finally:
        disk.close()


@pytest.mark.parametrize("span", [(-1, 10), (0, 9 * MIB + 1), (9 * MIB, 1), (5, -1)])
def test_a_byte_range_outside_the_file_is_refused(
    span: tuple[int, int], sparse_image: tuple[Path, bytes]
) -> None:
    image, _ = sparse_image
    disk = GuestDisk(str(image), LIMITS)
    try:
        item = GuestFile(disk.volumes[0].tree(), "/boot/sparse", span)
        with open(os.devnull, "wb") as out, pytest.raises(GuestDataError, match="outside the file"):
            copy_files([item], out.fileno(), CAP, "kernel")
    finally:
        disk.close()
