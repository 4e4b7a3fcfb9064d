"""Windows onto a stream (disk/stream.py): what a partition or LV is to its filesystem, so a read must
never leave its window, whatever the reader asks."""

from __future__ import annotations

import io
import os

import pytest

from pvboot.disk.stream import append_run, window

DISK = os.urandom(64 << 10)


def test_a_window_reads_only_its_bytes() -> None:
    part = window(io.BytesIO(DISK), 4096, 8192)
    assert part.read(10) == DISK[4096:4106]
    part.seek(8000)
    assert part.read(1 << 20) == DISK[4096 + 8000 : 4096 + 8192]  # stops at the window's end
    assert part.read(1) == b""
    part.seek(-100, io.SEEK_END)
    assert part.tell() == 8092 and part.read() == DISK[4096 + 8092 : 4096 + 8192]
    part.seek(10**9)
    assert part.read(5) == b""  # past the end: nothing, no error


def test_a_window_is_buffered_like_a_file() -> None:
    part = io.BufferedReader(window(io.BytesIO(DISK), 1000, 3000), 512)  # type: ignore[arg-type]
    out = bytearray(5000)
    assert part.readinto(out) == 3000 and bytes(out[:3000]) == DISK[1000:4000]


def test_a_window_refuses_a_negative_position() -> None:
    part = window(io.BytesIO(DISK), 0, 10)
    with pytest.raises(ValueError, match="negative"):
        part.seek(-11, io.SEEK_END)


def test_runs_merge_when_contiguous() -> None:
    runs: list[tuple[int | None, int]] = []
    for where, length in [(100, 10), (110, 5), (None, 4), (None, 6), (200, 1), (300, 2), (302, 3)]:
        append_run(runs, where, length)
    assert runs == [(100, 15), (None, 10), (200, 1), (300, 5)]
