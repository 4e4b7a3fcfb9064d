"""GRUB's menu geometry (tui/layout.py), as grub-core/normal/menu_text.c lays it out."""

from __future__ import annotations

import pytest

from pvboot.tui import layout


def test_layout_80x24_is_grubs() -> None:
    geo = layout.compute(80, 24, [layout.MENU_HELP, layout.MENU_HELP_2])
    assert (geo.first_x, geo.first_y, geo.entry_width, geo.border, geo.title_y) == (2, 4, 75, True, 1)
    assert geo.rows == 12 and geo.help_y == 18 and len(geo.help_lines) == 3 and geo.timeout_y == 21
    assert layout.timeout_text(geo, 5) == ["   The highlighted entry will be executed automatically in 5s."]


@pytest.mark.parametrize(("width", "height"), [(40, 12), (50, 15), (30, 8), (132, 50), (10, 4)])
def test_layout_small_screens_fit(width: int, height: int) -> None:
    geo = layout.compute(width, height, [layout.MENU_HELP, layout.MENU_HELP_2])
    assert geo.rows >= 1
    assert geo.first_y + geo.rows <= height
    assert geo.first_x + geo.entry_width <= width
    assert geo.timeout_y + (1 if geo.timeout_lines else 0) <= height + 1
    if (width, height) == (40, 12):
        assert geo.rows >= 3 and layout.timeout_text(geo, 5) == ["   5s"]
