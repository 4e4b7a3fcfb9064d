"""validate_dtb on Debian's real DTBs, on hand-made corruptions, and against libfdt's fdt_check_full."""

from __future__ import annotations

import os
import random
import struct
import subprocess
from pathlib import Path

import pytest

from pvboot.errors import LimitError
from pvboot.kernel import DtbError, KernelLimits, validate_dtb


def fdt(props: dict[bytes, bytes], version: int = 17, children: int = 1) -> bytes:
    """A flattened device tree built per the Devicetree Specification, chapter 5."""
    strings = b""
    offsets: dict[bytes, int] = {}
    struct_block = b""

    def tok(value: int) -> bytes:
        return struct.pack(">I", value)

    def node(name: bytes, node_props: dict[bytes, bytes], kids: int) -> bytes:
        nonlocal strings
        out = tok(1) + name + b"\0" + b"\0" * (-(len(name) + 1) % 4)
        for key, value in node_props.items():
            if key not in offsets:
                offsets[key] = len(strings)
                strings += key + b"\0"
            out += tok(3) + struct.pack(">II", len(value), offsets[key]) + value + b"\0" * (-len(value) % 4)
        for i in range(kids):
            out += node(b"child@%d" % i, {b"reg": struct.pack(">I", i)}, 0)
        return out + tok(2)

    struct_block = node(b"", props, children) + tok(9)
    header = 40
    rsv = header
    rsvmap = struct.pack(">QQ", 0x80000000, 0x1000) + bytes(16)
    off_struct = rsv + len(rsvmap)
    off_strings = off_struct + len(struct_block)
    total = off_strings + len(strings)
    head = struct.pack(
        ">10I",
        0xD00DFEED,
        total,
        off_struct,
        off_strings,
        rsv,
        version,
        16,
        0,
        len(strings),
        len(struct_block),
    )
    return head + rsvmap + struct_block + strings


GOOD = fdt(
    {b"model": b"Test Board\0", b"compatible": b"vendor,board\0vendor,soc\0", b"#address-cells": b"\0\0\0\1"}
)


def test_handmade_tree():
    info = validate_dtb(GOOD, "(hd0,msdos1)/boot/dtbs/test.dtb")
    assert info.model == "Test Board"
    assert info.compatible == ["vendor,board", "vendor,soc"]
    assert (info.version, info.size, info.nodes, info.reserved) == (17, len(GOOD), 2, 1)
    assert info.to_json()["source"] == "(hd0,msdos1)/boot/dtbs/test.dtb"
    assert validate_dtb(GOOD + b"\xff" * 100, "x").size == len(GOOD)  # trailing bytes: only totalsize counts


def test_debian_arm64_dtbs(arm64_kernel):
    for path in arm64_kernel.dtbs:
        info = validate_dtb(path.read_bytes(), str(path))
        assert info.version == 17 and info.compatible, path
        assert info.model, path


