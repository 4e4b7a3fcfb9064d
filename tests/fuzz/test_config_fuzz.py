"""Grammar-based fuzzing of the boot configs a guest writes: grub.cfg (with `source`d files, grubenv and
BLS entries for `blscfg`), systemd-boot BLS entries, extlinux.conf (with INCLUDEs) and GRUB legacy menu.lst.

Hypothesis generates hostile programs from each format's grammar -- deep nesting, recursion, loops,
self-sourcing, odd quoting, NULs, newlines and terminal escapes in words -- and writes them into
fixed-size "slots" (files pre-allocated in real ext4 images, padded with a comment), then boots the image
in-process (pvboot.reader.GuestSession in a forked child). Only a PvbootError may come out; a boot must
copy a file of the guest byte for byte; every run ends within the time and memory caps. A sample of
examples also goes through the real CLI. PVBOOT_FUZZ_EXAMPLES sets the examples per grammar.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from fuzzkit import (
    RSS_CAP,
    SEED,
    cli_violations,
    env_int,
    report_finding,
    run_cli,
    run_inprocess,
    warm,
    write_at,
)
from guestimg import INITRD, KERNEL, Guest, build_ext4
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pvboot.kernel.stub import stub_kernel

EXAMPLES = env_int("PVBOOT_FUZZ_EXAMPLES", 60)
# CI ends every generated while/until loop after one pass (a loop spinning to its 100 000-iteration limit
# costs seconds, and test_hostile_cases covers that); scripts/fuzz.sh sets PVBOOT_FUZZ_DEEP=1.
LOOP_END = "" if os.environ.get("PVBOOT_FUZZ_DEEP") else "\nbreak"
CLI_EVERY = 20  # every so many examples also run through the real CLI
BOOT = ({"op": "inspect"}, {"op": "menu"}, {"op": "boot", "entry": None})
KERNEL_B = stub_kernel(b"PVBOOT-FUZZ-KERNEL-B\n" * 100)
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="PVBOOT_FUZZ_SEED" not in os.environ,  # CI: the same examples every run
    database=None,
    suppress_health_check=list(HealthCheck),
    # every example forks a boot: shrinking a failure can take many minutes, so only on request (the
    # report holds the whole failing input anyway)
    phases=[p for p in Phase if p is not Phase.shrink or os.environ.get("PVBOOT_FUZZ_SHRINK")],
)


# -- images with slots -------------------------------------------------------------------------------


@dataclass
class Slotted:
    """An image whose `slots` (guest path -> (byte offset in the image, size)) can be rewritten in place."""

    image: Path
    slots: dict[str, tuple[int, int]]
    files: dict[str, bytes]  # the other files, for "a boot copies a file of the guest"

    def fill(self, contents: dict[str, bytes]) -> dict[str, bytes]:
        """Write each slot (absent ones get an empty config); returns every file's current bytes."""
        current = dict(self.files)
        for path, (offset, size) in self.slots.items():
            data = contents.get(path, b"")[: size - 2]
            padded = data + b"\n#" + b"-" * (size - len(data) - 2) if len(data) < size - 1 else data[:size]
            padded = padded[:size]
            write_at(self.image, offset, padded)
            current[path] = padded
        return current


def _extent(image: Path, path: str) -> int:
    text = subprocess.run(["debugfs", "-R", f"ex {path}", str(image)], capture_output=True, text=True).stdout
    runs = re.findall(r"^\s*\d+/\s*\d+\s+\d+/\s*\d+\s+(\d+)\s*-\s*(\d+)\s+(\d+)\s*-\s*(\d+)", text, re.M)
    assert len(runs) == 1, f"{path}: the slot must be one extent: {text}"
    return int(runs[0][2]) * 4096


def slotted(work: Path, slots: dict[str, int], files: dict[str, bytes], links: dict[str, str]) -> Slotted:
    guest = Guest(files={**files, **{p: b"#" * n for p, n in slots.items()}}, links=links)
    image = build_ext4(work, guest)
    return Slotted(image, {p: (_extent(image, p), n) for p, n in slots.items()}, files)


