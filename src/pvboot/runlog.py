"""One JSON line per pvboot run, appended to /var/log/xen/pvboot.log: what was booted, or why not.

Where: the `path` argument (a command-line option) if given, else $PVBOOT_RUN_LOG, else
/var/log/xen/pvboot.log. "", "-" or "none" turns the log off. Writing it is never fatal: a missing
directory, a read-only filesystem or a full disk lose the line silently (pvboot must boot the guest
whatever happens to its log). Written by the parent (root, before or without --runas), with O_APPEND in
one write() so that concurrent runs (one per domain being created) never interleave within a line, and
O_NOFOLLOW so that a symlink planted at the log's name is not followed. Guest strings are JSON-escaped
(never raw control characters) and cut to bounded lengths; a log over 8 MiB is rotated once to `.1`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

DEFAULT_PATH = "/var/log/xen/pvboot.log"
ENV = "PVBOOT_RUN_LOG"
OFF = ("", "-", "none", "off")
MAX_LINE = 8192
MAX_STRING = 512
ROTATE_AT = 8 << 20


def log_path(path: str | None = None) -> str | None:
    """The log file to use, or None when logging is off."""
    chosen = path if path is not None else os.environ.get(ENV, DEFAULT_PATH)
    return None if chosen.strip().lower() in OFF else chosen


def _bounded(value: Any, depth: int = 0) -> Any:
    """`value` made JSON-safe and small: strings cut, containers capped, unknown types as str."""
    if depth > 4:
        return "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[: MAX_STRING - 1] + "…"
    if isinstance(value, dict):
        return {str(k)[:64]: _bounded(v, depth + 1) for k, v in list(value.items())[:64]}
    if isinstance(value, list | tuple):
        return [_bounded(v, depth + 1) for v in list(value)[:64]]
    return _bounded(str(value), depth)


def format_record(record: dict[str, Any]) -> bytes:
    """The log line for `record`: one JSON object, ASCII only, ending in a newline, at most MAX_LINE bytes."""
    doc: dict[str, Any] = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid()}
    doc.update(_bounded(record))
    line = json.dumps(doc, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    if len(line) >= MAX_LINE:
        keep: dict[str, Any] = {k: doc[k] for k in ("time", "pid", "outcome", "image", "error") if k in doc}
        keep["truncated"] = True
        line = json.dumps(_bounded(keep), ensure_ascii=True, sort_keys=True, separators=(",", ":"))[:MAX_LINE]
    return (line + "\n").encode("ascii")


def _rotate(path: str) -> None:
    with contextlib.suppress(OSError):
        if os.lstat(path).st_size > ROTATE_AT:
            os.replace(path, path + ".1")


def append_run_log(path: str | None, record: dict[str, Any]) -> None:
    """Append `record` as one line to the run log (see the module doc for `path`); never raises."""
    try:
        target = log_path(path)
        if target is None:
            return
        line = format_record(record)
        _rotate(target)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
        fd = os.open(target, flags, 0o640)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except Exception:  # the log must never stop a boot
        return


def run_record(
    image: str,
    outcome: str,
    *,
    duration: float | None = None,
    entry: str | None = None,
    kernel: str | None = None,
    kernel_info: dict[str, Any] | None = None,
    error: str | None = None,
    argv: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The usual record of one run: `outcome` is "booted", "listed", "checked" (-n), "failed" or "report"."""
    from pvboot import __version__

    record: dict[str, Any] = {"pvboot": __version__, "uid": os.getuid(), "image": image, "outcome": outcome}
    if duration is not None:
        record["seconds"] = round(duration, 3)
    if entry is not None:
        record["entry"] = entry
    if kernel is not None:
        record["kernel"] = kernel
    if kernel_info:
        record["kernel_info"] = {
            k: kernel_info.get(k) for k in ("format", "arch", "version", "compression", "pv", "pvh")
        }
    if error is not None:
        record["error"] = error
    if argv is not None:
        record["argv"] = argv
    if extra:
        record.update(extra)
    return record
