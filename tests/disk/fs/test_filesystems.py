"""The filesystem adapters against small images built by the real tools (mkfs.*, mtools, xorriso).

Expected values come from the source tree the images were built from, from blkid / mtools / filefrag /
debugfs output, or from the kernel's own mount of the image; never from pvboot itself.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvboot.disk.fs import detect, open_filesystem
from pvboot.disk.fsapi import Extent, FileSystem, Kind
from pvboot.disk.stream import RawReader
from pvboot.disk.tree import FileTree
from pvboot.errors import GuestDataError, NotFoundError, PvbootError
from pvboot.limits import MIB, Limits

LIMITS = Limits()
KINDS = [
    "ext2", "ext4", "ext4-inline", "xfs", "btrfs", "btrfs-zstd", "btrfs-lzo", "btrfs-zlib",
    "fat12", "fat16", "fat32", "iso", "iso-joliet", "iso-plain",
]  # fmt: skip
NEEDS_MOUNT = {"ext4", "ext4-inline", "xfs", "btrfs", "btrfs-zstd", "btrfs-lzo", "btrfs-zlib"}
BLKID_TYPES = {"ext2": "ext2", "ext3": "ext2", "ext4": "ext2", "xfs": "xfs", "btrfs": "btrfs",
               "vfat": "fat", "iso9660": "iso9660"}  # fmt: skip
BOOT_FILES = ["vmlinuz-6.1", "initrd.img-6.1", "tiny.txt", "hundred.txt", "grub/grub.cfg"]
INLINE_DIR = ["grub.cfg", "grubenv", "unicode.pf2", "xy"]  # overflows i_block into the system.data xattr
LONG_FAT_NAME = "A Long File Name.txt"


def run(*cmd: str, ok: tuple[int, ...] = (0,)) -> str:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode not in ok:
        raise AssertionError(f"{cmd} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@contextmanager
def mounted(image: Path, options: str = "") -> Iterator[Path]:
    point = image.with_suffix(".mnt")
    point.mkdir(exist_ok=True)
    run("mount", "-o", "loop" + (f",{options}" if options else ""), str(image), str(point))
    try:
        yield point
    finally:
        run("umount", str(point))


def compressible(size: int) -> bytes:
    """Word salad: compresses well even with LZO (which has no entropy coder)."""
    rnd = random.Random(size)
    words = [rnd.randbytes(rnd.randint(2, 9)).hex() for _ in range(512)]
    out = bytearray()
    while len(out) < size:
        out += (" ".join(rnd.choice(words) for _ in range(12)) + "\n").encode()
    return bytes(out[:size])


def write_sparse(path: Path) -> None:
    """Data islands between holes (many extents: an XFS bmap B+tree) and an unwritten fallocated tail."""
    rnd = random.Random(7)
    with open(path, "wb") as out:
        for i in range(120):
            out.seek(i * 65536 + 4096 * (i % 3))
            out.write(rnd.randbytes(4096 + 100 * i))
    run("fallocate", "-o", str(120 * 65536 + 100_000), "-l", "1000000", str(path))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("source")
    boot = root / "boot"
    (boot / "many").mkdir(parents=True)
    (boot / "grub").mkdir()
    (root / "etc").mkdir()
    (boot / "vmlinuz-6.1").write_bytes(os.urandom(3 * MIB))
    (boot / "initrd.img-6.1").write_bytes(compressible(4 * MIB))
    (boot / "tiny.txt").write_bytes(b"tiny\n")
    (boot / "hundred.txt").write_bytes(b"y" * 99 + b"\n")
    (boot / "grub" / "grub.cfg").write_text("set default=0\nmenuentry 'Linux' { linux /boot/vmlinuz }\n")
    (root / "etc" / "os-release").write_text("ID=debian\n")
    (boot / "vmlinuz").symlink_to("vmlinuz-6.1")
    (boot / "vmlinuz.abs").symlink_to("/boot/vmlinuz-6.1")
    for n in range(1, 601):
        (boot / "many" / f"file-with-a-long-name-{n}").touch()
    write_sparse(root.parent / "sparse.reference")
    return root


def _fat_image(path: Path, bits: int, source: Path) -> dict[str, Any]:
    run("truncate", "-s", "40M" if bits == 32 else "16M", str(path))
    run("mkfs.vfat", "-F", str(bits), "-n", "BOOTFAT", str(path))
    image = ["-i", str(path)]
    run("mmd", *image, "::/boot", "::/boot/grub", "::/boot/many")
    for name in BOOT_FILES:
        run("mcopy", *image, str(source / "boot" / name), f"::/boot/{name}")
    run("mcopy", *image, str(source / "boot" / "tiny.txt"), f"::/boot/{LONG_FAT_NAME}")
    run("mcopy", *image, *sorted(str(p) for p in (source / "boot" / "many").iterdir()), "::/boot/many/")
    # fragment a file: fill the holes left by deleted one-cluster files
    small = path.with_suffix(".small")
    small.write_bytes(b"s" * 512)
    for i in range(12):
        run("mcopy", *image, str(small), f"::/s{i}.bin")
    for i in range(0, 12, 2):
        run("mdel", *image, f"::/s{i}.bin")
    if bits == 32:  # forget the FSInfo next-free hint (a valid "unknown") so the holes are reused
        with open(path, "r+b") as raw:
            raw.seek(512 + 0x1EC)
            raw.write(b"\xff" * 4)
    run("mcopy", *image, str(source / "boot" / "vmlinuz-6.1"), "::/frag.bin")
    runs = re.findall(r"<(\d+)(?:-(\d+))?>", run("mshowfat", *image, "::/frag.bin"))
    info = run("minfo", *image)
    sectors = re.search(r"cluster size: (\d+) sectors", info)
    sector = re.search(r"sector size: (\d+) bytes", info)
    assert sectors and sector, info
    cluster = int(sectors[1]) * int(sector[1])
    return {"frag_runs": [(int(a), int(b or a)) for a, b in runs], "cluster": cluster}


def _xorriso_names(path: Path, kind: str, directory: str) -> list[str]:
    joliet = kind == "iso-joliet"
    where = "/" + (directory if joliet else directory.upper())
    options = ["-rockridge", "off", "-joliet", "on" if joliet else "off"]
    out = run("xorriso", *options, "-indev", str(path), "-ls", where)
    names = re.findall(r"^'(.*)'$", out, re.MULTILINE)
    # plain ISO9660 names as Linux shows them (map=normal): lower case, no trailing dot
    return sorted(names if joliet else [n.lower().rstrip(".") for n in names])


def _build(kind: str, path: Path, source: Path) -> dict[str, Any]:
    info: dict[str, Any] = {}
    src = str(source)
    if kind == "ext2":  # 1 KiB blocks: the 3 MiB file needs double-indirect blocks; old 128-byte inodes
        run("mkfs.ext2", "-q", "-F", "-b", "1024", "-I", "128", "-L", "EXT2BOOT", "-d", src, str(path), "32M")
    elif kind.startswith("ext4"):
        features = "inline_data,64bit,metadata_csum" if kind == "ext4-inline" else "64bit,metadata_csum"
        run("mkfs.ext4", "-q", "-F", "-O", features, "-L", "ext4boot", "-d", src, str(path), "48M")
        with mounted(path) as mnt:
            write_sparse(mnt / "sparse.bin")
            if kind == "ext4-inline":
                (mnt / "inl").mkdir()
                for name in INLINE_DIR:
                    (mnt / "inl" / name).write_text(name)
        info["debugfs_inl"] = run("debugfs", "-R", "stat /inl", str(path)) if kind == "ext4-inline" else ""
    elif kind == "xfs":
        run("truncate", "-s", "300M", str(path))
        run("mkfs.xfs", "-q", "-f", "-L", "xfsboot", str(path))
        with mounted(path) as mnt:
            run("cp", "-a", f"{src}/.", str(mnt))
            write_sparse(mnt / "sparse.bin")
    elif kind.startswith("btrfs"):
        run("truncate", "-s", "128M", str(path))
        run("mkfs.btrfs", "-q", "-f", "-L", "btrfsboot", str(path))
        algo = kind.partition("-")[2]
        with mounted(path, f"compress-force={algo}" if algo else "") as mnt:
            run("btrfs", "-q", "subvolume", "create", str(mnt / "@"))
            run("cp", "-a", f"{src}/.", str(mnt / "@"))
            write_sparse(mnt / "@" / "sparse.bin")
            run("sync")
            info["filefrag"] = run("filefrag", "-v", str(mnt / "@" / "boot" / "initrd.img-6.1"))
            run("btrfs", "-q", "subvolume", "set-default", str(mnt / "@"))
    elif kind.startswith("fat"):
        info.update(_fat_image(path, int(kind[3:]), source))
    else:
        flags = {"iso": ["-R", "-J"], "iso-joliet": ["--norock", "-J"], "iso-plain": ["--norock"]}[kind]
        run("xorriso", "-as", "mkisofs", "-quiet", *flags, "-V", "BOOT", "-o", str(path), src)
        if kind != "iso":  # xorriso's own reading of the Joliet / plain ISO9660 tree is the oracle for names
            info["names"] = {d: _xorriso_names(path, kind, d) for d in ("boot", "boot/many")}
    if kind.startswith("ext"):
        run("e2fsck", "-fyD", str(path), ok=(0, 1))  # -D: index the 600-entry directory (htree)
        stat_many = re.search(r"Flags: (0x[0-9a-f]+)", run("debugfs", "-R", "stat /boot/many", str(path)))
        assert stat_many and int(stat_many[1], 16) & 0x1000, "expected an htree-indexed directory"
    return info


@dataclass
class Image:
    kind: str
    path: Path
    source: Path
    info: dict[str, Any]  # what the building tools reported
    blkid: dict[str, str]
    fs: FileSystem
    tree: FileTree


@pytest.fixture(scope="session", params=KINDS)
def image(request: pytest.FixtureRequest, source: Path, tmp_path_factory: pytest.TempPathFactory) -> Image:
    kind: str = request.param
    if kind in NEEDS_MOUNT and os.geteuid() != 0:
        pytest.skip("building this image needs root (mount -o loop)")
    tool = {"x": "mkfs.xfs", "b": "mkfs.btrfs", "f": "mtools", "i": "xorriso"}.get(kind[0], "mkfs.ext4")
    if shutil.which(tool if tool != "mtools" else "mcopy") is None:
        pytest.skip(f"{tool} not installed")
    path = tmp_path_factory.mktemp(kind) / f"{kind}.img"
    info = _build(kind, path, source)
    blkid = dict(line.split("=", 1) for line in run("blkid", "-o", "export", str(path)).splitlines())
    stream = open(path, "rb")  # noqa: SIM115 - kept open for the session
    request.addfinalizer(stream.close)
    fs = open_filesystem(stream, LIMITS)
    return Image(kind, path, source, info, blkid, fs, FileTree(fs, LIMITS))


def read_path(tree: FileTree, path: str) -> bytes:
    node, stream = tree.open_file(path)
    data = stream.read()
    assert len(data) == node.size
    return data


def reassemble(image_path: Path, extents: list[Extent], size: int) -> bytes:
    out = bytearray()
    with open(image_path, "rb") as raw:
        for ext in extents:
            assert ext.file_offset == len(out), "extents must cover the file in order"
            if ext.volume_offset is None:
                out += bytes(ext.length)
            else:
                raw.seek(ext.volume_offset)
                out += raw.read(ext.length)
    assert len(out) == size
    return bytes(out)


def test_detect_matches_blkid(image: Image) -> None:
    with open(image.path, "rb") as stream:
        assert detect(stream) == BLKID_TYPES[image.blkid["TYPE"]]
    assert image.fs.fstype == BLKID_TYPES[image.blkid["TYPE"]]


def test_uuid_and_label_match_blkid(image: Image) -> None:
    # GRUB prints these UUIDs exactly as blkid does: lowercase 8-4-4-4-12, FAT "XXXX-XXXX" (upper-cased by
    # grub-core/fs/fat.c), ISO9660 the volume modification date.
    assert image.fs.uuid == image.blkid["UUID"]
    assert image.fs.label == image.blkid.get("LABEL")


def test_file_contents(image: Image) -> None:
    boot = image.source / "boot"
    for name in BOOT_FILES:
        if image.kind == "iso-plain" and name in ("vmlinuz-6.1", "initrd.img-6.1"):
            continue  # not 8.3 names: checked through the kernel's names below
        assert sha(read_path(image.tree, f"/boot/{name}")) == sha((boot / name).read_bytes()), name
    if image.kind in NEEDS_MOUNT:
        reference = (image.source.parent / "sparse.reference").read_bytes()
        assert sha(read_path(image.tree, "/sparse.bin")) == sha(reference)


SYMLINK_KINDS = [k for k in KINDS if not k.startswith("fat") and k not in ("iso-joliet", "iso-plain")]


@pytest.mark.parametrize("image", SYMLINK_KINDS, indirect=True)
def test_symlinks_resolve_inside_the_filesystem(image: Image) -> None:
    expected = sha((image.source / "boot" / "vmlinuz-6.1").read_bytes())
    for link in ("vmlinuz", "vmlinuz.abs"):
        node = image.tree.lookup(f"/boot/{link}", follow=False)
        assert node.kind is Kind.SYMLINK
        assert node.readlink() == os.readlink(image.source / "boot" / link)
        assert sha(read_path(image.tree, f"/boot/{link}")) == expected


def test_listings(image: Image) -> None:
    many = sorted(os.listdir(image.source / "boot" / "many"))
    if image.kind.startswith("iso") and image.kind != "iso":
        assert sorted(image.tree.listdir("/boot/many")) == image.info["names"]["boot/many"]
        assert sorted(image.tree.listdir("/boot")) == image.info["names"]["boot"]
        return
    assert sorted(image.tree.listdir("/boot/many")) == many
    listed = set(image.tree.listdir("/boot"))
    assert {"vmlinuz-6.1", "initrd.img-6.1", "tiny.txt", "grub", "many"} <= listed
    assert not listed & {".", ".."}


def test_streams_are_seekable(image: Image) -> None:
    name = "tiny.txt" if image.kind == "iso-plain" else "vmlinuz-6.1"
    original = (image.source / "boot" / name).read_bytes()
    _, stream = image.tree.open_file(f"/boot/{name}")
    middle = len(original) // 2
    stream.seek(middle)
    assert stream.read(1000) == original[middle : middle + 1000]
    assert stream.seek(0, io.SEEK_END) == len(original)


def test_extents_reassemble_from_raw_image(image: Image) -> None:
    short = ("tiny.txt", "hundred.txt", "grub/grub.cfg")  # the 8.3 names of the plain ISO9660 image
    paths = [f"/boot/{n}" for n in BOOT_FILES if image.kind != "iso-plain" or n in short]
    paths += ["/sparse.bin"] if image.kind in NEEDS_MOUNT else []
    seen_plain = False
    for path in paths:
        node = image.tree.lookup(path)
        extents = node.extents()
        if extents is None:
            continue
        seen_plain = True
        assert reassemble(image.path, extents, node.size) == read_path(image.tree, path), path
    assert seen_plain or image.kind.startswith("btrfs-")


def test_missing_paths_are_not_found(image: Image) -> None:
    with pytest.raises(NotFoundError):
        image.tree.lookup("/boot/no-such-file")
    assert image.tree.exists("/boot/grub/grub.cfg")


@pytest.mark.parametrize("image", ["ext4-inline"], indirect=True)
def test_ext4_inline_data(image: Image) -> None:
    assert "system.data" in image.info["debugfs_inl"]  # the directory really spills into the xattr
    assert sorted(image.tree.listdir("/inl")) == sorted(INLINE_DIR)
    for name in INLINE_DIR:
        assert image.tree.read_small(f"/inl/{name}", 100) == name.encode()
    assert image.tree.lookup("/boot/tiny.txt").extents() is None  # inline: no plain extents


@pytest.mark.parametrize("image", [k for k in KINDS if k.startswith("btrfs")], indirect=True)
def test_btrfs_subvolumes_and_compression(image: Image) -> None:
    fs: FileSystem = image.fs
    assert image.tree.is_file("/boot/tiny.txt")  # via the default subvolume @
    assert len(fs.alternate_roots()) == 1
    assert sha(read_path(image.tree, "/@/boot/tiny.txt")) == sha(b"tiny\n")  # from the top level
    assert "@" in image.tree.listdir("/@/..")  # '..' stays at the root
    compressed = "encoded" in image.info["filefrag"]
    assert compressed == ("-" in image.kind)
    initrd = image.tree.lookup("/boot/initrd.img-6.1")
    assert (initrd.extents() is None) == compressed


@pytest.mark.parametrize("image", ["fat12", "fat16", "fat32"], indirect=True)
def test_fat_names_and_fragmentation(image: Image) -> None:
    assert LONG_FAT_NAME in image.tree.listdir("/boot")
    assert read_path(image.tree, "/BOOT/a long FILE name.TXT") == b"tiny\n"
    assert read_path(image.tree, "/Boot/Grub/GRUB.CFG") == (image.source / "boot/grub/grub.cfg").read_bytes()
    node = image.tree.lookup("/frag.bin")
    extents = node.extents()
    assert extents is not None
    runs = image.info["frag_runs"]
    assert len(runs) > 1 and len(extents) == len(runs)  # contiguous clusters coalesced, as mshowfat shows
    assert [e.length for e in extents[:-1]] == [(b - a + 1) * image.info["cluster"] for a, b in runs[:-1]]
    assert reassemble(image.path, extents, node.size) == (image.source / "boot/vmlinuz-6.1").read_bytes()


@pytest.mark.parametrize("image", ["iso", "iso-joliet", "iso-plain"], indirect=True)
def test_iso_names_case_insensitive_without_rock_ridge(image: Image) -> None:
    assert read_path(image.tree, "/BOOT/TINY.TXT" if image.kind != "iso" else "/boot/tiny.txt") == b"tiny\n"
    if image.kind == "iso":
        assert not image.tree.exists("/BOOT/TINY.TXT")  # Rock Ridge names are case-sensitive


def test_btrfs_decompression_is_capped() -> None:
    """A compression bomb in one extent yields at most the extent's 128 KiB, never the whole expansion."""
    from pvboot.disk.fs._btrfs_codecs import ZLIB, ZSTD, decompress

    bomb = zlib.compress(bytes(64 * MIB), 9)
    assert len(decompress(bomb, ZLIB, 128 * 1024, 4096)) == 128 * 1024
    zstd = pytest.importorskip("backports.zstd")
    assert len(decompress(zstd.compress(bytes(64 * MIB)), ZSTD, 128 * 1024, 4096)) == 128 * 1024