BASE_FILES = {"/boot/vmlinuz-a": KERNEL, "/boot/vmlinuz-b": KERNEL_B, "/boot/initrd-a.img": INITRD}
BASE_LINKS = {"/boot/vmlinuz": "vmlinuz-a", "/boot/loop": "loop", "/boot/up": "../../../../.."}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Slotted]:
    if not shutil.which("mkfs.ext4") or not shutil.which("debugfs"):
        pytest.skip("needs mkfs.ext4 and debugfs")
    base = tmp_path_factory.mktemp("slots")
    grub = {
        "/boot/grub/grub.cfg": 64 << 10,
        "/boot/grub/extra.cfg": 16 << 10,
        "/boot/grub/grubenv": 1024,
        **{f"/boot/loader/entries/{n}.conf": 4096 for n in ("a", "b", "c")},
    }
    out = {
        "grub": slotted(base / "grub", grub, BASE_FILES, BASE_LINKS),
        "bls": slotted(
            base / "bls", {f"/loader/entries/{n}.conf": 4096 for n in "abc"}, BASE_FILES, BASE_LINKS
        ),
        "extlinux": slotted(
            base / "extlinux",
            {"/boot/extlinux/extlinux.conf": 32 << 10, "/boot/extlinux/inc.cfg": 8 << 10},
            BASE_FILES,
            BASE_LINKS,
        ),
        "legacy": slotted(base / "legacy", {"/boot/grub/menu.lst": 32 << 10}, BASE_FILES, BASE_LINKS),
    }
    for slot in out.values():
        slot.fill({})
        warm(slot.image, BOOT)
    return out


# -- grammars ------------------------------------------------------------------------------------------

HOSTILE_CHARS = [
    "\0",
    "\n",
    "\r",
    "\t",
    "\x1b[2J",
    "\x1b]0;t\x07",
    "\x7f",
    "\u202e",
    "\ufeff",
    "é",
    "\\",
    "\ud800",
]
PATHS = [
    "/boot/vmlinuz-a",
    "/boot/vmlinuz-b",
    "/boot/vmlinuz",
    "/boot/initrd-a.img",
    "/boot/missing",
    "/boot/loop",
    "/boot/up/etc/shadow",
    "/../../../etc/passwd",
    "(hd0)/boot/vmlinuz-b",
    "(hd0,msdos1)/boot/vmlinuz-a",
    "($root)/boot/vmlinuz-a",
    "(host)/etc/passwd",
    "/boot/grub/extra.cfg",
    "/boot/grub/grub.cfg",
    "$prefix/grub.cfg",
    "$prefix/extra.cfg",
    "${config_directory}/extra.cfg",
    "/boot/loader/entries/a.conf",
    "/boot/" + "d/" * 30 + "x",
    "",
]
names = st.sampled_from(
    ["a", "b", "x", "root", "default", "prefix", "timeout", "kernelopts", "1", "@", "?", "f"]
)
atoms = st.one_of(
    st.sampled_from(PATHS),
    st.sampled_from(
        ["true", "false", "0", "1", "-1", "2>1", "a>b", "=", "==", "!=", "-f", "-z", "-n", "-lt"]
    ),
    names.map(lambda n: f"${n}"),
    names.map(lambda n: f"${{{n}}}"),
    st.sampled_from(HOSTILE_CHARS),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
    st.integers(-(2**64), 2**64).map(str),
    st.sampled_from(["x" * 5000, "{", "}", ";", "'", '"', "\\\n", "$", "${", "$(", "|", "&&", "[", "]"]),
)


word = st.one_of(
    atoms,
    atoms.map(lambda a: f"'{a}'"),
    atoms.map(lambda a: f'"{a}"'),
    st.lists(atoms, min_size=2, max_size=3).map("".join),
)
args = st.lists(word, max_size=5).map(" ".join)


