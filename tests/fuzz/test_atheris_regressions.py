"""Every finding of the coverage-guided fuzzer (tests/fuzz/run_atheris.py), as a regression test.

The pattern of test_regressions.py: each finding is checked where the fuzzer found it (the reader's
entry point, on the minimised input, under the reader's limits) and through the real CLI on a guest
disk built with the real tools. Findings whose fix is a change to src/ are xfail(strict=True) and listed
in atheris_targets.KNOWN (so that fuzz runs count them apart): once fixed they XPASS, fail loudly, and
the marker and the KNOWN entry go.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzzkit import cli_violations, run_cli
from guestimg import ENTRY, INITRD, KERNEL, Guest, build_ext4

from pvboot.disk import fs as fsprobe
from pvboot.disk.fs._csum import btrfs_csum
from pvboot.errors import PvbootError
from pvboot.kernel import check_initrd, check_kernel
from pvboot.kernel.decompress import LZOP_MAGIC
from pvboot.limits import Limits

# An LZO1X block dissect.util's Rust decoder (lzokay-native) panics on ("index out of bounds"), found by
# the `kernel`, `initrd` and `decompress` targets (seed 20240611) and minimised from 179 bytes.
LZO_PANIC_BLOCK = bytes.fromhex("0208545200000000")
# A .lzma ("FORMAT_ALONE") header declaring a 4 GiB dictionary: liblzma allocates it when decoding starts.
LZMA_HUGE_DICT = b"\x5d\x00\xff\xff\xff" + b"\xff" * 8 + bytes(4)


def lzop_stream(block: bytes, out_len: int = 1024) -> bytes:
    """An lzop file (the container `lzop -9` writes, version 0x1040, no checksums) holding one block."""
    head = LZOP_MAGIC + struct.pack(">HHHBBI", 0x1040, 0x2080, 0x0940, 1, 9, 0)
    head += struct.pack(">III", 0o100644, 0, 0) + b"\0" + bytes(4)  # mode, mtime, no name, header checksum
    return head + struct.pack(">II", out_len, len(block)) + block + struct.pack(">I", 0)


def bzimage(payload: bytes, decoded: int) -> bytes:
    """An x86 bzImage (boot protocol 2.15) whose payload is `payload` with Linux's size trailer."""
    setup = bytearray(5 * 512)
    setup[0x1F1] = 4
    setup[0x1FE:0x200] = b"\x55\xaa"
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020F)
    struct.pack_into("<II", setup, 0x248, 256, len(payload) + 4)
    return bytes(setup) + b"\x90" * 256 + payload + struct.pack("<I", decoded)


