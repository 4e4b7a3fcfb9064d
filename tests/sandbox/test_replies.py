"""The root parent bounded on a subverted reader's replies (sandbox/channel.py, guard.py).

A subverted reader is simulated by a driver that replaces the child's serve loop (boot.serve) before it
runs pvboot's real CLI: the child is forked and confined as always, then answers every request with
the reply the test chose. The parent must refuse a reply above its size cap without reading it, refuse
one with too many values or too deep a nesting without decoding it, and end every such run (and any
allocation beyond its own address-space cap) as one `pvboot: RuntimeError:` line.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import Limits
from pvboot.sandbox.channel import _HEADER, Channel

SRC = str(Path(__file__).resolve().parents[2] / "src")

DRIVER = """
import json, os, resource, sys
from pvboot import boot, listing
from pvboot.sandbox.channel import _HEADER

kind = sys.argv[1]
NORMAL = {
    "inspect": {"type": "inspect", "volumes": [], "configs": []},
    "xenkernel": {"type": "xenkernel", "found": None},
    "menu": {"type": "menu", "source": "(hd0)/grub.cfg", "kind": "grub2", "entries": [], "default": {}},
}

def bomb():
    if kind == "huge":  # 32 MiB: pygrub's old message limit, ~820 MiB of dicts once decoded
        return b'{"type": "menu", "entries": [' + b"{}," * ((32 << 20) // 3) + b"{}]}"
    if kind == "many":  # under every size cap, but ~340,000 values
        return b'{"type": "inspect", "volumes": [' + b"{}," * 340_000 + b"{}]}"
    if kind == "deep":
        return b'{"type": "inspect", "volumes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    return None

def hostile(session, channel):
    payload = bomb()
    while True:
        request = channel.recv()
        normal = NORMAL.get(request.get("op"), {"type": "error", "message": "no"})
        reply = payload or json.dumps(normal).encode()
        channel.sock.sendall(_HEADER.pack(len(reply)) + reply)

boot.serve = hostile
if kind == "memory":  # an allocation beyond the parent's own cap, as a reply's processing might make
    listing.render = lambda *args: str(bytearray(boot.Limits().parent_address_space))

from pvboot.cli import main
code = main(sys.argv[2:])
# VmHWM, not ru_maxrss: that one keeps the high-water mark of the process before exec (pytest's)
hwm = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
with open(os.environ["PVBOOT_TEST_REPORT"], "w") as fh:
    json.dump({"peak_rss_kib": hwm, "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0]}, fh)
sys.exit(code)
"""


def _subverted(
    kind: str, work: Path, *args: str
) -> tuple[subprocess.CompletedProcess[bytes], dict[str, int]]:
    image = work / "disk.img"
    image.write_bytes(bytes(4096))
    report = work / "report.json"
    env = {**os.environ, "PYTHONPATH": SRC, "PVBOOT_TEST_REPORT": str(report)}
    argv = [sys.executable, "-c", DRIVER, kind, *args, str(image)]
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=120, check=False)
    return proc, json.loads(report.read_text())


def _one_error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0, stderr
    assert "Traceback" not in stderr and "MemoryError" not in stderr and "internal error" not in stderr
    assert stderr.startswith("pvboot: RuntimeError: ") and stderr.count("\n") == 1, stderr
    return stderr


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("huge", r"a reply of \d+ bytes .* exceeds the limit of 1 MiB"),
        ("many", r"holds about \d+ values, more than the limit of 250000"),
        ("deep", r"nests 100001 levels deep, more than the limit of 400"),
    ],
)
def test_a_hostile_reply_is_refused_before_it_is_decoded(kind: str, message: str, tmp_path: Path) -> None:
    """libxl's call: one error line, no answer, no file, and the parent stays small (it grew to ~820 MiB
    on the 32 MiB reply when it decoded first and checked after)."""
    out = tmp_path / "out"
    out.mkdir()
    answer = tmp_path / "answer"
    answer.touch()
    proc, seen = _subverted(
        kind, tmp_path, "-q", f"--output={answer}", "--output-format=simple0", f"--output-directory={out}"
    )
    assert re.search(message, _one_error_line(proc)), proc.stderr
    assert answer.read_bytes() == b"" and list(out.iterdir()) == []
    assert seen["peak_rss_kib"] < 64 * 1024, seen  # (Python and pvboot alone: ~20 MiB)


def test_the_parent_runs_under_its_own_address_space_cap(tmp_path: Path) -> None:
    """-l with well-formed replies: the soft RLIMIT_AS is set (the reader's own cap is set below the
    unchanged hard limit), and an allocation beyond it ends as one line, not a MemoryError traceback."""
    proc, seen = _subverted("normal", tmp_path, "-l")
    assert proc.returncode == 0, proc.stderr
    assert seen["rlimit_as"] == Limits().parent_address_space
    proc, _ = _subverted("memory", tmp_path, "-l")
    assert "out of memory" in _one_error_line(proc)
    assert proc.stdout == b""


# -- the channel itself, in-process


@pytest.fixture
def ends() -> tuple[socket.socket, Channel]:
    a, b = socket.socketpair()
    return a, Channel(b)


BOUNDS = Limits().reply_bounds("menu")


def _send(sock: socket.socket, payload: bytes) -> None:
    """Send from a thread: a payload larger than the socket buffer blocks until recv reads it."""
    threading.Thread(target=sock.sendall, args=(_HEADER.pack(len(payload)) + payload,), daemon=True).start()


def test_the_size_is_refused_from_the_header_alone(ends: tuple[socket.socket, Channel]) -> None:
    sock, channel = ends
    sock.sendall(_HEADER.pack(BOUNDS.size + 1))  # and no payload: recv must not wait for it
    start = time.monotonic()
    with pytest.raises(LimitError, match="exceeds the limit of 4 MiB"):
        channel.recv(time.monotonic() + 5, BOUNDS)
    assert time.monotonic() - start < 1


def test_real_menu_replies_fit_and_strings_do_not_count(ends: tuple[socket.socket, Channel]) -> None:
    sock, channel = ends
    entry = {
        "title": "Debian GNU/Linux, with Linux 6.1.0-18-amd64 [x, y] {z}",
        "id": "gnulinux-6.1.0-18-amd64-advanced",
        "classes": ["debian", "gnu-linux", "gnu", "os"],
        "source": "\tlinux /vmlinuz root=UUID=x ro quiet, splash [ { ,\n" * 3,
        "boot": {"kind": "linux", "kernel": {"volume": "hd0,msdos1", "path": "/vmlinuz"}, "initrds": []},
    }
    menu = {"type": "menu", "entries": [entry] * 1000, "default": {"path": [0], "titles": ["x"]}}
    _send(sock, json.dumps(menu).encode())
    assert channel.recv(None, BOUNDS) == menu
    _send(sock, json.dumps({"type": "x", "s": ",[{" * 300_000}).encode())  # 900,000 commas in a string
    assert len(channel.recv(None, BOUNDS)["s"]) == 900_000


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b'{"a": [' + b"0," * 300_000 + b"0]}", "values"),
        (b'{"a": ' + b'{"b": ' * 401 + b"0" + b"}" * 401 + b"}", "nests 402 levels"),
        ('{"a": "\u00e9"}'.encode(), "not ASCII"),
        (b'["not", "an object"]', "not an object"),
        (b'{"a": ', "malformed"),
    ],
)
def test_bounds_and_form_are_checked_before_decoding(
    ends: tuple[socket.socket, Channel], payload: bytes, error: str
) -> None:
    sock, channel = ends
    _send(sock, payload)
    with pytest.raises(GuestDataError, match=error):
        channel.recv(None, BOUNDS)
