"""Hostile guests through the real CLI, as libxl runs pvboot: each ends within 30 s and 1 GiB with one
`pvboot: ` line or a correct answer, and leaves nothing behind.

`pvboot -q --output=F --output-format=simple0 --output-directory=D IMG` runs under a wrapper process that
reports wall time and the peak RSS of the whole pvboot process tree (tests/fuzz/fuzzkit.py). "Correct"
means the files copied are the guest's own (never a dom0 file), byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fuzz_images import FuzzImages
from fuzz_targets import signed
from fuzzkit import CliOutcome, Mutation, applied, cli_violations, read_at, run_cli
from guestimg import ENTRY, INITRD, KERNEL, Guest, build_ext4

from pvboot.kernel.stub import stub_kernel

# the guest's own /etc/passwd, made a kernel pvboot's check accepts: booting it shows which file was read
GUEST_PASSWD = stub_kernel(b"guest-root:x:0:0:this is the guest's own /etc/passwd:/root:/bin/sh\n")
ERROR, OK, EITHER = "error", "ok", "either"


@dataclass
class Case:
    name: str
    build: Callable[[Path], Path]  # work directory -> image
    expect: str = ERROR  # error | ok | either
    message: str = ""  # a regex the error line must match (names the limit or the problem)
    kernel: bytes = KERNEL  # what an `ok` run must have copied
    initrd: bytes | None = INITRD
    extra: tuple[str, ...] = ()


def config(text: str | bytes, **more: bytes | str) -> Callable[[Path], Path]:
    def build(work: Path) -> Path:
        guest = Guest.with_config(text)
        guest.files.update(more)
        return build_ext4(work, guest)

    return build


def guest(g: Guest) -> Callable[[Path], Path]:
    return lambda work: build_ext4(work, g)


def words(n: int) -> str:
    return " ".join(str(i) for i in range(n))


def _nested_for(depth: int, body: str) -> str:
    head = "".join(f"for v{i} in {words(10)}; do\n" for i in range(depth))
    return head + body + "done\n" * depth


def _qcow2_backing(backing: str) -> Callable[[Path], Path]:
    def build(work: Path) -> Path:
        base = build_ext4(work, Guest.with_config(ENTRY), "base.img")
        image = work / "overlay.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base), str(image)],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["qemu-img", "rebase", "-q", "-u", "-f", "qcow2", "-F", "raw", "-b", backing, str(image)],
            check=True,
            capture_output=True,
        )
        return image

    return build


MILLION_LITERAL = "menuentry x {\n}\n" * 1_000_000  # 16 000 000 bytes: under the 16 MiB config cap
LONG_CHAIN = {f"/boot/l{i}": f"l{i + 1}" for i in range(60)} | {"/boot/l60": "vmlinuz"}

CASES = [
    # -- loops and recursion
    Case("loop-while-true", config(ENTRY + "while true; do true; done\n"), message="iterations|steps"),
    Case("loop-nested-million-steps", config(ENTRY + _nested_for(6, "true\n")), message="steps|iterations"),
    Case("recursion-function", config(ENTRY + "function f { f; }\nf\n"), message="nested"),
    Case("recursion-mutual", config(ENTRY + "function f { g; }\nfunction g { f; }\nf\n"), message="nested"),
    Case("recursion-deep-blocks", config(ENTRY + "if true; then\n" * 20000 + "fi\n" * 20000), EITHER),
    Case("recursion-eval-self", config(ENTRY + "set x='eval $x'\neval $x\n"), message="nested"),
    Case("self-sourcing-config", config(ENTRY + "source $prefix/grub.cfg\n"), message="nested|source"),
    Case("self-configfile", config(ENTRY + "configfile $prefix/grub.cfg\n"), message="nested|source"),
    Case(
        "mutually-sourcing-configs",
        config(ENTRY + "source $prefix/a.cfg\n", **{"/boot/grub/a.cfg": "source $prefix/grub.cfg\n"}),
        message="nested|source",
    ),
    Case(
        "variable-doubling",
        config(ENTRY + 'set a=x\nwhile true; do set a="$a$a"; done\n'),
        message="variable",
    ),
    Case("regexp-backtracking", config(f"regexp '(a|aa)*c' '{'a' * 4000}'\n" + ENTRY), EITHER),
    Case("submenus-nested-deep", config("submenu s {\n" * 300 + ENTRY + "}\n" * 300), EITHER),
    # -- sizes
    Case(
        "million-generated-entries",
        config(_nested_for(6, 'menuentry "e$v0$v1$v2$v3$v4$v5" { linux /boot/vmlinuz; }\n')),
        message="entries|steps",
    ),
    Case("million-literal-entries", config(MILLION_LITERAL), message="entries|steps"),
    Case(
        "grub-cfg-100mb",
        guest(
            Guest(
                files={"/boot/vmlinuz": KERNEL}, sparse={"/boot/grub/grub.cfg": (100 << 20, ENTRY.encode())}
            )
        ),
        message="limit",
    ),
    Case("one-15mb-line", config("set x=" + "a" * (15 << 20) + "\n" + ENTRY), EITHER),
    # -- symlinks
    Case(
        "symlink-loop-config",
        guest(
            Guest(
                files={"/boot/vmlinuz": KERNEL},
                links={
                    "/boot/grub/grub.cfg": "a.cfg",
                    "/boot/grub/a.cfg": "b.cfg",
                    "/boot/grub/b.cfg": "a.cfg",
                },
            )
        ),
        message="symlink|no usable|no boot",
    ),
    Case(
        "symlink-self-kernel",
        guest(
            Guest(
                files={"/boot/grub/grub.cfg": "menuentry x { linux /boot/vmlinuz }\n"},
                links={"/boot/vmlinuz": "vmlinuz"},
            )
        ),
    ),
    Case(
        "symlink-chain-of-61",
        guest(
            Guest(
                files={"/boot/grub/grub.cfg": "menuentry x { linux /boot/l0 }\n", "/boot/vmlinuz": KERNEL},
                links=LONG_CHAIN,
            )
        ),
    ),
    Case(
        "symlink-dir-loop-deep",
        guest(
            Guest(
                files={"/boot/grub/grub.cfg": "menuentry x { linux /boot" + "/d" * 50 + "/vmlinuz }\n"}
                | {"/boot/vmlinuz": KERNEL},
                links={"/boot/d": "."},
            )
        ),
    ),
    Case(
        "symlink-dir-loop-shallow",
        guest(
            Guest(
                files={"/boot/grub/grub.cfg": "menuentry x { linux /boot" + "/d" * 10 + "/vmlinuz }\n"}
                | {"/boot/vmlinuz": KERNEL},
                links={"/boot/d": "."},
            )
        ),
        OK,
        initrd=None,
    ),
    # -- reaching for dom0's files
    Case("dotdot-to-dom0-shadow", config("menuentry x { linux /../../../../../../etc/shadow }\n")),
    Case(
        "dotdot-reaches-guest-passwd-only",
        config("menuentry x { linux /boot/../../../../../../etc/passwd }\n", **{"/etc/passwd": GUEST_PASSWD}),
        OK,
        kernel=GUEST_PASSWD,
        initrd=None,
    ),
    Case(
        "absolute-symlink-stays-in-guest",
        guest(
            Guest(
                files={"/boot/grub/grub.cfg": "menuentry x { linux /boot/k }\n", "/etc/passwd": GUEST_PASSWD},
                links={"/boot/k": "/etc/passwd"},
            )
        ),
        OK,
        kernel=GUEST_PASSWD,
        initrd=None,
    ),
    Case(
        "relative-symlink-climbing-out",
        guest(
            Guest(
                files={"/boot/grub/grub.cfg": "menuentry x { linux /boot/k }\n"},
                links={"/boot/k": "../../../../../../../../etc/shadow"},
            )
        ),
    ),
    Case("host-device-name", config("menuentry x { linux (host)/etc/passwd }\n")),
    Case("proc-self-path", config("menuentry x { linux /proc/self/environ }\n")),
    Case("kernel-option-dom0-path", config(ENTRY), extra=("--kernel=/etc/shadow",)),
    Case("kernel-option-relative-path", config(ENTRY), extra=("--kernel=../../../etc/passwd",)),
    Case("qcow2-backing-absolute-dom0-path", _qcow2_backing("/etc/passwd"), message="backing"),
    Case("qcow2-backing-climbing-out", _qcow2_backing("../../../../etc/passwd"), message="backing"),
    # -- NULs, newlines and terminal escapes
    Case(
        "nul-in-arguments",
        config(b"menuentry x { linux /boot/vmlinuz root=/dev/xvda1 a\0b\n}\n"),
        EITHER,
        initrd=None,
    ),
    Case(
        "newline-in-arguments",
        config("menuentry x { linux /boot/vmlinuz 'root=/dev/xvda1\nevil' }\n"),
        EITHER,
    ),
    Case(
        "escape-in-arguments",
        config('menuentry x { linux /boot/vmlinuz "\x1b]0;owned\x07\x1b[2J" }\n'),
        EITHER,
    ),
    Case(
        "escape-in-title",
        config('menuentry "\x1b]0;owned\x07\x1b[2J\x1b[31mred" {\n linux /boot/vmlinuz\n}\n'),
        EITHER,
        initrd=None,
    ),
    Case(
        "newline-in-kernel-file-name",
        config("menuentry x { linux '/boot/vm\nlinuz' }\n", **{"/boot/vm\nlinuz": KERNEL}),
        EITHER,
        initrd=None,
    ),
    Case("nul-in-title", config(b'menuentry "a\0b" {\n linux /boot/vmlinuz\n}\n'), EITHER, initrd=None),
    # -- BLS, extlinux, GRUB legacy
    Case(
        "bls-600-entries",
        guest(
            Guest(
                files={"/boot/vmlinuz": KERNEL}
                | {f"/loader/entries/e{i:04d}.conf": f"title e{i}\nlinux /boot/vmlinuz\n" for i in range(600)}
            )
        ),
        message="entries",
    ),
    Case(
        "extlinux-include-self",
        guest(
            Guest(
                files={
                    "/boot/vmlinuz": KERNEL,
                    "/boot/extlinux/extlinux.conf": (
                        "INCLUDE /boot/extlinux/extlinux.conf\nLABEL a\n KERNEL /boot/vmlinuz\n"
                    ),
                }
            )
        ),
        EITHER,
        initrd=None,
    ),
    Case(
        "grub-legacy-20000-titles",
        guest(
            Guest(
                files={
                    "/boot/vmlinuz": KERNEL,
                    "/boot/grub/menu.lst": "title t\nkernel /boot/vmlinuz\n" * 20000,
                }
            )
        ),
        message="entries",
    ),
]


def check(case: Case, res: CliOutcome, out_dir: Path) -> list[str]:
    expect: dict[str, str | None] = {
        "kernel": hashlib.sha256(case.kernel).hexdigest(),
        "ramdisk": hashlib.sha256(case.initrd).hexdigest() if case.initrd is not None else None,
    }
    problems = cli_violations(res, out_dir, expect)
    if case.expect == ERROR and res.code == 0:
        problems.append(f"expected a failure, got exit 0: {res.answer!r}")
    if case.expect == OK and res.code != 0:
        problems.append(f"expected a boot, got: {res.message.strip()}")
    if case.message and res.code != 0 and not re.search(case.message, res.message, re.I):
        problems.append(f"the error does not name the problem ({case.message}): {res.message.strip()}")
    answer = res.answer.replace(b"\0", b"")
    if any(c < 0x20 or c == 0x7F for c in answer):
        problems.append(f"control characters in the answer: {res.answer!r}")
    return problems


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_guest(case: Case, tmp_path: Path) -> None:
    image = case.build(tmp_path / "img")
    res = run_cli(image, tmp_path / "run", extra=case.extra)
    problems = check(case, res, tmp_path / "run" / "out")
    assert not problems, f"{case.name}: " + "\n".join(problems)


def test_escape_in_title_is_not_listed_raw(tmp_path: Path) -> None:
    """`-l` prints titles on the terminal: no escape sequence of the guest's may reach it."""
    image = config('menuentry "\x1b]0;owned\x07\x1b[2J\x1b[31mred" {\n linux /boot/vmlinuz\n}\n')(tmp_path)
    res = run_cli(image, tmp_path / "run", argv=["-l", str(image)])
    assert res.code == 0, res.message
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", res.stdout), res.stdout
    assert res.maxrss < 1 << 30 and res.wall < 30