def in_reader(fn: Callable[[], object]) -> dict[str, str]:
    """`fn()` in a forked child under the confined reader's address-space limit (what the process holds
    plus Limits.child_address_space, as run_atheris.py caps each input): {"ok": repr}, {"error": its
    PvbootError} or {"raised": type, "traceback": ...}, and "grown_mib", how much its peak RSS grew."""
    rpipe, wpipe = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            with open("/proc/self/statm") as fh:
                vm = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            limit = vm + Limits().child_address_space
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # the peak RSS starts again from here
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            try:
                result = {"ok": repr(fn())[:500]}
            except PvbootError as exc:
                result = {"error": f"{type(exc).__name__}: {exc}"}
            except BaseException as exc:
                result = {"raised": type(exc).__name__, "traceback": traceback.format_exc()[-2000:]}
            result["grown_mib"] = str((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) >> 10)
            os.write(wpipe, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(wpipe)
    with os.fdopen(rpipe, "rb") as fh:
        raw = fh.read()
    os.waitpid(pid, 0)
    return json.loads(raw) if raw else {"raised": "the child died"}


def boot_guest(tmp_path: Path, kernel: bytes = KERNEL, initrd: bytes = INITRD) -> tuple[int, str, list[str]]:
    guest = Guest(files={"/boot/vmlinuz": kernel, "/boot/initrd.img": initrd, "/boot/grub/grub.cfg": ENTRY})
    res = run_cli(build_ext4(tmp_path, guest), tmp_path / "run")
    return res.code, res.message, cli_violations(res, tmp_path / "run" / "out")


# -- fixed: dissect.util's lzo decoder panics (pyo3's PanicException, a BaseException) -------------------


def test_regression_lzo_panic_kernel_check() -> None:
    """`kernel` target: a bzImage with an lzo payload whose block panics the decoder. check_kernel must
    end with a verdict (a problem: corrupt lzo data) or a PvbootError, never PanicException."""
    kernel = bzimage(lzop_stream(LZO_PANIC_BLOCK), 1024)
    outcome = in_reader(lambda: check_kernel(io.BytesIO(kernel), len(kernel)).problems)
    assert "raised" not in outcome, outcome.get("traceback")


def test_regression_lzo_panic_initrd_check() -> None:
    """`initrd` target: an lzop initrd whose first block panics the decoder: check_initrd must warn."""
    initrd = lzop_stream(LZO_PANIC_BLOCK)
    outcome = in_reader(lambda: check_initrd(io.BytesIO(initrd), len(initrd), "(hd0)/boot/initrd.img"))
    assert "raised" not in outcome, outcome.get("traceback")
    assert "lzo" in outcome.get("ok", ""), outcome


def test_regression_lzo_panic_kernel_cli(tmp_path: Path) -> None:
    """Through the CLI the reader dies: `pvboot: RuntimeError: the process reading the guest disk died
    (exit status 70)`. It must refuse the kernel naming it, as for any other corrupt payload."""
    code, message, problems = boot_guest(tmp_path, kernel=bzimage(lzop_stream(LZO_PANIC_BLOCK), 1024))
    assert code != 0 and not problems, (message, problems)
    assert "died" not in message and "vmlinuz" in message, message


def test_regression_lzo_panic_initrd_cli(tmp_path: Path) -> None:
    """The same block in an lzop initrd: an initrd pvboot cannot decode is only warned about (the kernel
    may still use it), so the boot goes on -- today the reader dies and the boot fails."""
    code, message, problems = boot_guest(tmp_path, initrd=lzop_stream(LZO_PANIC_BLOCK))
    assert code == 0 and not problems, (message, problems)


# -- fixed: an lzma/xz header sizes the decoder's dictionary, up to 4 GiB (now under a memlimit) ----------


def test_regression_initrd_lzma_dict() -> None:
    """`decompress` and `initrd` targets: a 17-byte initrd, an .lzma header declaring a 4 GiB dictionary.
    check_initrd must warn ("a lzma stream that does not decode"), not raise MemoryError."""
    outcome = in_reader(lambda: check_initrd(io.BytesIO(LZMA_HUGE_DICT), len(LZMA_HUGE_DICT), "initrd.img"))
    assert "raised" not in outcome, outcome.get("traceback")


def test_regression_initrd_lzma_dict_cli(tmp_path: Path) -> None:
    """Through the CLI the boot fails: `pvboot: RuntimeError: guest data needs more than the memory limit
    of 512 MiB`, for a 17-byte initrd that should only be warned about."""
    code, message, problems = boot_guest(tmp_path, initrd=LZMA_HUGE_DICT)
    assert code == 0 and not problems, (message, problems)


def test_lzma_dict_kernel_is_refused_cleanly() -> None:
    """The same header as a bzImage payload: check_kernel already turns the MemoryError into a LimitError
    (a kernel Xen could not load anyway): one pvboot error, no exception."""
    kernel = bzimage(LZMA_HUGE_DICT, 1 << 20)
    outcome = in_reader(lambda: check_kernel(io.BytesIO(kernel), len(kernel)).problems)
    assert "raised" not in outcome, outcome.get("traceback")


# -- fixed: an ext superblock's log2 block size is shifted before it is checked ------------------------------


def huge_block_size_ext2(tmp_path: Path) -> bytes:
    """`ext` target, four heavy-input notes (inputs of 385-678 bytes grew the peak RSS by over 256 MiB):
    a real 1 MiB ext2 (mkfs.ext2) whose superblock's s_log_block_size and s_log_cluster_size are
    0x6d6d6d6d."""
    if shutil.which("mkfs.ext2") is None:
        pytest.skip("needs mkfs.ext2")
    image = tmp_path / "ext2.img"
    subprocess.run(["mkfs.ext2", "-q", "-F", "-b", "1024", str(image), "1M"], check=True, capture_output=True)
    data = bytearray(image.read_bytes())
    struct.pack_into("<II", data, 1024 + 24, 0x6D6D6D6D, 0x6D6D6D6D)
    return bytes(data)


def test_huge_ext_block_size_fails_within_the_reader_limits(tmp_path: Path) -> None:
    """What holds today: under the reader's 512 MiB the mount fails with a PvbootError."""
    data = huge_block_size_ext2(tmp_path)
    outcome = in_reader(lambda: fsprobe.open_filesystem(io.BytesIO(data), Limits()))
    assert "error" in outcome, outcome


def test_regression_ext_log_block_size_checked_first(tmp_path: Path) -> None:
    """It must be refused as a bad block size, cheaply (s_log_block_size over 6 is no ext2/3/4), not by
    the address-space limit or a ValueError about integer-to-string conversion."""
    data = huge_block_size_ext2(tmp_path)
    outcome = in_reader(lambda: fsprobe.open_filesystem(io.BytesIO(data), Limits()))
    assert int(outcome["grown_mib"]) < 64, outcome
    assert "block size" in outcome.get("error", ""), outcome


# -- a Btrfs chunk with no stripe on this device looped in dissect.btrfs ----------------------------------


class _CpuAlarm(BaseException):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _CpuAlarm("over its CPU time")


def missing_stripes_btrfs(tmp_path: Path) -> bytes:
    """`btrfs` target (seed 20240611, input of 1781 bytes, re-signed): a real mkfs.btrfs image whose
    superblock names device 2 (dev_item.devid) and whose system chunk (sys_chunk_array) is RAID1C3 with
    both stripes on device 1; the superblock checksum recomputed, as a guest can."""
    if shutil.which("mkfs.btrfs") is None:
        pytest.skip("needs mkfs.btrfs")
    image = tmp_path / "btrfs.img"
    with open(image, "wb") as fh:
        fh.truncate(128 << 20)
    subprocess.run(["mkfs.btrfs", "-q", "-f", str(image)], check=True, capture_output=True)
    data = bytearray(image.read_bytes())
    sb, chunk = 0x10000, 0x10000 + 0x32B + 17  # the superblock; the first chunk of its sys_chunk_array
    struct.pack_into("<Q", data, sb + 0xC9, 2)  # dev_item.devid
    struct.pack_into("<Q", data, chunk + 24, (1 << 1) | (1 << 9))  # type: SYSTEM | RAID1C3
    data[sb : sb + 4] = btrfs_csum(
        struct.unpack_from("<H", data, sb + 0xC4)[0], bytes(data[sb + 32 : sb + 4096])
    )
    return bytes(data)


def test_regression_btrfs_missing_stripes(tmp_path: Path) -> None:
    """Mounting must fail at once (no stripe of the system chunk is readable), not spin until the reader's
    wall clock: within 5 s of CPU, with a PvbootError."""
    data = missing_stripes_btrfs(tmp_path)

    def mount() -> object:
        signal.signal(signal.SIGPROF, _alarm)
        signal.setitimer(signal.ITIMER_PROF, 5)
        try:
            return fsprobe.open_filesystem(io.BytesIO(data), Limits())
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)

    outcome = in_reader(mount)
    assert "no stripe of the chunk" in outcome.get("error", ""), outcome


