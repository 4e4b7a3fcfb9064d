"""Under strace, on real images: the first process never opens or reads the image; the process that reads
it has (itself, or the ancestor that forked it) set no-new-privileges and entered a user namespace or
changed to a non-root uid, and loaded its seccomp filter, before its first read of the image."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import pvrun

if TYPE_CHECKING:
    from conftest import LayoutImages


TRACED = (
    "openat,open,read,pread64,readv,preadv,dup,dup2,dup3,"
    "unshare,prctl,setresuid,seccomp,clone,clone3,fork,vfork"
)
LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")


@dataclass
class Proc:
    pid: int
    parent: int | None
    events: list[tuple[int, str, str]] = field(default_factory=list)  # (order, syscall, text)
    forked_at: dict[int, int] = field(default_factory=dict)  # child pid -> order


def parse(trace: str) -> dict[int, Proc]:
    procs: dict[int, Proc] = {}
    unfinished: dict[int, str] = {}
    for order, line in enumerate(trace.splitlines()):
        match = LINE.match(line)
        if not match:
            continue
        pid = int(match.group(1))
        proc = procs.setdefault(pid, Proc(pid, None))
        name = match.group(3) or match.group(2) or unfinished.pop(pid, "")
        text = line
        if line.endswith("<unfinished ...>"):
            unfinished[pid] = name
            continue
        proc.events.append((order, name, text))
        if name in ("clone", "clone3", "fork", "vfork"):
            result = re.search(r"= (\d+)$", line)
            if result:
                child = int(result.group(1))
                proc.forked_at[child] = order
                procs.setdefault(child, Proc(child, pid)).parent = pid
    return procs


def history(procs: dict[int, Proc], pid: int, until: int) -> list[tuple[int, str, str]]:
    """Events of `pid` before `until`, and of each ancestor before it forked the next one down."""
    out = [e for e in procs[pid].events if e[0] < until]
    child, parent = pid, procs[pid].parent
    while parent is not None:
        fork = procs[parent].forked_at[child]
        out += [e for e in procs[parent].events if e[0] < fork]
        child, parent = parent, procs[parent].parent
    return out


def is_image(text: str, images: list[str]) -> bool:
    return any(f"<{img}>" in text or f'"{img}"' in text for img in images)


def check(trace: str, images: list[str]) -> int:
    procs = parse(trace)
    first = min(procs, key=lambda p: procs[p].events[0][0] if procs[p].events else 1 << 62)
    for _, _, text in procs[first].events:
        assert not is_image(text, images), f"the parent touched the image: {text}"
    readers = 0
    for pid, proc in procs.items():
        reads = [e for e in proc.events if e[1] in ("read", "pread64", "readv", "preadv")]
        reads = [e for e in reads if is_image(e[2], images)]
        if not reads:
            continue
        readers += 1
        seen = history(procs, pid, reads[0][0])
        calls = [text for _, _, text in seen]
        assert any("PR_SET_NO_NEW_PRIVS, 1" in c and c.endswith("= 0") for c in calls), pid
        userns = any(re.search(r"unshare\([^)]*CLONE_NEWUSER[^)]*\) += 0$", c) for c in calls)
        dropped = any(re.search(r"setresuid\(([1-9]\d*), \1, \1\) += 0$", c.split(None, 1)[1]) for c in calls)
        assert userns or dropped, f"pid {pid} read the image with neither a user namespace nor a uid change"
        assert any("SECCOMP_SET_MODE_FILTER" in c and re.search(r"\) += 0$", c) for c in calls), pid
    return readers


def strace_run(tmp_path: Path, image: Path, *args: str) -> tuple[subprocess.CompletedProcess[bytes], str]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    log = tmp_path / "trace"
    argv = [
        "strace", "-f", "-qq", "-y", "-s", "256", "-o", str(log), "-e", f"trace={TRACED}",
        *pvrun.command("-q", f"--output-directory={out}", f"--output={tmp_path / 'answer'}",
                       "--output-format=simple0", *args, str(image)),
    ]  # fmt: skip
    env = pvrun.environment()
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=300, check=False)
    return proc, log.read_text(errors="replace")


needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")


@needs_strace
@pytest.mark.parametrize("layout", ["ext4-mbr", "qcow2-backing"])
def test_parent_never_reads_reader_is_confined_first(
    layout_images: LayoutImages, tmp_path: Path, layout: str
) -> None:
    image = layout_images(layout)
    images = [str(p) for p in image.parent.iterdir() if p.suffix in (".img", ".qcow2", ".iso")]
    proc, trace = strace_run(tmp_path, image)
    assert proc.returncode == 0, proc.stderr
    assert check(trace, images) >= 1, "no process read the image?"


@needs_strace
def test_runas_reader_has_the_uid_before_reading(
    layout_images: LayoutImages, tmp_path: Path, traversable_tmp: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("--runas needs root")
    image = traversable_tmp / "disk.img"
    shutil.copyfile(layout_images("ext4-mbr"), image)
    os.chown(image, 4321, 4321)
    os.chmod(image, 0o400)
    proc, trace = strace_run(tmp_path, image, "--runas=4321")
    assert proc.returncode == 0, proc.stderr
    assert check(trace, [str(image)]) >= 1
    assert re.search(r"setresuid\(4321, 4321, 4321\) += 0", trace)
