"""The wall-clock timeout: the parent kills the child's whole process group (keeper and reader) and
leaves no output file behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from diskbuild import Part, make_disk, marker_kernel, put
from pvboot.errors import LimitError
from pvboot.sandbox import Channel
from pvboot.sandbox.child import Child, Confinement

SRC = str(Path(__file__).resolve().parents[2] / "src")

# Runs pvboot's CLI with a short wall-clock timeout (Limits are not tunable from the command line).
DRIVER = """
import dataclasses, sys
from pvboot import limits
original = limits.Limits.from_env.__func__
limits.Limits.from_env = classmethod(
    lambda cls: dataclasses.replace(original(cls), wall_timeout=float(sys.argv[1])))
from pvboot.cli import main
sys.exit(main(sys.argv[2:]))
"""


def alive_with(marker: str) -> list[int]:
    """Processes (not zombies) whose environment holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def wait_gone(marker: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := alive_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _spin(channel: Channel) -> None:
    channel.recv()
    while True:
        pass


def _confined(pid: int) -> bool:
    try:
        return "\nSeccomp:\t2" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_request_timeout_kills_the_process_group(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(4096))
    vm_size = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = vm_size + (512 << 20)
    conf = Confinement(address_space=cap, cpu_seconds=30, file_size=1 << 20, image=str(image))
    child = Child(_spin, conf)  # (pytest may be big: the address-space cap is on top of what it maps)
    group = [child.pid]  # the reader, and its keeper when it had to make the PID namespace itself
    deadline = time.monotonic() + 10
    while not any(_confined(pid) for pid in group) and time.monotonic() < deadline:
        group = [
            child.pid,
            *map(int, Path(f"/proc/{child.pid}/task/{child.pid}/children").read_text().split()),
        ]
        time.sleep(0.01)
    assert any(_confined(pid) for pid in group)
    start = time.monotonic()
    with pytest.raises(LimitError, match=r"longer than the limit of 0\.5 s"):
        child.request({"op": "inspect"}, 0.5)
    assert time.monotonic() - start < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)  # the keeper was reaped by stop()
    deadline = time.monotonic() + 5
    while any(_state(pid) not in (None, "Z") for pid in group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_state(pid) in (None, "Z") for pid in group), "a process of the child's group survived"


@pytest.fixture(scope="module")
def looping_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A disk whose grub.cfg loops (bounded only by the interpreter's limits, seconds of CPU)."""
    if os.geteuid() != 0:
        pytest.skip("builds a disk image with sfdisk and mkfs (run as root in CI)")
    work = tmp_path_factory.mktemp("looping")
    tree = work / "tree"
    put(tree, "/boot/vmlinuz", marker_kernel("/boot/vmlinuz"))
    put(tree, "/boot/grub/grub.cfg", b"while true; do while true; do true; done; done\n")
    return make_disk(work / "disk.img", [Part(tree)])


def test_cli_timeout_leaves_no_files_and_no_process(looping_disk: Path, tmp_path: Path) -> None:
    marker = str(uuid.uuid4())
    out = tmp_path / "out"
    out.mkdir()
    answer = tmp_path / "answer"
    argv = [
        sys.executable, "-c", DRIVER, "0.3", "-q", f"--output={answer}", "--output-format=simple0",
        f"--output-directory={out}", str(looping_disk),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": SRC, "PVBOOT_TEST_MARKER": marker}
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=60, check=False)
    assert time.monotonic() - start < 10
    assert proc.returncode != 0
    assert b"longer than the limit of 0.3 s" in proc.stderr, proc.stderr
    assert list(out.iterdir()) == []
    assert not answer.exists() or answer.read_bytes() == b""
    assert not wait_gone(marker), "a process of pvboot's child survived it"


PARENT = """
import os, signal, sys, time
from pvboot.sandbox.child import Child, Confinement

def spin(channel):
    channel.recv()
    while True:
        pass

conf = Confinement(address_space=512 << 20, cpu_seconds=60, file_size=1 << 20, image=sys.argv[1])
child = Child(spin, conf)
child.channel.send({"op": "spin"})
if len(sys.argv) > 2:  # die by SIGKILL this many seconds after the fork
    time.sleep(float(sys.argv[2]))
    os.kill(os.getpid(), signal.SIGKILL)
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_killed_parent_takes_the_child_with_it(tmp_path: Path) -> None:
    """SIGKILL to pvboot itself (no clean-up runs): the keeper and the busy reader die with it."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(4096))
    marker = str(uuid.uuid4())
    env = {**os.environ, "PYTHONPATH": SRC, "PVBOOT_TEST_MARKER": marker}
    proc = subprocess.Popen([sys.executable, "-c", PARENT, str(image)], env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip().isdigit()
        deadline = time.monotonic() + 10
        while len(alive_with(marker)) < 2 and time.monotonic() < deadline:  # parent, reader (, keeper)
            time.sleep(0.02)
        assert len(alive_with(marker)) >= 2
    finally:
        proc.kill()
        proc.wait()
    assert not wait_gone(marker), "the child outlived a killed parent"


@pytest.mark.parametrize("delay", [0.0, 0.001, 0.003, 0.006, 0.01, 0.02, 0.04])
def test_a_parent_killed_while_the_child_confines_itself_takes_it_too(tmp_path: Path, delay: float) -> None:
    """The parent dies while the child is still between fork and arming PR_SET_PDEATHSIG (whose
    signal then never comes): the child notices and leaves instead of serving a request forever."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(4096))
    marker = str(uuid.uuid4())
    env = {**os.environ, "PYTHONPATH": SRC, "PVBOOT_TEST_MARKER": marker}
    proc = subprocess.run([sys.executable, "-c", PARENT, str(image), str(delay)], env=env, check=False)
    assert proc.returncode == -9
    assert not wait_gone(marker), "the child outlived a parent killed early"
