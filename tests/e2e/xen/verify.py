#!/usr/bin/env python3
"""Judge one e2e run from QEMU's serial log: did each guest boot what its boot menu says it should?

usage: verify.py LOG_DIR SERIAL_LOG EXPECTED_TXT

LOG_DIR holds <guest>/xl.log, bootloader.log and console.log, as dom0-init.sh wrote them.

EXPECTED_TXT lines (written by build-guests.sh):
  <guest> boot <cmdline>      the guest must print exactly this kernel command line (compared as
                              whitespace-separated words, as GRUB builds it)
  <guest> fail <regex>        `xl create` must fail, and the bootloader log must hold a line matching this
  <guest> xllog <text>        the guest's `xl -vvv create` log must contain this text

Prints one line per guest with its timings (dom0 uptime seconds from the xl log), then, last,
`N/M guests booted` (an expected-to-fail guest counts when it failed with pvboot's message). Exit status 0
only when every guest passed.
"""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Guest:
    name: str
    mode: str = ""
    want: str = ""
    xl_checks: list[str] = field(default_factory=list)
    xl: list[str] = field(default_factory=list)
    bootloader: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    rc: str | None = None
    marker_at: float | None = None


def _read(path: Path) -> list[str]:
    try:
        return path.read_bytes().decode("utf-8", "replace").replace("\r", "").split("\n")
    except FileNotFoundError:
        return []


def load(logs: Path, serial: Path, expected: Path) -> dict[str, Guest]:
    guests: dict[str, Guest] = {}
    for line in expected.read_text().splitlines():
        name, mode, rest = ([*line.split(" ", 2), "", ""])[:3]
        if not name:
            continue
        guest = guests.setdefault(name, Guest(name))
        if mode == "xllog":
            guest.xl_checks.append(rest)
        else:
            guest.mode, guest.want = mode, rest
    for guest in guests.values():
        guest.xl = [line for line in _read(logs / guest.name / "xl.log") if line]
        guest.bootloader = _read(logs / guest.name / "bootloader.log")
        guest.console = _read(logs / guest.name / "console.log")
        for line in guest.xl:
            if " XL-RC " in f" {line}":
                guest.rc = line.rsplit(" ", 1)[1]
    stage = re.compile(r"E2E-STAGE guest-marker guest=(\S+) dom0_uptime=(\S+)")
    for line in _read(serial):
        m = stage.search(line)
        if m and m.group(1) in guests:
            guests[m.group(1)].marker_at = float(m.group(2))
    return guests


_ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>78])")


def _plain(text: str) -> str:
    """A pty log line without its terminal escape sequences."""
    return _ANSI.sub("", text).strip()


def phases(guest: Guest) -> str:
    """xl start, bootloader run, xl done and guest marker, in dom0 uptime seconds."""
    first: dict[str, float] = {}
    keys = {  # (xapi-boot.py's lines: the XAPI-style guest runs pvboot before xl starts)
        "start": ("Parsing config from", "xapi: VM.start"),
        "bl-start": ("executing bootloader:",),
        "bl-end": ("bootloader completed",),
        "bl-fail": ("bootloader failed",),
        "done": ("XL-RC",),
    }
    for line in guest.xl:
        stamp, _, rest = line.partition(" ")
        for key, needles in keys.items():
            if key not in first and any(needle in rest for needle in needles):
                with contextlib.suppress(ValueError):
                    first[key] = float(stamp)
    parts = []
    start = first.get("start")
    if start is None:
        return "no xl log"
    end = first.get("bl-end", first.get("bl-fail"))
    if "bl-start" in first and end is not None:
        parts.append(f"bootloader {end - first['bl-start']:.1f}s")
    if "done" in first:
        parts.append(f"xl create {first['done'] - start:.1f}s")
    if guest.marker_at is not None:
        parts.append(f"marker +{guest.marker_at - start:.1f}s after xl start")
    return ", ".join(parts)


def judge(guest: Guest) -> tuple[bool, str]:
    booted = [
        line.split("GUEST-BOOTED cmdline=", 1)[1].strip()
        for line in guest.console
        if "GUEST-BOOTED cmdline=" in line
    ]
    problems = []
    for text in guest.xl_checks:
        if not any(text in line for line in guest.xl):
            problems.append(f"xl log lacks {text!r}")
    if guest.mode == "boot":
        if guest.rc != "0":
            problems.append(f"xl create rc={guest.rc}")
        if not booted:
            problems.append("the guest printed no GUEST-BOOTED line")
        elif not any(b.split() == guest.want.split() for b in booted):
            problems.append(f"cmdline {booted[0]!r}, want {guest.want!r}")
        ok_text = f"booted, cmdline {guest.want!r}"
    elif guest.mode == "fail":
        pattern = re.compile(guest.want)
        if guest.rc in (None, "0"):
            problems.append(f"xl create rc={guest.rc}, want a failure")
        if booted:
            problems.append(f"the guest booted: {booted[0]!r}")
        hits = [_plain(line) for line in guest.bootloader if pattern.search(_plain(line))]
        hits = [h[h.rfind("pvboot: ") :] if "pvboot: " in h else h for h in hits]
        if not hits:
            problems.append(f"no bootloader log line matches {guest.want!r}")
        ok_text = f"failed as expected: {hits[0] if hits else ''}"
    else:
        problems.append(f"unknown expectation {guest.mode!r}")
        ok_text = ""
    if problems:
        return False, "; ".join(problems)
    return True, ok_text


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    guests = load(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    passed = 0
    width = max(len(g) for g in guests)
    for guest in guests.values():
        ok, text = judge(guest)
        passed += ok
        print(f"  {guest.name:<{width}}  {'PASS' if ok else 'FAIL'}  [{phases(guest)}]  {text}")
        if not ok:
            for line in [_plain(x) for x in guest.bootloader if x.strip()][-3:]:
                print(f"  {'':<{width}}        bootloader log: ...{line[-300:]}")
            for line in [x for x in guest.xl if "error" in x.lower()][-6:]:
                print(f"  {'':<{width}}        xl: {line.strip()[:200]}")
    print(f"{passed}/{len(guests)} guests booted")
    return 0 if passed == len(guests) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
