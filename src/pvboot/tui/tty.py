"""A scrolling text console inside curses, as GRUB's own terminal behaves outside the menu: messages,
the command line's output, "Enter username:" prompts, "Press any key to continue...".

Text from the guest is cleaned (tui.text) when it is wrapped into rows, so nothing in it reaches the
terminal as a control sequence.
"""

from __future__ import annotations

import time

from pvboot.tui import keys
from pvboot.tui.screen import Screen

MAX_ROWS = 2000  # scrollback kept


class Abort(KeyboardInterrupt):
    """Ctrl-C on the console: pvboot stops, leaving no files."""


class Tty:
    def __init__(self, screen: Screen) -> None:
        self.screen = screen
        self.lines: list[str] = [""]  # logical lines; the last one is still open

    def clear(self) -> None:
        self.lines = [""]

    def write(self, text: str) -> None:
        parts = text.split("\n")
        self.lines[-1] += parts[0]
        self.lines.extend(parts[1:])
        if len(self.lines) > MAX_ROWS:
            del self.lines[: len(self.lines) - MAX_ROWS]

    def _rows(self, tail: str = "") -> tuple[list[str], int]:
        """Screen rows of the text (plus `tail` on the last line) and the column after its end."""
        width = self.screen.width
        rows: list[str] = []
        for line in self.lines[:-1]:
            rows += self.screen.charset.wrap(line, width)
        last = self.screen.charset.wrap(self.lines[-1] + tail, width)
        rows += last
        return rows, self.screen.charset.width(last[-1])

    def draw(self, tail: str = "", cursor: int | None = None) -> None:
        """Show the newest rows; the cursor after the text, or `cursor` columns before the end."""
        screen = self.screen
        screen.erase()
        rows, end = self._rows(tail)
        top = max(0, len(rows) - screen.height)
        for y, row in enumerate(rows[top:]):
            screen.put(y, 0, row)
        y = len(rows) - 1 - top
        x = end - (cursor or 0)
        while x < 0 and y > 0:
            x += screen.width
            y -= 1
        screen.cursor(y, x)
        screen.refresh()

    def key(self, timeout_ms: int = -1) -> str | None:
        """A key, with Ctrl-C turned into Abort; redraws after a resize."""
        while True:
            key = self.screen.key(timeout_ms)
            if key == keys.CTRL_C:
                raise Abort()
            if key != keys.RESIZE:
                return key
            self.draw()

    def wait_after_message(self, seconds: float = 10.0) -> bool:
        """GRUB's "Press any key to continue..." (for at most `seconds`); True when a key was pressed."""
        self.write("\nPress any key to continue...")
        self.draw()
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.key(int(left * 1000)) is not None:
                self.write("\n")
                return True

    def read_line(self, prompt: str, echo: bool = True, history: list[str] | None = None) -> str | None:
        """A line typed after `prompt` (None on Esc). Left/Right/Home/End/Ctrl-a/Ctrl-e/Ctrl-k,
        Backspace/Delete/Ctrl-d, Up/Down through `history`."""
        self.screen.show_cursor(True)
        text, pos = "", 0
        past = [*(history or []), ""]
        index = len(past) - 1
        try:
            while True:
                shown = text if echo else ""
                self.draw(prompt + shown, len(shown) - pos if echo else 0)
                key = self.key()
                if key is None:
                    continue
                if key == keys.ENTER:
                    self.write(prompt + shown + "\n")
                    return text
                if key == keys.ESC:
                    self.write(prompt + shown + "\n")
                    return None
                if key in (keys.LEFT, keys.CTRL_B):
                    pos = max(0, pos - 1)
                elif key in (keys.RIGHT, keys.CTRL_F):
                    pos = min(len(text), pos + 1)
                elif key in (keys.HOME, keys.CTRL_A):
                    pos = 0
                elif key in (keys.END, keys.CTRL_E):
                    pos = len(text)
                elif key == keys.CTRL_K:
                    text = text[:pos]
                elif key == keys.CTRL_U:
                    text, pos = text[pos:], 0
                elif key == keys.BACKSPACE and pos > 0:
                    text, pos = text[: pos - 1] + text[pos:], pos - 1
                elif key in (keys.DELETE, keys.CTRL_D):
                    text = text[:pos] + text[pos + 1 :]
                elif key in (keys.UP, keys.CTRL_P, keys.DOWN, keys.CTRL_N) and history is not None:
                    past[index] = text
                    step = -1 if key in (keys.UP, keys.CTRL_P) else 1
                    index = max(0, min(len(past) - 1, index + step))
                    text = past[index]
                    pos = len(text)
                elif keys.is_text(key) and len(text) < 4096:
                    text, pos = text[:pos] + key + text[pos:], pos + 1
        finally:
            self.screen.show_cursor(False)
