"""Every bound of the issue, hit end-to-end through the CLI with a crafted image or config.

Each run must fail with exactly one `pvboot: ` line that names the limit, within 30 s and 1 GiB, leaving
nothing behind (the same invariant as the fuzzers: tests/fuzz/fuzzkit.py). Limits reached through a boot
config whose message the config layer loses are in test_regressions.py (test_regression_config_*).
"""

from __future__ import annotations

import lzma
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzz_images import FuzzImages
from fuzz_targets import _crc_std
from fuzzkit import (
    CliOutcome,
    Mutation,
    Region,
    applied,
    cli_violations,
    read_at,
    run_cli,
    sparse_copy,
    write_at,
)
from guestimg import ENTRY, KERNEL, Guest, build_ext4

from layouts import INITRD
from layouts import KERNEL as LAYOUT_KERNEL
from pvboot.kernel.stub import stub_kernel

MIB = 1 << 20


def assert_limit(res: CliOutcome, out_dir: Path, pattern: str) -> None:
    problems = cli_violations(res, out_dir)
    if res.code == 0:
        problems.append(f"the limit was not enforced: exit 0, {res.answer!r}")
    elif not re.search(pattern, res.message, re.I):
        problems.append(f"the error does not name the limit ({pattern}): {res.message.strip()}")
    assert not problems, "\n".join(problems)


