"""Guest strings in the unconfined root parent, through the real CLI: `--report` redacts a 1 MiB hostile
title in linear time, every parent-side step of `--report`, `-l` and the title rules has a wall clock,
and `--debug`, `-l`, `--report` and `--isconfig` never pass an escape sequence to the admin's terminal
(the reader's own debug records included: it inherits the parent's logging formatter)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from diskbuild import Part, make_disk, marker_initrd, marker_kernel, put

if TYPE_CHECKING:
    from conftest import PvbootRunner

SRC = str(Path(__file__).resolve().parent.parent / "src")
ESCAPES = "\x1b]2;pwned\x07\x1b[2J\r\x9b31m\u202e"
HOSTILE_TITLE = ("password alice s3cret\n\tpw=x\x1b[2J\n" * 40_000)[: 1 << 20]  # 1 MiB
SLOW_RULE = "title blacklist (a+)+$\n"  # the admin's rule; the guest's title makes it backtrack
SLOW_TITLE = "a" * 40 + "b"

# pvboot's CLI with a short wall clock for the parent's own steps (Limits are not on the command line);
# `spin` makes redaction spin for ever, to show the clock stops it.
DRIVER = """
import dataclasses, sys
from pvboot import limits, report
original = limits.Limits.from_env.__func__
limits.Limits.from_env = classmethod(
    lambda cls: dataclasses.replace(original(cls), parent_seconds=float(sys.argv[1])))
if sys.argv[2] == "spin":
    def spin(self, value):
        while True:
            pass
    report.Redactor.text = spin
from pvboot.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _disk(work: Path, config: str) -> Path:
    tree = work / "tree"
    put(tree, "/boot/grub/grub.cfg", config.encode())
    put(tree, "/boot/vmlinuz", marker_kernel("/boot/vmlinuz"))
    put(tree, "/boot/initrd.img", marker_initrd("/boot/initrd.img"))
    return make_disk(work / "disk.img", [Part(tree)])


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if os.geteuid() != 0:
        pytest.skip("builds disk images with sfdisk and mkfs (run as root in CI)")
    body = "{\n\tlinux /boot/vmlinuz root=/dev/xvda1 ro\n\tinitrd /boot/initrd.img\n}\n"
    configs = {
        "hostile-title": f"menuentry '{HOSTILE_TITLE}' {body}",
        "slow-title": f"menuentry '{SLOW_TITLE}' {body}menuentry 'other' {body}",
        "escapes": f"echo 'x{ESCAPES}y'\nmenuentry 'evil {ESCAPES} title' {body}",
    }
    return {name: _disk(tmp_path_factory.mktemp(name), text) for name, text in configs.items()}


def _terminal_safe(text: str) -> bool:
    """Nothing a terminal would act on: printable characters and line ends only."""
    return all(ch.isprintable() or ch == "\n" for ch in text)


def _driven(
    seconds: float, mode: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    argv = [sys.executable, "-c", DRIVER, str(seconds), mode, *args]
    return subprocess.run(argv, env=full_env, capture_output=True, timeout=120, check=False)


def _one_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0, stderr
    assert stderr.startswith("pvboot: RuntimeError: ") and stderr.count("\n") == 1, stderr
    assert proc.stdout == b""
    return stderr


def test_report_redacts_a_1mib_hostile_title_quickly(disks: dict[str, Path], pvboot: PvbootRunner) -> None:
    start = time.monotonic()
    proc = pvboot(["--report", str(disks["hostile-title"])])
    assert time.monotonic() - start < 60  # a hang guard (redaction itself takes well under a second)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    assert "password user-1 <redacted>" in text and "pw=<redacted>" in text
    assert "s3cret" not in text and "alice" not in text
    assert _terminal_safe(text)


@pytest.mark.parametrize(
    ("mode", "args", "message"),
    [
        ("rules", ("-l",), "listing the menu took longer than the limit of 1 s"),
        ("rules", ("-q", "-n"), "matching the title rules took longer than the limit of 1 s"),
        ("spin", ("--report",), "redacting the report took longer than the limit of 1 s"),
    ],
)
def test_a_wall_clock_stops_every_parent_side_step(
    disks: dict[str, Path], tmp_path: Path, mode: str, args: tuple[str, ...], message: str
) -> None:
    """The admin's title rule `(a+)+$` backtracks exponentially on the guest's title `aaa...b`: without a
    clock the root parent would spin for ever; redaction is stopped the same way."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "slow").write_text(SLOW_RULE)
    start = time.monotonic()
    proc = _driven(1, mode, *args, str(disks["slow-title"]), env={"PVBOOT_RULES_DIRS": str(rules)})
    assert time.monotonic() - start < 30
    assert message in _one_line(proc)


def test_debug_trace_and_outputs_are_terminal_safe(
    disks: dict[str, Path], pvboot: PvbootRunner, tmp_path: Path
) -> None:
    """GRUB's `echo` runs in the reader, whose records reach stderr under --debug through the
    formatter it inherited from the parent; titles reach -l, --report and the warnings."""
    out = tmp_path / "out"
    out.mkdir()
    image = str(disks["escapes"])
    proc = pvboot(["-q", "--debug", "--output-format=simple0", f"--output-directory={out}", image])
    assert proc.returncode == 0, proc.stderr
    stderr = proc.stderr.decode()
    assert _terminal_safe(stderr), stderr
    assert re.search(r"pvboot-debug: pvboot\.trace: .*echo: x\?\]2;pwned\?\?\[2J\?+31m\?y", stderr), stderr
    for args in (["-l"], ["-l", "--debug"], ["--report"]):
        proc = pvboot([*args, image])
        assert proc.returncode == 0, proc.stderr
        assert _terminal_safe(proc.stdout.decode()) and _terminal_safe(proc.stderr.decode())
        assert "evil ?]2;pwned??[2J" in proc.stdout.decode()


def test_isconfig_output_is_terminal_safe(pvboot: PvbootRunner, tmp_path: Path) -> None:
    config = tmp_path / "grub.cfg"
    config.write_text(f"menuentry 'evil {ESCAPES}' {{\n\tlinux /boot/vmlinuz-{ESCAPES} ro\n}}\n")
    proc = pvboot(["--isconfig", str(config)])
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    assert _terminal_safe(text) and "title: evil ?]2;pwned?" in text, text
