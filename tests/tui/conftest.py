"""Fixtures of the console tests (helpers in tuihelp.py): the test images and a tmux console."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tuihelp import Console, Images, StartConsole, missing_tools


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    missing = missing_tools()
    if missing:
        pytest.skip(f"console tests need {', '.join(missing)}")
    return Images(tmp_path_factory.mktemp("tui-images"))


@pytest.fixture
def console(images: Images, tmp_path: Path) -> Iterator[StartConsole]:
    """`console(image_name, width=80, height=24, extra=(), env={})` starts pvboot -i in tmux."""
    socket = str(tmp_path / "tmux.sock")  # a server of its own, gone with the test's directory
    started: list[Console] = []

    def start(
        name: str,
        width: int = 80,
        height: int = 24,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Console:
        run = Console(socket, tmp_path / f"run{len(started)}", images(name), width, height, extra, env or {})
        started.append(run)
        return run

    yield start
    if started:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True, check=False)