# -- mutated ext4 and XFS images: structures that point at themselves, impossible sizes ---------------


def _mutate(
    fuzz_images: FuzzImages, layout: str, label: str, rel: int, data: bytes, tmp_path: Path
) -> CliOutcome:
    img = fuzz_images.get(layout)
    region = img.region(label)
    current = read_at(img.image, region.offset, region.length)
    muts = signed(Mutation(region, rel, data, "crafted"), current, lambda o, n: read_at(img.image, o, n))
    assert len(muts) > 1, "the crafted structure must carry a valid checksum"
    with applied(img.directory, img.image, muts):
        return run_cli(img.image, tmp_path)


MUTATED = [
    # (layout, region label, offset in the region, new bytes, what the error must name)
    (
        "bare-ext4",
        "ext-inode:/boot/vmlinuz-6.1.0-42-pvboot",
        0x6C,
        b"\xff\xff\xff\x7f",
        "limit",
    ),  # i_size_high
    ("bare-ext4", "ext-inode:/boot/grub/grub.cfg", 0x6C, b"\x00\x01\x00\x00", "limit"),
    ("bare-ext4", "ext-inode:/boot", 0x6C, b"\xff\xff\x00\x00", ""),  # see test_regressions
    ("bare-ext4", "ext-dir:/boot#0", 0x10, b"\x00\x00", ""),  # a rec_len of 0
    ("ext4-frag", "ext-extent-node:/boot/vmlinuz*", 0x2, b"\xff\xff", ""),  # eh_entries past the block
    (
        "xfs-frag",
        "xfs-inode:/boot/vmlinuz-6.1.0-42-pvboot",
        0x38,
        b"\x7f\xff\xff\xff\xff\xff\xff\xff",
        "limit",
    ),
    ("xfs-frag", "xfs-bmbt:/boot/vmlinuz*", 0x2, b"\x00\x05", ""),  # bb_level 5 in a leaf
    ("xfs-frag", "xfs-inode:/boot", 0x38, b"\x00\x00\x7f\xff\xff\xff\xff\xff", ""),  # directory di_size
]


