"""The console: curses on the pty libxl gave pvboot (stdin/stdout), and its careful restoration.

`Screen` owns the terminal while the menu runs: raw mode (Ctrl-C is a key, not a signal, so it can be
handled without leaving curses half-open), its own SIGWINCH handler (so a resize is seen whatever the
terminfo says), and a finally-path that restores the tty attributes exactly as they were, even when
SIGTERM or SIGHUP unwind through it.
"""

from __future__ import annotations

import contextlib
import curses
import locale
import os
import signal
import termios
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

from pvboot.errors import PvbootError
from pvboot.tui import keys
from pvboot.tui.text import Charset, choose_charset

POLL_MS = 100  # longest time spent in curses at once, so pending signals run promptly


class ConsoleGone(PvbootError):
    """The terminal stopped giving input (hung up) while the menu waited."""


class NoTerminal(Exception):
    """The terminal cannot run the menu (no cursor addressing, or curses refused it)."""


class Idle(Exception):
    """No key came for `Screen.max_idle` seconds (--max-menu-wait): nobody is there to choose."""


class Screen:
    """Drawing and keys. Coordinates are (row, column); writes outside the screen are clipped."""

    def __init__(self, win: Any, charset: Charset, winch: list[bool]) -> None:
        self.win = win
        self.charset = charset
        self._winch = winch
        self.keys = keys.KeyReader(self._read_byte)
        self._errors = 0
        self.height, self.width = win.getmaxyx()
        self.max_idle: float | None = None  # seconds without a key before key() raises Idle
        self._last_key = time.monotonic()

    # -- input
    def limit_idle(self, seconds: float | None) -> None:
        """From now on, key() raises Idle after `seconds` without a key (None: never)."""
        self.max_idle = seconds
        self._last_key = time.monotonic()

    def _read_byte(self, timeout_ms: int) -> int | None:
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        while True:
            if self._winch[0]:
                return None
            wait = POLL_MS
            if deadline is not None:
                wait = int(max(0, min(POLL_MS, (deadline - time.monotonic()) * 1000)))
            self.win.timeout(wait)
            started = time.monotonic()
            byte = self.win.getch()
            if 0 <= byte < 256:
                self._errors = 0
                return int(byte)
            if wait >= 20 and time.monotonic() - started < wait / 4000 and not self._winch[0]:
                self._errors += 1  # getch failing at once, again and again: the tty is gone
                if self._errors > 50:
                    raise ConsoleGone("the console went away (no more input)")
            else:
                self._errors = 0
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def key(self, timeout_ms: int = -1) -> str | None:
        """The next key; keys.RESIZE after the terminal changed size; None when `timeout_ms` passed.
        Raises Idle once `max_idle` seconds passed since the last key, however long the caller waits:
        the host's bound on a guest menu that would wait for ever."""
        if self._winch[0]:
            self._resize()
            return keys.RESIZE
        if self.max_idle is not None:
            left = self._last_key + self.max_idle - time.monotonic()
            if left <= 0:
                raise Idle(f"no key for {self.max_idle:g} s")
            cap = int(left * 1000) + 1
            timeout_ms = cap if timeout_ms < 0 else min(timeout_ms, cap)
        key = self.keys.get(timeout_ms)
        if key is None and self._winch[0]:
            self._resize()
            return keys.RESIZE
        if key is not None:
            self._last_key = time.monotonic()
        elif self.max_idle is not None and time.monotonic() >= self._last_key + self.max_idle:
            raise Idle(f"no key for {self.max_idle:g} s")
        return key

    def _resize(self) -> None:
        self._winch[0] = False
        try:
            size = os.get_terminal_size(1)
            curses.resizeterm(max(size.lines, 1), max(size.columns, 1))
        except (OSError, curses.error):
            pass
        self.height, self.width = self.win.getmaxyx()
        self.win.clear()

    # -- output
    def erase(self) -> None:
        self.height, self.width = self.win.getmaxyx()
        self.win.erase()

    def put(self, y: int, x: int, text: str, reverse: bool = False) -> None:
        """Cleaned `text` at (y, x), cut at the right edge (never into the bottom-right cell)."""
        if not 0 <= y < self.height or x >= self.width or not text:
            return
        if x < 0:
            text, x = text[-x:], 0
        room = self.width - x - (1 if y == self.height - 1 else 0)
        text = self.charset.fit(text, room) if self.charset.width(text) > room else self.charset.clean(text)
        if not text:
            return
        with contextlib.suppress(curses.error):
            self.win.addstr(y, x, text, curses.A_REVERSE if reverse else curses.A_NORMAL)

    def cursor(self, y: int, x: int) -> None:
        with contextlib.suppress(curses.error):
            self.win.move(max(0, min(y, self.height - 1)), max(0, min(x, self.width - 1)))

    def show_cursor(self, visible: bool) -> None:
        with contextlib.suppress(curses.error):
            curses.curs_set(1 if visible else 0)

    def refresh(self) -> None:
        with contextlib.suppress(curses.error):
            self.win.refresh()


def _usable_term() -> None:
    """Make sure curses can start: an unknown or addressing-less TERM falls back to libxl's vt100."""
    term = os.environ.get("TERM") or "vt100"
    try:
        curses.setupterm(term, 1)
        if not curses.tigetstr("cup"):
            raise curses.error("no cursor addressing")
    except curses.error:
        if term == "vt100":
            raise NoTerminal(f"TERM={term}: the terminal cannot show the menu") from None
        os.environ["TERM"] = "vt100"
        try:
            curses.setupterm("vt100", 1)
        except curses.error:
            raise NoTerminal("no terminfo entry for vt100") from None


@contextlib.contextmanager
def opened() -> Iterator[Screen]:
    """The console in curses mode; on leaving (normally or by an exception) the tty is as it was."""
    saved = None
    with contextlib.suppress(termios.error):
        saved = termios.tcgetattr(0)
    winch = [False]

    def on_winch(_signum: int, _frame: FrameType | None) -> None:
        winch[0] = True

    previous = signal.signal(signal.SIGWINCH, on_winch)  # before initscr: ncurses then installs none
    win = None
    try:
        _usable_term()
        try:
            win = curses.initscr()
        except curses.error as exc:
            raise NoTerminal(f"curses: {exc}") from None
        curses.raw()
        curses.noecho()
        win.keypad(False)
        codeset = locale.nl_langinfo(locale.CODESET) if hasattr(locale, "nl_langinfo") else ""
        screen = Screen(win, choose_charset(os.environ.get("TERM"), codeset), winch)
        screen.show_cursor(False)
        yield screen
    finally:
        if win is not None:
            with contextlib.suppress(curses.error):
                curses.curs_set(1)
            with contextlib.suppress(curses.error):
                win.erase()
                win.refresh()
            with contextlib.suppress(curses.error):
                curses.endwin()
        if saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