# -- a FAT cluster chain that loops was walked for as long as the file's or directory's size said ---------


def fat32_with_loop(tmp_path: Path, target: str, file_size: int = 0xFFFFFFFF) -> bytes:
    """`fat` target (seeds 20240611..15, five CPU-alarm findings): a real FAT32 (mkfs.vfat -F 32 -s 1,
    mcopy) holding /boot/grub/grub.cfg and /boot/vmlinuz, then either the kernel's size set to
    `file_size` (the findings: 4 GiB - 1) and its first cluster's FAT entry pointing at itself ("file"), or
    /boot's cluster doing so, its free slots marked deleted ("dir")."""
    if shutil.which("mkfs.vfat") is None or shutil.which("mcopy") is None:
        pytest.skip("needs mkfs.vfat and mcopy")
    tree = tmp_path / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text(ENTRY)
    (tree / "boot" / "vmlinuz").write_bytes(KERNEL)
    image = tmp_path / "fat.img"
    with open(image, "wb") as fh:
        fh.truncate(40 << 20)
    subprocess.run(["mkfs.vfat", "-F", "32", "-s", "1", str(image)], check=True, capture_output=True)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    subprocess.run(["mcopy", "-s", "-Q", "-i", str(image), str(tree / "boot"), "::/"], check=True, env=env)
    data = bytearray(image.read_bytes())
    sector, per_cluster, reserved, fats = struct.unpack_from("<HBHB", data, 11)
    (fat_sectors,), (root_cluster,) = struct.unpack_from("<I", data, 36), struct.unpack_from("<I", data, 44)
    cluster_bytes = sector * per_cluster
    first_data = (reserved + fats * fat_sectors) * sector

    def entry(directory_cluster: int, name: bytes) -> int:
        start = first_data + (directory_cluster - 2) * cluster_bytes
        at = data.find(name, start, start + cluster_bytes)
        assert at >= 0, name
        return at

    boot = entry(root_cluster, b"BOOT       ")
    boot_cluster = (
        struct.unpack_from("<H", data, boot + 26)[0] | struct.unpack_from("<H", data, boot + 20)[0] << 16
    )
    kernel = entry(boot_cluster, b"VMLINUZ    ")
    kernel_cluster = struct.unpack_from("<H", data, kernel + 26)[0]
    looped = kernel_cluster if target == "file" else boot_cluster
    if target == "file":
        struct.pack_into("<I", data, kernel + 28, file_size)  # DIR_FileSize
    else:  # free slots become deleted ones, so that no end-of-directory entry stops a scan
        start = first_data + (boot_cluster - 2) * cluster_bytes
        for slot in range(start, start + cluster_bytes, 32):
            if data[slot] == 0:
                data[slot] = 0xE5
    for copy in range(fats):
        struct.pack_into("<I", data, (reserved + copy * fat_sectors) * sector + 4 * looped, looped)
    return bytes(data)


