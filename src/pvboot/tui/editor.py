"""GRUB's entry editor (normal/menu_entry.c): the entry's commands in the menu's box, Emacs-like keys.

Keys: arrows and Ctrl-p/n/f/b move, Home/End and Ctrl-a/Ctrl-e go to the line's start/end, Backspace and
Delete/Ctrl-d delete (joining lines at their ends), Ctrl-k kills to the end of the line (the newline when
at the end; consecutive kills accumulate) and Ctrl-y yanks it back, Ctrl-o opens a line, Enter splits the
line, Ctrl-l redraws. Ctrl-x or F10 boots the edited commands, F2 opens the command line, Esc discards.
(GRUB also takes Ctrl-c for the command line; in pvboot Ctrl-c stops pvboot everywhere.)

Every character of the text occupies exactly one cell (non-printable or wide ones are drawn as '?'), so
the guest's text is shown safely and kept exactly as it was wherever it was not edited.

One deliberate difference: GRUB puts the cursor on the first line (`setparams '...'`); pvboot puts it on
the line that loads the kernel, where an admin adds or removes kernel arguments (`e`, Ctrl-e, type,
Ctrl-x appends to the kernel's command line).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvboot.tui import keys, layout
from pvboot.tui.page import arrows, frame
from pvboot.tui.screen import Screen
from pvboot.tui.tty import Abort

BOOT, COMMAND_LINE, CANCEL = "boot", "command-line", "cancel"
MAX_TEXT = 1 << 20


@dataclass
class Buffer:
    """The edited text as lines, the cursor, and the kill ring of one."""

    lines: list[str]
    row: int = 0
    col: int = 0
    killed: str = ""
    last_was_kill: bool = False
    size: int = field(init=False)

    def __post_init__(self) -> None:
        if not self.lines:
            self.lines = [""]
        self.size = sum(len(line) + 1 for line in self.lines)

    @classmethod
    def of(cls, text: str) -> Buffer:
        return cls(text.split("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def line(self) -> str:
        return self.lines[self.row]

    def key(self, key: str) -> None:
        """Apply one editing key (movement, deletion, insertion); unknown keys do nothing."""
        kill = key == keys.CTRL_K
        if key in (keys.UP, keys.CTRL_P):
            if self.row > 0:
                self.row -= 1
                self.col = min(self.col, len(self.line))
        elif key in (keys.DOWN, keys.CTRL_N):
            if self.row < len(self.lines) - 1:
                self.row += 1
                self.col = min(self.col, len(self.line))
        elif key in (keys.RIGHT, keys.CTRL_F):
            if self.col < len(self.line):
                self.col += 1
            elif self.row < len(self.lines) - 1:
                self.row, self.col = self.row + 1, 0
        elif key in (keys.LEFT, keys.CTRL_B):
            if self.col > 0:
                self.col -= 1
            elif self.row > 0:
                self.row -= 1
                self.col = len(self.line)
        elif key in (keys.HOME, keys.CTRL_A):
            self.col = 0
        elif key in (keys.END, keys.CTRL_E):
            self.col = len(self.line)
        elif key in (keys.DELETE, keys.CTRL_D):
            self.delete()
        elif key == keys.BACKSPACE:
            if self.col > 0 or self.row > 0:
                self.key(keys.LEFT)
                self.delete()
        elif kill:
            self._kill()
        elif key == keys.CTRL_Y:
            self.insert(self.killed)
        elif key == keys.CTRL_O:
            self.insert("\n")
            self.key(keys.LEFT)
        elif key == keys.ENTER:
            self.insert("\n")
        elif keys.is_text(key):
            self.insert(key)
        self.last_was_kill = kill

    def delete(self) -> None:
        if self.col < len(self.line):
            self.lines[self.row] = self.line[: self.col] + self.line[self.col + 1 :]
            self.size -= 1
        elif self.row < len(self.lines) - 1:
            self.lines[self.row] += self.lines.pop(self.row + 1)
            self.size -= 1

    def _kill(self) -> None:
        if self.col < len(self.line):
            cut = self.line[self.col :]
            self.lines[self.row] = self.line[: self.col]
            self.size -= len(cut)
        elif self.row < len(self.lines) - 1:
            cut = "\n"
            self.delete()
        else:
            cut = ""
        self.killed = self.killed + cut if self.last_was_kill else cut

    def insert(self, text: str) -> None:
        if not text or self.size + len(text) > MAX_TEXT:
            return
        head, tail = self.line[: self.col], self.line[self.col :]
        parts = (head + text + tail).split("\n")
        self.lines[self.row : self.row + 1] = parts
        self.row += len(parts) - 1
        self.col = len(parts[-1]) - len(tail)
        self.size += len(text)


LOADERS = ("linux", "linux16", "linuxefi", "kernel", "multiboot", "multiboot2")


def kernel_line(lines: list[str]) -> int:
    """The line the cursor starts on: the first that loads a kernel, else the first line."""
    for index, line in enumerate(lines):
        words = line.split(None, 1)
        if words and words[0] in LOADERS:
            return index
    return 0


class Editor:
    """The editor's screen for one entry; `run()` returns (BOOT, text), (COMMAND_LINE, None) or
    (CANCEL, None). The buffer survives a trip to the command line or a failed boot."""

    def __init__(self, screen: Screen, source: str, title: str = "") -> None:
        self.screen = screen
        self.title = title
        self.buffer = Buffer.of(source)
        self.buffer.row = kernel_line(self.buffer.lines)
        self.top = 0  # first screen row (of all wrapped rows) shown

    def run(self) -> tuple[str, str | None]:
        self.screen.show_cursor(True)
        try:
            while True:
                self.draw()
                key = self.screen.key()
                if key is None or key == keys.RESIZE or key == keys.CTRL_L:
                    continue
                if key == keys.CTRL_C:
                    raise Abort()
                if key == keys.ESC:
                    return CANCEL, None
                if key in (keys.CTRL_X, keys.F10):
                    return BOOT, self.buffer.text()
                if key == keys.F2:
                    return COMMAND_LINE, None
                self.buffer.key(key)
        finally:
            self.screen.show_cursor(False)

    def _chunk(self, geo: layout.Geometry) -> int:
        return max(1, geo.entry_width - 2)

    def draw(self) -> None:
        screen, buf = self.screen, self.buffer
        geo = layout.compute(screen.width, screen.height, [layout.EDIT_HELP])
        chunk = self._chunk(geo)
        screen.erase()
        frame(screen, geo, self.title)
        rows: list[tuple[str, bool]] = []  # (cells, continues on the next row)
        cursor_row = cursor_col = 0
        for index, line in enumerate(buf.lines):
            pieces = [line[i : i + chunk] for i in range(0, len(line), chunk)] or [""]
            if index == buf.row:
                cursor_row = len(rows) + min(buf.col // chunk, len(pieces))
                cursor_col = buf.col - (cursor_row - len(rows)) * chunk
                if cursor_row - len(rows) == len(pieces):
                    pieces.append("")
            rows += [(piece, n < len(pieces) - 1) for n, piece in enumerate(pieces)]
        if cursor_row < self.top:
            self.top = cursor_row
        elif cursor_row >= self.top + geo.rows:
            self.top = cursor_row - geo.rows + 1
        self.top = max(0, min(self.top, max(0, len(rows) - 1)))
        cell = screen.charset.cell
        for n, (piece, more) in enumerate(rows[self.top : self.top + geo.rows]):
            y = geo.first_y + n
            screen.put(y, geo.first_x + 1, "".join(cell(ch) for ch in piece))
            if more:
                screen.put(y, geo.first_x + 1 + chunk, "\\")
        arrows(screen, geo, self.top > 0, self.top + geo.rows < len(rows))
        screen.cursor(geo.first_y + cursor_row - self.top, geo.first_x + 1 + cursor_col)
        screen.refresh()
