"""Keys from the raw byte stream of the console, decoded by pvboot itself.

libxl's TERM=vt100 terminfo has no PgUp/PgDn/Home/End and the console may be a serial line or a
terminal emulator in either cursor mode, so curses' keypad decoding is not used: escape sequences of
both the VT100 (ESC O x) and the VT220/xterm (ESC [ n ~) families are decoded here. A key is a one-
character string (a printable character or a control character such as CTRL_X) or one of the names below.
"""

from __future__ import annotations

from collections.abc import Callable

UP, DOWN, LEFT, RIGHT = "UP", "DOWN", "LEFT", "RIGHT"
HOME, END, PGUP, PGDN, INSERT, DELETE = "HOME", "END", "PGUP", "PGDN", "INSERT", "DELETE"
F1, F2, F4, F10 = "F1", "F2", "F4", "F10"
ESC = "\x1b"
ENTER = "\r"
BACKSPACE = "\x7f"
TAB = "\t"
RESIZE = "RESIZE"  # not a key: the terminal changed size


def ctrl(letter: str) -> str:
    return chr(ord(letter.lower()) - ord("a") + 1)


CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = (ctrl(c) for c in "abcde")
CTRL_F, CTRL_G, CTRL_K, CTRL_L, CTRL_N = (ctrl(c) for c in "fgkln")
CTRL_O, CTRL_P, CTRL_U, CTRL_X, CTRL_Y = (ctrl(c) for c in "opuxy")

_CSI_FINAL = {"A": UP, "B": DOWN, "C": RIGHT, "D": LEFT, "H": HOME, "F": END, "P": F1, "Q": F2, "S": F4}
_CSI_TILDE = {
    "1": HOME,
    "7": HOME,
    "4": END,
    "8": END,
    "2": INSERT,
    "3": DELETE,
    "5": PGUP,
    "6": PGDN,
    "11": F1,
    "12": F2,
    "14": F4,
    "21": F10,
}
_SS3 = {"A": UP, "B": DOWN, "C": RIGHT, "D": LEFT, "H": HOME, "F": END, "P": F1, "Q": F2, "S": F4, "x": F10}
_MAX_SEQUENCE = 16

ReadByte = Callable[[int], int | None]  # wait at most N ms for one byte; None when none came


class KeyReader:
    """Turns bytes into keys. `read(ms)` is curses' getch with a timeout (-1 when nothing came)."""

    def __init__(self, read: ReadByte, sequence_ms: int = 60) -> None:
        self._read = read
        self.sequence_ms = sequence_ms
        self._unread: int | None = None  # a byte read too far (what followed a lone ESC)

    def _byte(self, timeout_ms: int) -> int | None:
        if self._unread is not None:
            byte, self._unread = self._unread, None
            return byte
        return self._read(timeout_ms)

    def get(self, timeout_ms: int) -> str | None:
        """The next key, or None when no key came within `timeout_ms`."""
        byte = self._byte(timeout_ms)
        if byte is None:
            return None
        if byte == 0x1B:
            return self._escape()
        if byte == 0x0A:
            return ENTER
        if byte in (0x08, 0x7F):
            return BACKSPACE
        if byte >= 0xC0:
            return self._utf8(byte)
        if byte >= 0x80:
            return None  # a stray continuation byte
        return chr(byte)

    def _escape(self) -> str:
        first = self._read(self.sequence_ms)
        if first is None:
            return ESC
        if first == ord("O"):
            final = self._read(self.sequence_ms)
            if final is None:
                self._unread = first
                return ESC
            return _SS3.get(chr(final), ESC)
        if first != ord("["):
            self._unread = first  # ESC then a key (Alt+key, or ESC typed fast): both count
            return ESC
        body = ""
        while len(body) < _MAX_SEQUENCE:
            byte = self._read(self.sequence_ms)
            if byte is None:
                return ESC
            ch = chr(byte)
            if 0x40 <= byte <= 0x7E:
                if ch == "~":
                    return _CSI_TILDE.get(body.split(";")[0], ESC)
                return _CSI_FINAL.get(ch, ESC)
            body += ch
        return ESC

    def _utf8(self, lead: int) -> str | None:
        if lead >= 0xF8:
            return None
        need = 1 if lead < 0xE0 else 2 if lead < 0xF0 else 3
        data = bytes([lead])
        for _ in range(need):
            byte = self._read(self.sequence_ms)
            if byte is None:
                return None
            if not 0x80 <= byte < 0xC0:
                self._unread = byte  # not part of this character: the start of the next key
                return None
            data += bytes([byte])
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None


def is_text(key: str) -> bool:
    """A key that types a character (not a control, not a named key)."""
    return len(key) == 1 and key.isprintable()


HOTKEY_NAMES = {"backspace": BACKSPACE, "tab": TAB, "delete": DELETE, "insert": INSERT}


def hotkey_of(name: str | None) -> str | None:
    """GRUB's --hotkey value as a key: one character, or backspace/tab/delete/insert/f1..f12."""
    if not name:
        return None
    if len(name) == 1:
        return name
    lowered = name.lower()
    if lowered in HOTKEY_NAMES:
        return HOTKEY_NAMES[lowered]
    if lowered in ("f1", "f2", "f4", "f10"):
        return lowered.upper()
    return None
