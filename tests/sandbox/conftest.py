"""Fixtures of the sandbox tests. (Test modules here import the top-level conftest's types only when
type checking: `conftest` names this module inside tests/sandbox.)"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def traversable_tmp() -> Iterator[Path]:
    """A directory any uid may pass through (pytest's own tmp root is root-only), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="pvboot-sandbox-", dir="/tmp"))
    os.chmod(path, 0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