# -- hostile input -----------------------------------------------------------------------------------------


def test_detect_rejects_garbage() -> None:
    for blob in (b"", b"\0" * 4096, b"\xff" * 200_000, random.Random(1).randbytes(300_000)):
        assert detect(io.BytesIO(blob)) is None
        with pytest.raises(GuestDataError):
            open_filesystem(io.BytesIO(blob), LIMITS)


class Patched(RawReader):
    """A read-only view of an image file with some bytes replaced."""

    def __init__(self, path: Path, patches: dict[int, int]) -> None:
        super().__init__(path.stat().st_size)
        self._file = open(path, "rb")  # noqa: SIM115
        self._patches = patches

    def readinto(self, buffer: Any) -> int:
        self._file.seek(self._pos)
        data = bytearray(self._file.read(len(buffer)))
        for offset, value in self._patches.items():
            if self._pos <= offset < self._pos + len(data):
                data[offset - self._pos] = value
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


def walk_everything(stream: Any) -> None:
    """Open, list, resolve and read what a boot loader would; only pvboot errors may come out."""
    fs = open_filesystem(stream, LIMITS)
    tree = FileTree(fs, LIMITS)
    for path in ("/", "/boot", "/boot/many", "/boot/grub", "/inl"):
        with suppress(PvbootError):
            tree.listdir(path)
    for path in ("/boot/vmlinuz", "/boot/tiny.txt", "/boot/grub/grub.cfg", "/sparse.bin", "/@/boot/tiny.txt"):
        try:
            node, data = tree.open_file(path)
            if node.size <= 16 * MIB:  # as pvboot does: never read what exceeds the size limit
                data.read()
            node.extents()
        except PvbootError:
            pass


@pytest.mark.parametrize("image", ["ext2", "ext4-inline", "xfs", "btrfs-lzo", "fat16", "iso"], indirect=True)
def test_corrupt_metadata_only_raises_guest_errors(image: Image) -> None:
    path = image.path
    metadata = _metadata_offsets(path)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(st.tuples(st.sampled_from(metadata), st.integers(0, 255)), min_size=1, max_size=12))
    def check(patches: list[tuple[int, int]]) -> None:
        stream = Patched(path, dict(patches))
        try:
            walk_everything(stream)
        except PvbootError:
            pass
        finally:
            stream.close()

    check()


def _metadata_offsets(path: Path) -> list[int]:
    """Byte offsets the adapters read outside bulk file data (small reads while walking the image)."""
    offsets: list[int] = []

    class Recorder(Patched):
        def readinto(self, buffer: Any) -> int:
            if len(buffer) <= 65536:
                offsets.extend(range(self._pos, self._pos + len(buffer), 7))
            return super().readinto(buffer)

    stream = Recorder(path, {})
    walk_everything(stream)
    stream.close()
    return sorted(set(offsets))[:200_000]
