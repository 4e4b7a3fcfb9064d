"""Session fixtures: the guest images of `layouts.py` (built once, on demand) and a pvboot runner."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import pvrun
from layouts import BuildError, ImageFactory, Tree, missing_tools

SRC = Path(__file__).resolve().parent.parent / "src"
# Test runs must not append to the host's /var/log/xen/pvboot.log (tests of the log set their own).
os.environ.setdefault("PVBOOT_RUN_LOG", "none")
os.environ.setdefault("PVBOOT_CACHE_DIR", "none")  # (tests of kernel/verdicts.py set their own)
_factories: list[ImageFactory] = []


class LayoutImages:
    """`images(name)` is the path of layout `name`'s image; skips without root or the tools it needs."""

    def __init__(self, factory: ImageFactory) -> None:
        self.factory = factory

    @property
    def tree(self) -> Tree:
        return self.factory.tree

    def __call__(self, name: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("building guest images needs root (loop devices, mount)")
        missing = missing_tools(name)
        if missing:
            pytest.skip(f"layout {name} needs {', '.join(missing)}")
        try:
            return self.factory.get(name)
        except BuildError as exc:
            pytest.fail(f"building layout {name} failed: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def layout_images(tmp_path_factory: pytest.TempPathFactory) -> LayoutImages:
    factory = ImageFactory(tmp_path_factory.mktemp("layouts"))
    _factories.append(factory)
    return LayoutImages(factory)


PvbootRunner = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture(scope="session")
def pvboot() -> PvbootRunner:
    """Run `python -m pvboot ARGS` (or `command`) on this checkout's src; never raises on failure."""

    def run(
        args: Sequence[str], env: dict[str, str] | None = None, command: Sequence[str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        if command is None:
            return pvrun.pvboot(*args, env=env, timeout=180)
        argv = [*command, *args]
        return subprocess.run(argv, env=pvrun.environment(env), capture_output=True, timeout=180, check=False)

    return run


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for factory in _factories:
        if factory.seconds:
            times = ", ".join(f"{name} {sec:.2f}s" for name, sec in factory.seconds.items())
            terminalreporter.write_line(
                f"layout images built in {sum(factory.seconds.values()):.1f}s: {times}"
            )