@pytest.mark.parametrize(
    "layout,label,rel,data,message",
    MUTATED,
    ids=[f"{m[0]}:{m[1].split(':', 1)[1]}+{m[2]:#x}" for m in MUTATED],
)
def test_mutated_image(
    fuzz_images: FuzzImages, tmp_path: Path, layout: str, label: str, rel: int, data: bytes, message: str
) -> None:
    res = _mutate(fuzz_images, layout, label, rel, data, tmp_path)
    img = fuzz_images.get(layout)
    problems = cli_violations(res, tmp_path / "out", img.expect)
    if res.code == 0:
        problems.append("a crafted impossible structure booted")
    elif message and not re.search(message, res.message, re.I):
        problems.append(f"the error does not name the problem ({message}): {res.message.strip()}")
    assert not problems, "\n".join(problems)


def test_mutated_ext4_extent_index_pointing_at_itself(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """An extent index block whose entry names the block itself (checksum valid): an error, quickly."""
    img = fuzz_images.get("ext4-frag")
    node = img.region("ext-extent-node:/boot/vmlinuz*")
    block = int(node.label.rsplit("@", 1)[1])
    current = read_at(img.image, node.offset, node.length)
    if struct.unpack_from("<H", current, 6)[0] != 0:
        pytest.skip("the kernel's extent tree has no leaf block here")
    # the leaf becomes an index node (depth 1) whose one entry is the block itself; the inode's root
    # (in i_block at 0x28) becomes depth 2, so every level's depth is what its parent expects but one
    most = struct.unpack_from("<H", current, 4)[0]
    patch = struct.pack("<HHHHI", 0xF30A, 1, most, 1, 0) + struct.pack("<IIHH", 0, block, 0, 0)
    muts = signed(Mutation(node, 0, patch, "crafted"), current, lambda o, n: read_at(img.image, o, n))
    inode = img.region("ext-inode:/boot/vmlinuz-6.1.0-42-pvboot")
    now = read_at(img.image, inode.offset, inode.length)
    muts += signed(
        Mutation(inode, 0x28 + 6, struct.pack("<H", 2), "crafted"), now, lambda o, n: read_at(img.image, o, n)
    )
    with applied(img.directory, img.image, muts):
        res = run_cli(img.image, tmp_path)
    problems = cli_violations(res, tmp_path / "out", img.expect)
    assert res.code != 0 and not problems, "\n".join(problems) or res.answer
    assert res.wall < 10


def test_mutated_xfs_bmbt_pointing_at_itself(fuzz_images: FuzzImages, tmp_path: Path) -> None:
    """The kernel's bmap B+tree leaf turned into a level-1 node whose one child is itself, under a root of
    level 2 (CRCs valid): an error, quickly."""
    img = fuzz_images.get("xfs-frag")
    leaf = img.region("xfs-bmbt:/boot/vmlinuz*")
    fsb = int(leaf.label.rsplit("@", 1)[1])
    current = read_at(img.image, leaf.offset, leaf.length)
    most = (leaf.length - 72) // 16  # v5 long-form block: 72-byte header, keys then pointers
    node = bytearray(current)
    node[4:8] = struct.pack(">HH", 1, 1)  # bb_level 1, bb_numrecs 1
    node[72:80] = struct.pack(">Q", 0)  # key: file offset 0
    node[72 + most * 8 : 80 + most * 8] = struct.pack(">Q", fsb)  # pointer: this very block
    muts = signed(Mutation(leaf, 0, bytes(node), "crafted"), current, lambda o, n: read_at(img.image, o, n))
    inode = img.region("xfs-inode:/boot/vmlinuz-6.1.0-42-pvboot")
    now = read_at(img.image, inode.offset, inode.length)
    root = Mutation(inode, 0xB0, b"\x00\x02", "crafted")  # the in-inode root (data fork): level 2
    muts += signed(root, now, lambda o, n: read_at(img.image, o, n))
    with applied(img.directory, img.image, muts):
        res = run_cli(img.image, tmp_path)
    problems = cli_violations(res, tmp_path / "out", img.expect)
    assert res.code != 0 and not problems, "\n".join(problems) or res.answer
    assert res.wall < 10


def test_nothing_left_in_tmp(tmp_path: Path) -> None:
    """A failing run leaves no file in $TMPDIR either (the child's scratch, if any, is cleaned up)."""
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    image = config(ENTRY + "while true; do true; done\n")(tmp_path / "img")
    res = run_cli(image, tmp_path / "run", env={"TMPDIR": str(scratch)})
    assert res.code != 0
    assert os.listdir(scratch) == []