def boot(image: Path, tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> CliOutcome:
    return run_cli(image, tmp_path / "run", extra=extra, env=env)


def with_config(
    text: str | bytes, path: str = "/boot/grub/grub.cfg", **more: bytes | str
) -> Callable[[Path], Path]:
    def build(work: Path) -> Path:
        g = Guest.with_config(text, path)
        g.files.update(more)
        return build_ext4(work, g)

    return build


# -- configs ---------------------------------------------------------------------------------------------

NESTED_3 = "for a in {w}; do for b in {w}; do for c in {w}; do {body}; done; done; done\n"
W100 = " ".join(str(i) for i in range(100))
W25 = " ".join(str(i) for i in range(25))

CONFIG_LIMITS = [
    # (name, config, message)
    ("config-size", None, r"limit of 16777216|exceeds the limit"),
    (
        "grub-entries",
        NESTED_3.format(w=W25, body="menuentry e { linux /boot/vmlinuz; }"),
        r"10000 menu entries",
    ),
    ("interpreter-steps", NESTED_3.format(w=W100, body="true"), r"interpreter steps"),
    ("loop-iterations", "while true; do true; done\n", r"iterations of one loop"),
    ("recursion", "function f { f; }\nf\n", r"nested function calls"),
    ("nesting", "if true; then\n" * 200 + "fi\n" * 200, r"nested blocks"),
    ("source-depth", "source $prefix/grub.cfg\n", r"nested source"),
    ("variable-size", 'set a=x\nwhile true; do set a="$a$a"; done\n', r"variable value longer than"),
    ("command-size", "set a=" + "x" * 900_000 + "\nlinux $a $a $a $a $a\n", r"command longer than"),
]


@pytest.mark.parametrize("name,text,message", CONFIG_LIMITS, ids=[c[0] for c in CONFIG_LIMITS])
def test_config_limit(name: str, text: str | None, message: str, tmp_path: Path) -> None:
    if text is None:  # a sparse 17 MiB grub.cfg
        g = Guest(files={"/boot/vmlinuz": KERNEL}, sparse={"/boot/grub/grub.cfg": (17 * MIB, ENTRY.encode())})
        image = build_ext4(tmp_path, g)
    else:
        image = with_config(ENTRY + text)(tmp_path)
    assert_limit(boot(image, tmp_path), tmp_path / "run" / "out", message)


def test_bls_entries(tmp_path: Path) -> None:
    files: dict[str, bytes | str] = {"/boot/vmlinuz": KERNEL}
    files |= {f"/loader/entries/e{i:04d}.conf": f"title e{i}\nlinux /boot/vmlinuz\n" for i in range(513)}
    assert_limit(
        boot(build_ext4(tmp_path, Guest(files=files)), tmp_path), tmp_path / "run" / "out", r"512 BLS"
    )


def test_extlinux_labels(tmp_path: Path) -> None:
    text = "LABEL l\n KERNEL /boot/vmlinuz\n" * 10_001
    image = with_config(text, path="/boot/extlinux/extlinux.conf")(tmp_path)
    assert_limit(boot(image, tmp_path), tmp_path / "run" / "out", r"10000 labels")


def test_grub_legacy_entries(tmp_path: Path) -> None:
    image = with_config("title t\nkernel /boot/vmlinuz\n" * 10_001, path="/boot/grub/menu.lst")(tmp_path)
    assert_limit(boot(image, tmp_path), tmp_path / "run" / "out", r"10000 entries")


def test_extlinux_include_depth(tmp_path: Path) -> None:
    more = {f"/boot/extlinux/i{i}.cfg": f"INCLUDE /boot/extlinux/i{i + 1}.cfg\n" for i in range(20)}
    image = with_config("INCLUDE /boot/extlinux/i0.cfg\n", path="/boot/extlinux/extlinux.conf", **more)(
        tmp_path
    )
    assert_limit(boot(image, tmp_path), tmp_path / "run" / "out", r"INCLUDE nested deeper than 16")


# -- paths -----------------------------------------------------------------------------------------------


def test_symlink_hops(tmp_path: Path) -> None:
    links = {f"/boot/l{i}": f"l{i + 1}" for i in range(41)} | {"/boot/l41": "vmlinuz"}
    image = build_ext4(tmp_path, Guest(files={"/boot/vmlinuz": KERNEL}, links=links))
    res = boot(image, tmp_path, "--kernel=/boot/l0")
    assert_limit(res, tmp_path / "run" / "out", r"more than 40 symlink hops")


def test_symlink_hops_at_the_limit_boot(tmp_path: Path) -> None:
    """40 hops is what Linux allows; pvboot follows them."""
    links = {f"/boot/l{i}": f"l{i + 1}" for i in range(39)} | {"/boot/l39": "vmlinuz"}
    image = build_ext4(tmp_path, Guest(files={"/boot/vmlinuz": KERNEL}, links=links))
    res = boot(image, tmp_path, "--kernel=/boot/l0")
    assert res.code == 0 and not cli_violations(res, tmp_path / "run" / "out"), res.message


def test_path_components(tmp_path: Path) -> None:
    image = build_ext4(tmp_path, Guest(files={"/boot/vmlinuz": KERNEL}, links={"/boot/d": "."}))
    res = boot(image, tmp_path, "--kernel=/boot" + "/d" * 4100 + "/vmlinuz")
    assert_limit(res, tmp_path / "run" / "out", r"too many components|symlink hops")


def _dirent_blocks(count: int, inum: int) -> bytes:
    """ext2 directory blocks (4 KiB) holding `count` entries '0000'.. pointing at inode `inum`."""
    out, block = bytearray(), bytearray()
    for i in range(count):
        name = f"{i:06x}".encode()
        entry = struct.pack("<IHBB", inum, 16, len(name), 1) + name + bytes(2)
        if len(block) + 16 > 4096:
            last = len(block) - 16  # the last entry's rec_len runs to the end of the block
            block[last + 4 : last + 6] = struct.pack("<H", 4096 - last)
            out += block
            block = bytearray()
        block += entry
    last = len(block) - 16
    block[last + 4 : last + 6] = struct.pack("<H", 4096 - last)
    return bytes(out + block + bytes(4096 - len(block)))


def test_directory_entries(tmp_path: Path) -> None:
    """A directory of 100 001 entries (its blocks written as a file, then the inode made a directory)."""
    g = Guest(files={"/boot/vmlinuz": KERNEL, "/boot/big": _dirent_blocks(100_001, 11)})
    image = build_ext4(tmp_path, g)
    subprocess.run(["tune2fs", "-O", "^metadata_csum", str(image)], check=True, capture_output=True)
    subprocess.run(
        ["debugfs", "-w", "-R", "sif /boot/big mode 040755", str(image)], check=True, capture_output=True
    )
    res = boot(image, tmp_path, "--kernel=/boot/big/none")
    assert_limit(res, tmp_path / "run" / "out", r"more than 100000 directory entries")


# -- partitions and volumes ------------------------------------------------------------------------------


def _mbr_entry(ptype: int, start: int, count: int) -> bytes:
    return struct.pack("<B3sB3sII", 0, b"\0\0\0", ptype, b"\0\0\0", start, count)


def test_mbr_logical_partitions(tmp_path: Path) -> None:
    """An extended partition whose EBR chain holds 300 logical partitions."""
    image = tmp_path / "mbr.img"
    with open(image, "wb") as fh:
        fh.truncate(4 * MIB)
        fh.seek(446)
        fh.write(_mbr_entry(0x05, 2048, 4096) + bytes(48) + b"\x55\xaa")
        for i in range(300):
            fh.seek((2048 + 2 * i) * 512 + 446)
            fh.write(_mbr_entry(0x83, 1, 1) + _mbr_entry(0x05, 2 * (i + 1), 2) + bytes(32) + b"\x55\xaa")
    assert_limit(boot(image, tmp_path), tmp_path / "run" / "out", r"more than 256 logical partitions")


def _gpt(image: Path, count: int, used: int) -> None:
    linux = bytes.fromhex("af3dc60f838472478e793d69d8477de4")
    entries = b"".join(
        linux + bytes(16) + struct.pack("<QQ", 64 + i, 64 + i) + bytes(80) for i in range(used)
    )
    entries += bytes(count * 128 - len(entries))
    header = b"EFI PART" + struct.pack("<IIII", 0x10000, 92, 0, 0) + struct.pack("<QQQQ", 1, 8191, 34, 8000)
    header += bytes(16) + struct.pack("<QIII", 2, count, 128, zlib.crc32(entries))
    header = header[:16] + struct.pack("<I", zlib.crc32(header)) + header[20:]
    with open(image, "wb") as fh:
        fh.truncate(4 * MIB if count * 128 < 3 * MIB else count * 128 + 2 * MIB)
        fh.seek(446)
        fh.write(_mbr_entry(0xEE, 1, 8191) + bytes(48) + b"\x55\xaa")
        fh.seek(512)
        fh.write(header)
        fh.seek(1024)
        fh.write(entries)


def test_gpt_partitions_in_use(tmp_path: Path) -> None:
    _gpt(tmp_path / "gpt.img", 300, 300)
    assert_limit(boot(tmp_path / "gpt.img", tmp_path), tmp_path / "run" / "out", r"more than 256 partitions")


def test_gpt_entry_array(tmp_path: Path) -> None:
    _gpt(tmp_path / "gpt.img", 70_000, 1)
    assert_limit(boot(tmp_path / "gpt.img", tmp_path), tmp_path / "run" / "out", r"entries exceeds the limit")


def _lvm_crc(data: bytes) -> int:
    return ~zlib.crc32(data, ~0xF597A6CF & 0xFFFFFFFF) & 0xFFFFFFFF


def test_lvm_metadata_size(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """The metadata area header claims 2 MiB of metadata text (its own checksum valid)."""
    img = fuzz_images.get("lvm")
    mda = img.region("lvm-mda-header")
    header = bytearray(read_at(img.image, mda.offset, 512))
    header[48:56] = struct.pack("<Q", 2 * MIB)
    header[0:4] = struct.pack("<I", _lvm_crc(bytes(header[4:])))
    image = sparse_copy(img.image, tmp_path / "lvm.img")
    write_at(image, mda.offset, bytes(header))
    assert_limit(
        boot(image, tmp_path), tmp_path / "run" / "out", r"LVM metadata text: 2097152 exceeds the limit"
    )


@pytest.fixture
def qcow2(tmp_path: Path) -> Path:
    if not shutil.which("qemu-img"):
        pytest.skip("needs qemu-img")
    image = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    return image


def test_qcow2_l1_table(qcow2: Path, tmp_path: Path) -> None:
    write_at(qcow2, 36, struct.pack(">I", (256 * MIB) // 8 + 1))  # l1_size
    assert_limit(boot(qcow2, tmp_path), tmp_path / "run" / "out", r"qcow2 L1 \+ refcount tables: \d+ exceeds")


def test_qcow2_refcount_table(qcow2: Path, tmp_path: Path) -> None:
    write_at(qcow2, 56, struct.pack(">I", 5000))  # refcount_table_clusters (64 KiB each)
    assert_limit(boot(qcow2, tmp_path), tmp_path / "run" / "out", r"qcow2 L1 \+ refcount tables: \d+ exceeds")


def test_qcow2_backing_depth(qcow2: Path, tmp_path: Path) -> None:
    previous = qcow2.name
    for i in range(10):
        name = f"layer{i}.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", previous, name, "64M"],
            check=True,
            cwd=tmp_path,
        )
        previous = name
    assert_limit(boot(tmp_path / previous, tmp_path), tmp_path / "run" / "out", r"backing chain depth")


# -- decompression -------------------------------------------------------------------------------------


def test_btrfs_compressed_extent(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """A compressed extent claiming 1 MiB of data (Btrfs's maximum is 128 KiB); node checksum valid."""
    img = fuzz_images.get("btrfs-zstd")
    for region in (r for r in img.regions if r.label.startswith("btrfs-leaf:")):
        node = bytearray(read_at(img.image, region.offset, region.length))
        (nritems,) = struct.unpack_from("<I", node, 96)
        for i in range(min(nritems, 1000)):
            _, ktype, _, data_offset, _ = struct.unpack_from("<QBQII", node, 101 + 25 * i)
            item = 101 + data_offset
            if ktype == 108 and node[item + 20] == 1 and node[item + 16]:  # EXTENT_DATA, regular, compressed
                node[item + 8 : item + 16] = struct.pack("<Q", MIB)  # ram_bytes
                node[0:4] = struct.pack("<I", _crc_std(bytes(node[32:])))
                whole = Region(region.label, region.offset, region.length, True)
                with applied(img.directory, img.image, [Mutation(whole, 0, bytes(node), "crafted")]):
                    # the extent is the kernel's or the initrd's: read both
                    extra = (f"--kernel={LAYOUT_KERNEL}", f"--ramdisk={INITRD}")
                    res = run_cli(img.image, tmp_path / "run", extra=extra)
                assert_limit(res, tmp_path / "run" / "out", r"compressed extent larger than 128 KiB")
                return
    pytest.fail("no compressed extent found in the Btrfs image")


def _bzimage(payload: bytes) -> bytes:
    """A minimal x86 bzImage (boot protocol 2.15) around `payload`."""
    setup_sects = 4
    setup = bytearray(512 * (setup_sects + 1))
    setup[0x1F1] = setup_sects
    setup[0x1FE:0x200] = b"\x55\xaa"
    setup[0x202:0x206] = b"HdrS"
    setup[0x206:0x208] = struct.pack("<H", 0x020F)
    setup[0x211] = 0x01  # loadflags: LOADED_HIGH
    setup[0x248:0x250] = struct.pack("<II", 0, len(payload))  # payload_offset (in the protected part), length
    return bytes(setup) + payload


def test_kernel_payload_ratio(tmp_path: Path) -> None:
    """A bzImage whose xz payload (40 KB) is an ELF vmlinux of 256 MiB whose notes lie 200 MiB in: reading
    them means decompressing 6500 bytes per payload byte, past max_decompress_ratio (1024)."""
    elf = bytearray(stub_kernel(b""))
    elf[128:136] = struct.pack("<Q", 200 * MIB)  # the PT_NOTE header's p_offset
    comp = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, preset=1)
    zeros = bytes(MIB)
    payload = comp.compress(bytes(elf) + zeros[len(elf) :])
    payload += b"".join(comp.compress(zeros) for _ in range(255)) + comp.flush()
    payload += struct.pack("<I", 256 * MIB)  # the decompressed size, appended as Linux's build does
    kernel = _bzimage(payload)
    image = build_ext4(tmp_path, Guest(files={"/boot/vmlinuz": kernel, "/boot/grub/grub.cfg": ENTRY}))
    res = boot(image, tmp_path, "--kernel=/boot/vmlinuz")
    limit = r"needs more than \d+ bytes \(limit: \d+ bytes, or 1024x the payload\)"
    assert_limit(res, tmp_path / "run" / "out", limit)


def test_file_size_cap(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """PYGRUB_MAX_FILE_SIZE_MB, as pygrub honours it (the layouts' kernel is 3 MiB)."""
    img = fuzz_images.get("bare-ext4")
    res = boot(img.image, tmp_path, env={"PYGRUB_MAX_FILE_SIZE_MB": "1"})
    assert_limit(res, tmp_path / "run" / "out", r"over the limit of 1 MiB \(PYGRUB_MAX_FILE_SIZE_MB\)")
    res = boot(
        img.image,
        tmp_path,
        f"--kernel={LAYOUT_KERNEL}",
        f"--ramdisk={INITRD}",
        env={"PYGRUB_MAX_FILE_SIZE_MB": "4"},
    )
    assert_limit(res, tmp_path / "run" / "out", r"ramdisk .* over the limit of 4 MiB")