def corrupt(data: bytes, offset: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(">I", out, offset, value)
    return bytes(out)


OFF_STRUCT = struct.unpack_from(">I", GOOD, 8)[0]
OFF_STRINGS = struct.unpack_from(">I", GOOD, 12)[0]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "too short"),
        (b"PVBOOT-TEST-DTB" * 4, "no device tree magic"),
        (GOOD[: len(GOOD) // 2], "truncated"),
        (corrupt(GOOD, 20, 15), "too old"),
        (corrupt(GOOD, 24, 18), "unsupported"),
        (corrupt(GOOD, 4, 10), "impossible"),
        (corrupt(GOOD, 8, len(GOOD) + 4), "structure block"),
        (corrupt(GOOD, 12, len(GOOD) + 4), "strings block"),
        (corrupt(GOOD, 16, len(GOOD) - 8), "reservation map"),
        (corrupt(GOOD, OFF_STRUCT, 7), "unknown structure token"),
        (corrupt(GOOD, OFF_STRUCT + 12, 0xFFFF), "runs past the structure block"),
        (corrupt(GOOD, OFF_STRUCT + 16, 0x1000), "outside the strings block"),
        (corrupt(GOOD, OFF_STRINGS - 8, 9), "FDT_END inside an open node"),
        (corrupt(GOOD, OFF_STRINGS - 4, 4), "content after the root node"),
        (corrupt(GOOD, 36, struct.unpack_from(">I", GOOD, 36)[0] - 4), "ends without FDT_END"),
        (corrupt(GOOD, OFF_STRUCT, 2), "FDT_END_NODE without an open node"),
        (corrupt(GOOD, OFF_STRUCT + 4, 0x41000000), "the root node has a name"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_corrupt_trees_are_refused_naming_the_file(data, words):
    with pytest.raises(DtbError) as err:
        validate_dtb(data, "(hd0,gpt2)/dtbs/board.dtb")
    assert str(err.value).startswith("device tree (hd0,gpt2)/dtbs/board.dtb: ")
    assert words in str(err.value)


def test_bounds():
    with pytest.raises(LimitError, match="exceeds the limit"):
        validate_dtb(GOOD, "x", KernelLimits(max_dtb_size=64))
    deep = GOOD
    with pytest.raises(LimitError, match="deeper"):
        validate_dtb(deep, "x", KernelLimits(max_dtb_depth=1))


SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-libfdt is built for it, not for a virtualenv
LIBFDT_VERDICTS = """
import sys, libfdt
for path in sys.argv[1:]:
    data = bytearray(open(path, "rb").read())
    print(int(len(data) >= 28 and libfdt.fdt_check_full(data, len(data)) == 0))
"""


def libfdt_verdicts(blobs: list[bytes], work: Path) -> list[bool]:
    """libfdt's fdt_check_full on each blob: through pylibfdt when this interpreter has it, else through
    Debian's python3-libfdt in the system interpreter (one process for all blobs)."""
    try:
        import libfdt  # type: ignore[import-not-found]
    except ImportError:
        libfdt = None
    if libfdt is not None:
        return [len(b) >= 28 and libfdt.fdt_check_full(bytearray(b), len(b)) == 0 for b in blobs]
    probe = [SYSTEM_PYTHON, "-c", "import libfdt"]
    if not os.access(SYSTEM_PYTHON, os.X_OK) or subprocess.run(probe, capture_output=True).returncode:
        pytest.skip("libfdt is the reference: pylibfdt (PyPI) or python3-libfdt (Debian) is not installed")
    paths = []
    for index, blob in enumerate(blobs):
        path = work / f"{index}.dtb"
        path.write_bytes(blob)
        paths.append(str(path))
    out = subprocess.run(
        [SYSTEM_PYTHON, "-c", LIBFDT_VERDICTS, *paths], capture_output=True, text=True, check=True
    )
    verdicts = [line == "1" for line in out.stdout.split()]
    assert len(verdicts) == len(blobs)
    return verdicts


def test_agrees_with_libfdt_on_mutations(arm64_kernel, tmp_path: Path):
    seeds = [p.read_bytes() for p in arm64_kernel.dtbs[:20]] + [GOOD]
    rng = random.Random(2024)
    blobs: list[bytes] = []
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        kind = rng.randrange(4)
        if kind == 0:
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:
            data = data[: rng.randrange(len(data))]
        elif kind == 2:
            field = rng.choice([1, 2, 3, 4, 6, 8, 9])  # not the version fields: pvboot refuses v < 16
            struct.pack_into(
                ">I",
                data,
                field * 4,
                rng.randrange(1 << 32)
                if rng.random() < 0.3
                else (struct.unpack_from(">I", data, field * 4)[0] + rng.randrange(-8, 9)) & 0xFFFFFFFF,
            )
        else:
            off, size = struct.unpack_from(">I", data, 8)[0], struct.unpack_from(">I", data, 36)[0]
            pos = off + rng.randrange(size) // 4 * 4
            struct.pack_into(">I", data, pos, rng.choice([1, 2, 3, 4, 9, 0, rng.randrange(1 << 32)]))
        blobs.append(bytes(data))
    differences = []
    for blob, theirs in zip(blobs, libfdt_verdicts(blobs, tmp_path), strict=True):
        try:
            validate_dtb(blob, "x")
            mine = True
        except (DtbError, LimitError):
            mine = False
        if mine != theirs and (mine or not _stricter_by_design(blob)):
            differences.append((blob[:8].hex(), mine))
    assert differences == []


def _stricter_by_design(blob: bytes) -> bool:
    """Trees libfdt accepts and pvboot refuses on purpose: no root node, a property outside any node."""
    try:
        validate_dtb(blob, "x")
    except DtbError as exc:
        return "no root node" in str(exc) or "outside any node" in str(exc)
    return False