def _commands(block: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    simple = st.one_of(
        st.tuples(names, word).map(lambda t: f"set {t[0]}={t[1]}"),
        st.tuples(st.sampled_from(["unset", "export"]), names).map(" ".join),
        args.map(lambda a: f"echo {a}"),
        st.tuples(st.sampled_from(["linux", "linux16", "linuxefi"]), st.sampled_from(PATHS), args).map(
            " ".join
        ),
        st.tuples(st.sampled_from(["initrd", "initrd16"]), st.lists(st.sampled_from(PATHS), max_size=3)).map(
            lambda t: t[0] + " " + " ".join(t[1])
        ),
        st.tuples(st.sampled_from(["source", ".", "configfile"]), st.sampled_from(PATHS)).map(" ".join),
        st.tuples(
            st.sampled_from(["--file", "--fs-uuid", "--label", "--no-floppy --file"]),
            st.sampled_from([*PATHS, "x", ""]),
        ).map(lambda t: f"search --set=root {t[0]} {t[1]}"),
        st.tuples(word, word).map(lambda t: f"regexp --set=a {t[0]} {t[1]}"),
        st.sampled_from(
            [
                "load_env",
                "save_env a",
                "blscfg",
                "insmod gzio",
                "return",
                "break",
                "continue",
                "true",
                "false",
                "boot",
                "probe --set=x --fs-uuid (hd0)",
                "set default=saved",
                "set default='1>0'",
                "set timeout=0",
                "nosuchcommand x",
                "multiboot2 /boot/vmlinuz-a",
                "module2 /boot/initrd-a.img",
                "chainloader +1",
                "devicetree /boot/initrd-a.img",
                "f",
                "f a b",
                "[ -f /boot/vmlinuz-a ]",
                "test -d /boot",
                "eval $a",
                "shift",
            ]
        ),
        args.map(lambda a: f"[ {a} ]"),
    )
    compound = st.one_of(
        st.tuples(simple, block, block).map(lambda t: f"if {t[0]}; then\n{t[1]}\nelse\n{t[2]}\nfi"),
        st.tuples(simple, block).map(lambda t: f"while {t[0]}; do\n{t[1]}{LOOP_END}\ndone"),
        st.tuples(simple, block).map(lambda t: f"until {t[0]}; do\n{t[1]}{LOOP_END}\ndone"),
        st.tuples(names, args, block).map(lambda t: f"for {t[0]} in {t[1]}; do\n{t[2]}\ndone"),
        st.tuples(st.sampled_from(["f", "g", "menuentry"]), block).map(
            lambda t: f"function {t[0]} {{\n{t[1]}\n}}"
        ),
        st.tuples(word, st.sampled_from(["", "--id x", "--class c", "--unrestricted", "$@"]), block).map(
            lambda t: f"menuentry {t[0]} {t[1]} {{\n{t[2]}\n}}"
        ),
        st.tuples(word, block).map(lambda t: f"submenu {t[0]} {{\n{t[1]}\n}}"),
    )
    return st.one_of(simple, compound)


grub_block = st.recursive(
    st.just("true"),
    lambda inner: st.lists(_commands(inner), min_size=1, max_size=6).map("\n".join),
    max_leaves=40,
)
grub_script = st.one_of(
    grub_block,
    st.lists(grub_block, max_size=4).map(lambda parts: "\n".join(parts)),
    st.tuples(grub_block, st.binary(max_size=40)).map(lambda t: t[0] + t[1].decode("latin-1")),
)
ENTRY_LINE = "menuentry ok {\n linux /boot/vmlinuz-a root=/dev/xvda1\n initrd /boot/initrd-a.img\n}\n"

bls_keys = st.sampled_from(
    [
        "title",
        "version",
        "machine-id",
        "linux",
        "initrd",
        "options",
        "devicetree",
        "grub_users",
        "grub_arg",
        "grub_class",
        "id",
        "sort-key",
        "architecture",
        "efi",
        "#",
        "",
    ]
)
bls_value = st.one_of(word, st.sampled_from(PATHS), st.just("$kernelopts"), st.just("${kernelopts} $x"))
bls_entry = st.lists(st.tuples(bls_keys, bls_value).map(lambda t: f"{t[0]} {t[1]}"), max_size=10).map(
    "\n".join
)
grubenv = st.lists(st.tuples(names, word).map(lambda t: f"{t[0]}={t[1]}"), max_size=5).map(
    lambda lines: "# GRUB Environment Block\n" + "\n".join(lines) + "\n"
)

ext_keys = st.sampled_from(
    [
        "DEFAULT",
        "LABEL",
        "MENU LABEL",
        "KERNEL",
        "LINUX",
        "INITRD",
        "APPEND",
        "FDT",
        "INCLUDE",
        "MENU INCLUDE",
        "TIMEOUT",
        "PROMPT",
        "ONTIMEOUT",
        "MENU DEFAULT",
        "MENU HIDE",
        "IPAPPEND",
        "SAY",
        "CONFIG",
        "LOCALBOOT",
        "COM32",
        "MENU BEGIN",
        "MENU END",
        "TEXT HELP",
        "ENDTEXT",
        "label",
        "kernel",
    ]
)
ext_paths = st.sampled_from([*PATHS, "/boot/extlinux/inc.cfg", "inc.cfg", "/boot/extlinux/extlinux.conf"])
extlinux = st.lists(
    st.tuples(ext_keys, st.one_of(word, ext_paths), st.sampled_from(["", " ", "\t"])).map(
        lambda t: f"{t[2]}{t[0]} {t[1]}"
    ),
    max_size=25,
).map("\n".join)

legacy_keys = st.sampled_from(
    [
        "title",
        "root",
        "kernel",
        "initrd",
        "default",
        "fallback",
        "timeout",
        "hiddenmenu",
        "password",
        "lock",
        "savedefault",
        "chainloader",
        "module",
        "makeactive",
        "configfile",
        "#",
    ]
)
legacy = st.lists(
    st.tuples(legacy_keys, st.one_of(word, st.sampled_from([*PATHS, "(hd0,0)", "(hd0)", "0", "saved"]))).map(
        lambda t: f"{t[0]} {t[1]}"
    ),
    max_size=25,
).map("\n".join)


# -- the invariant ---------------------------------------------------------------------------------------


class Runner:
    """Boots one filled image in-process (and every CLI_EVERY-th through the CLI); collects findings."""

    def __init__(self, slot: Slotted, work: Path, name: str) -> None:
        self.slot, self.work, self.name, self.count = slot, work, name, 0

    def __call__(self, contents: dict[str, str]) -> None:
        raw = {
            p: c.encode("utf-8", "surrogatepass") for p, c in contents.items()
        }  # lone surrogates: bad UTF-8
        current = self.slot.fill(raw)
        guest_files = {hashlib.sha256(data).hexdigest() for data in current.values()}
        out = run_inprocess(self.slot.image, BOOT)
        problems = []
        if out.status not in ("ok", "error"):
            problems.append(f"{out.status}: {out.message}\n{out.detail}")
        if out.maxrss > 2 * RSS_CAP:
            problems.append(f"RSS {out.maxrss >> 20} MiB")
        # (a ramdisk may concatenate several files: only the kernel is checked byte for byte)
        if out.status == "ok" and out.ops[-1:] == ["ok"] and out.kernel_sha not in guest_files:
            problems.append(f"the kernel copied from {out.kernel_source} is no file of the guest")
        self.count += 1
        if self.count % CLI_EVERY == 1:
            res = run_cli(self.slot.image, self.work / f"cli{self.count}")
            problems += [f"CLI: {p}" for p in cli_violations(res, self.work / f"cli{self.count}" / "out")]
        if problems:
            text = f"[{self.name}, seed {SEED}] " + "; ".join(problems) + "\ninput: " + repr(contents)[:4000]
            report_finding(text)
            raise AssertionError(text)


def test_grub_cfg(images: dict[str, Slotted], tmp_path: Path) -> None:
    run = Runner(images["grub"], tmp_path, "grub.cfg")

    @SETTINGS
    @given(
        main=grub_script,
        extra=grub_script,
        entries=st.lists(bls_entry, min_size=0, max_size=3),
        env=grubenv,
        lead=st.booleans(),
    )
    def check(main: str, extra: str, entries: list[str], env: str, lead: bool) -> None:
        contents = {
            "/boot/grub/grub.cfg": (ENTRY_LINE if lead else "") + main,
            "/boot/grub/extra.cfg": extra,
            "/boot/grub/grubenv": env,
        }
        contents |= {f"/boot/loader/entries/{n}.conf": e for n, e in zip("abc", entries, strict=False)}
        run(contents)

    check()


def test_bls_entries(images: dict[str, Slotted], tmp_path: Path) -> None:
    run = Runner(images["bls"], tmp_path, "bls")

    @SETTINGS
    @given(entries=st.lists(bls_entry, min_size=1, max_size=3))
    def check(entries: list[str]) -> None:
        run({f"/loader/entries/{n}.conf": e for n, e in zip("abc", entries, strict=False)})

    check()


def test_extlinux(images: dict[str, Slotted], tmp_path: Path) -> None:
    run = Runner(images["extlinux"], tmp_path, "extlinux")

    @SETTINGS
    @given(main=extlinux, inc=extlinux)
    def check(main: str, inc: str) -> None:
        run({"/boot/extlinux/extlinux.conf": main, "/boot/extlinux/inc.cfg": inc})

    check()


def test_grub_legacy(images: dict[str, Slotted], tmp_path: Path) -> None:
    run = Runner(images["legacy"], tmp_path, "menu.lst")

    @SETTINGS
    @given(menu=legacy)
    def check(menu: str) -> None:
        run({"/boot/grub/menu.lst": menu})

    check()