def _fat_cpu_bound(data: bytes, action: Callable[[object], object]) -> dict[str, str]:
    def run() -> object:
        signal.signal(signal.SIGPROF, _alarm)
        signal.setitimer(signal.ITIMER_PROF, 1)
        try:
            from pvboot.disk.tree import FileTree

            return action(FileTree(fsprobe.open_filesystem(io.BytesIO(data), Limits()), Limits()))
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)

    return in_reader(run)


@pytest.mark.parametrize(
    ("file_size", "error"), [(0xFFFFFFFF, "larger than the volume"), (30 << 20, "loops")]
)
def test_regression_fat_file_chain_loop(tmp_path: Path, file_size: int, error: str) -> None:
    """Mapping the kernel must fail at once, not after 8 Mi steps: within 1 s of CPU. A size the volume
    cannot hold is refused before the walk; a plausible one (30 MiB of a 40 MiB volume) when the walk
    comes back to a cluster it has seen."""
    data = fat32_with_loop(tmp_path, "file", file_size)
    outcome = _fat_cpu_bound(data, lambda tree: tree.lookup("/boot/vmlinuz").extents())  # type: ignore[attr-defined]
    assert error in outcome.get("error", ""), outcome


def test_regression_fat_directory_chain_loop(tmp_path: Path) -> None:
    """Listing /boot must fail (its chain loops): it used to list its two names 4096 times (the 2 MiB
    directory cap), and a cluster full of live entries cost 2 s of parsing per scan (the finding)."""
    data = fat32_with_loop(tmp_path, "dir")
    outcome = _fat_cpu_bound(data, lambda tree: tree.listdir("/boot"))  # type: ignore[attr-defined]
    assert "loops" in outcome.get("error", ""), outcome


def test_regression_fat_file_chain_loop_cli(tmp_path: Path) -> None:
    """Through the CLI: one error line that names the FAT chain, soon (it used to be the memory limit)."""
    image = tmp_path / "disk.img"
    image.write_bytes(fat32_with_loop(tmp_path, "file"))
    res = run_cli(image, tmp_path / "run")
    assert res.code != 0 and not cli_violations(res, tmp_path / "run" / "out"), res.message
    assert "memory" not in res.message and res.wall < 3, (res.message, res.wall)
