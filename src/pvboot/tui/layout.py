"""Where GRUB's text menu puts things on the screen (the rules of menu_text.c, grub_menu_init_page).

Normally: an empty line, the title line, an empty line, the bordered entry box, an empty line, the help
text, then two lines for the countdown. On small screens the empty lines, then the border, then the
second countdown line and the title line go, in that order, so that at least three entries show.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvboot.tui.text import words_wrap

STANDARD_MARGIN = 6
TIMEOUT_MARGIN = 3

MENU_HELP = "Use the {up} and {down} keys to select which entry is highlighted."
MENU_HELP_2 = (
    "Press enter to boot the selected OS, `e' to edit the commands before booting or `c' for a command-line."
)
NESTED_HELP_2 = MENU_HELP_2 + " ESC to return previous menu."
EDIT_HELP = (
    "Minimum Emacs-like screen editing is supported. Press Ctrl-x or F10 to boot, F2 for a command-line "
    "or ESC to discard edits and return to the GRUB menu."
)
TIMEOUT_TEXT = "The highlighted entry will be executed automatically in {n}s."


@dataclass
class Geometry:
    width: int
    height: int
    first_x: int  # column of the entries' first cell (the '*' marker)
    first_y: int  # row of the first entry
    entry_width: int
    rows: int  # entries shown at once
    border: bool
    title_y: int | None  # row of the title line, None when there is no room
    help_y: int
    help_lines: list[str]
    timeout_y: int
    timeout_lines: int


def help_lines(messages: list[str], width: int) -> list[str]:
    lines: list[str] = []
    for message in messages:
        lines += words_wrap(message, width - 2 * STANDARD_MARGIN - 1)
    return lines


def compute(width: int, height: int, messages: list[str]) -> Geometry:
    """The layout of a menu (or editor) page; `messages` are the help paragraphs under the box."""
    width, height = max(width, 1), max(height, 1)
    text = help_lines(messages, width)
    first_x, first_y, entry_width = 2, 4, width - 5
    timeout_lines = 2
    rows = height - first_y - 1 - 1 - timeout_lines - 1
    empty_lines, border, title = 1, True, True
    if rows - len(text) < 3 or entry_width < 10:  # no empty lines
        rows, first_y, first_x, entry_width = rows + 4, first_y - 2, first_x - 1, entry_width + 1
        empty_lines = 0
    if rows - len(text) < 3 or entry_width < 10:  # no border
        rows, first_y, first_x, entry_width = rows + 2, first_y - 1, first_x - 1, entry_width + 2
        border = False
    entry_width = max(entry_width, 1)
    if rows - len(text) < 3:
        timeout_lines, rows = 1, rows + 1
    if rows - len(text) < 3:
        rows, first_y, title = rows + 1, first_y - 1, False
    if rows - len(text) >= 2:
        rows -= len(text)
        shown = text
    else:
        shown = []
    rows = max(rows, 1)
    help_y = first_y + rows + (1 if border else 0) + empty_lines
    return Geometry(
        width=width,
        height=height,
        first_x=first_x,
        first_y=first_y,
        entry_width=entry_width,
        rows=rows,
        border=border,
        title_y=(1 if empty_lines else 0) if title else None,
        help_y=help_y,
        help_lines=shown,
        timeout_y=help_y + len(shown),
        timeout_lines=timeout_lines,
    )


def timeout_text(geo: Geometry, seconds: int) -> list[str]:
    """The countdown line(s); terse ("5s") when the sentence does not fit its lines, as GRUB does."""
    full = words_wrap(TIMEOUT_TEXT.format(n=seconds), geo.width - TIMEOUT_MARGIN - 1)
    if len(full) <= geo.timeout_lines:
        return [" " * TIMEOUT_MARGIN + line for line in full]
    margin = 0 if geo.width < 10 else TIMEOUT_MARGIN
    return [" " * margin + f"{seconds}s"]
