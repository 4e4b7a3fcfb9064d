"""append_run_log: one JSON line per run, never fatal, never follows a planted symlink."""

from __future__ import annotations

import json
import threading

import pytest

from pvboot import runlog
from pvboot.runlog import append_run_log, format_record, log_path, run_record


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_appends_one_json_line_per_run(tmp_path):
    log = tmp_path / "pvboot.log"
    append_run_log(str(log), run_record("/dev/vg/guest", "booted", duration=1.23456, entry="Debian"))
    append_run_log(str(log), run_record("/dev/vg/guest", "failed", error="no kernel\nsecond line\x1b[2J"))
    first, second = lines(log)
    assert first["outcome"] == "booted" and first["entry"] == "Debian" and first["seconds"] == 1.235
    assert {"time", "pid", "uid", "pvboot", "image"} <= first.keys()
    assert second["error"] == "no kernel\nsecond line\x1b[2J"  # escaped in the file, intact when read
    raw = log.read_bytes()
    assert raw.count(b"\n") == 2 and b"\x1b" not in raw and raw.isascii()
    assert oct(log.stat().st_mode & 0o777) == oct(0o640)


def test_path_from_environment_and_off(tmp_path, monkeypatch):
    target = tmp_path / "env.log"
    monkeypatch.setenv("PVBOOT_RUN_LOG", str(target))
    assert log_path(None) == str(target)
    append_run_log(None, {"outcome": "listed"})
    assert lines(target)[0]["outcome"] == "listed"
    for off in ("", "-", "none", "off"):
        assert log_path(off) is None
        monkeypatch.setenv("PVBOOT_RUN_LOG", off)
        assert log_path(None) is None
    monkeypatch.delenv("PVBOOT_RUN_LOG")
    assert log_path(None) == "/var/log/xen/pvboot.log"


@pytest.mark.parametrize("where", ["missing/dir/pvboot.log", "dir-not-file", "/proc/version"])
def test_never_fatal(tmp_path, where):
    (tmp_path / "dir-not-file").mkdir()
    target = where if where.startswith("/") else str(tmp_path / where)
    append_run_log(target, {"outcome": "booted", "odd": object()})  # does not raise


def test_symlink_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "pvboot.log").symlink_to(victim)
    append_run_log(str(tmp_path / "pvboot.log"), {"outcome": "booted"})
    assert victim.read_text() == "precious\n"


def test_bounded_lines_and_rotation(tmp_path, monkeypatch):
    huge = {"outcome": "failed", "error": "x" * 100_000, "list": list(range(10_000)), "deep": [[[[[["z"]]]]]]}
    line = format_record(huge)
    assert len(line) <= runlog.MAX_LINE + 1 and line.endswith(b"\n")
    assert json.loads(line)["outcome"] == "failed"
    log = tmp_path / "pvboot.log"
    monkeypatch.setattr(runlog, "ROTATE_AT", 100)
    for _ in range(3):
        append_run_log(str(log), {"outcome": "booted"})
    assert (tmp_path / "pvboot.log.1").exists() and len(lines(log)) <= 2


def test_concurrent_appends_do_not_interleave(tmp_path):
    log = tmp_path / "pvboot.log"

    def work(n: int) -> None:
        for i in range(50):
            append_run_log(str(log), {"outcome": "booted", "worker": n, "i": i, "pad": "p" * 3000})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = lines(log)
    assert len(records) == 200
    assert {(r["worker"], r["i"]) for r in records} == {(n, i) for n in range(4) for i in range(50)}
