"""`cat` (config/grub2/commands/cat.py)."""

from __future__ import annotations

from pvboot.config.grub2.commands.cat import render_cat


def test_render_cat() -> None:
    assert render_cat(b"a\tb\r\nc\x01\xff\xc3\xa9\r", False) == "a\tb<d>\nc<1><ff>\u00e9<d>"
    assert render_cat(b"a\r\nb\r", True) == "a\nb<d>"
    assert render_cat("\u0085".encode(), False) == "<c2><85>"
