"""The grub-emu runner for the GRUB script tests (test_script_language.py).

Differential cases (see test_script_language.Case) run the same script in pvboot and in real GRUB
(Debian's grub-emu 2.06). grub-emu needs no disk: with `-d DIR` its prefix is (host)DIR, so a case's
files live in a scratch directory on the host file system and the script names them through the `@D@`
placeholder (`/d` on the pvboot side). The script is run by `source` from the emu's grub.cfg, which is
read_config_file: the same top-level semantics as Interpreter.run_config. Only `echo` output is compared
("error: ..." lines are dropped).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import pytest

from differential import grub_emu
from differential.grub_emu import EMU_DIR

PLACEHOLDER_DIR = "/d"


class EmuCase(Protocol):
    """What the emu runner needs of a test case (test_script_language.Case)."""

    name: str
    script: str
    files: dict[str, str]


def _emu_run(base: str, moddir: str, case: EmuCase) -> str:
    d = tempfile.mkdtemp(dir=base, prefix="")  # short paths: GRUB's terminal wraps at 80 columns
    os.symlink(moddir, os.path.join(d, "x86_64-emu"))
    files = os.path.join(d, "f")
    os.mkdir(files)
    for rel, content in case.files.items():
        path = os.path.join(files, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(content.replace("@D@", files))
    with open(os.path.join(d, "t.cfg"), "w") as fh:
        fh.write(case.script.replace("@D@", files))
    with open(os.path.join(d, "grub.cfg"), "w") as fh:
        fh.write("echo BEGINMARK\nsource $prefix/t.cfg\necho\necho ENDMARK\nhalt\n")
    with open(os.path.join(d, "devmap"), "w") as fh:
        fh.write("(hd0) /dev/null\n")
    text = grub_emu.run_batch(Path(d), 20)
    begin, end = text.find("BEGINMARK\n"), text.rfind("\nENDMARK")
    if begin < 0 or end < 0:
        raise AssertionError(f"grub-emu run of {case.name} failed: {text[-500:]!r}")
    body = text[begin + len("BEGINMARK\n") : end]  # minus the newline of the trailing `echo`
    lines = [line for line in body.split("\n") if not line.startswith("error: ")]
    return "\n".join(lines).replace(files, PLACEHOLDER_DIR)


def grub_emu_available() -> bool:
    return shutil.which("grub-emu") is not None and os.path.isdir(EMU_DIR)


@pytest.fixture(scope="session")
def grub_emu_batch() -> Iterator[Callable[[list[EmuCase]], dict[str, str]]]:
    """Runs cases in grub-emu, in parallel, once per session; yields a function returning outputs."""
    if not grub_emu_available():
        pytest.skip("grub-emu is not installed")
    base = tempfile.mkdtemp(prefix="ge", dir="/tmp")
    moddir = str(grub_emu.module_dir(Path(base)))
    cache: dict[str, str] = {}

    def run(cases: list[EmuCase]) -> dict[str, str]:
        todo = [c for c in cases if c.name not in cache]
        with ThreadPoolExecutor(max_workers=8) as pool:
            for case, out in zip(todo, pool.map(lambda c: _emu_run(base, moddir, c), todo), strict=True):
                cache[case.name] = out
        return cache

    try:
        yield run
    finally:
        shutil.rmtree(base, ignore_errors=True)
