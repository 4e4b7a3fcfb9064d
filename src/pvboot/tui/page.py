"""The parts of a menu-like page GRUB draws around the entries: title line, box, help, scroll marks."""

from __future__ import annotations

from pvboot.tui import layout
from pvboot.tui.screen import Screen


def frame(screen: Screen, geo: layout.Geometry, title: str) -> None:
    """The title line, the box and the help text of a menu-like page."""
    if geo.title_y is not None and title:
        shown = screen.charset.fit(title, geo.width - 2)
        screen.put(geo.title_y, max(0, (geo.width - screen.charset.width(shown)) // 2), shown)
    if geo.border:
        ul, ur, ll, lr, h, v = screen.charset.box
        left, right = geo.first_x - 1, geo.first_x + geo.entry_width + 1
        screen.put(geo.first_y - 1, left, ul + h * (geo.entry_width + 1) + ur)
        for y in range(geo.first_y, geo.first_y + geo.rows):
            screen.put(y, left, v)
            screen.put(y, right, v)
        screen.put(geo.first_y + geo.rows, left, ll + h * (geo.entry_width + 1) + lr)
    for n, line in enumerate(geo.help_lines):
        screen.put(geo.help_y + n, layout.STANDARD_MARGIN, line)


def arrows(screen: Screen, geo: layout.Geometry, above: bool, below: bool) -> None:
    """GRUB's scroll marks right of the box: up on the first row, down on the last."""
    x = geo.first_x + geo.entry_width + (1 if geo.border else 0) + 1
    charset = screen.charset
    if geo.rows == 1:
        mark = charset.updown if above and below else charset.up if above else charset.down if below else " "
        screen.put(geo.first_y, x, mark)
        return
    screen.put(geo.first_y, x, charset.up if above else " ")
    screen.put(geo.first_y + geo.rows - 1, x, charset.down if below else " ")
