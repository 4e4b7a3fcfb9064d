"""docs/pvboot.1 is generated from the command line's parser: it must be what the parser says now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_manpage_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen-manpage.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_manpage_documents_every_option() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from pvboot.cli import build_parser

    page = (ROOT / "docs" / "pvboot.1").read_text()
    for action in build_parser()._actions:
        for name in action.option_strings:
            assert name.replace("-", "\\-") in page, name
