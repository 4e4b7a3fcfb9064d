"""Guest text made safe for a terminal: no control sequence survives, widths are known, long lines are cut.

Every string that comes from the guest (titles, entry commands, command output, error messages) goes
through `Charset.clean` before curses sees it: C0/C1 controls, DEL and Unicode format characters (bidi
overrides, zero-width joiners...) cannot reach the terminal. On a terminal that may not do UTF-8 (libxl's
TERM=vt100) non-ASCII text degrades to ASCII: accents are dropped (é -> e), anything else becomes '?'.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass

# Terminals that speak no UTF-8 whatever the locale says (libxl always sets TERM=vt100).
_ASCII_TERMS = ("vt52", "vt100", "vt102", "vt220", "vt320", "ansi", "dumb", "unknown", "serial")


def char_width(ch: str) -> int:
    """Columns a printable character takes: 0 for combining marks, 2 for East Asian wide, else 1."""
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


@dataclass(frozen=True)
class Charset:
    """How text is drawn: `utf8` False means every cell holds one printable ASCII character."""

    utf8: bool

    @property
    def ellipsis(self) -> str:
        return "\u2026" if self.utf8 else "..."

    @property
    def up(self) -> str:
        return "\u2191" if self.utf8 else "^"

    @property
    def down(self) -> str:
        return "\u2193" if self.utf8 else "v"

    @property
    def updown(self) -> str:
        return "\u2195" if self.utf8 else "|"

    @property
    def box(self) -> tuple[str, str, str, str, str, str]:
        """Upper-left, upper-right, lower-left, lower-right, horizontal, vertical."""
        if self.utf8:
            return ("\u250c", "\u2510", "\u2514", "\u2518", "\u2500", "\u2502")
        return ("+", "+", "+", "+", "-", "|")

    def clean(self, text: str) -> str:
        """`text` with every character replaced by what may be drawn: controls become spaces (as GRUB
        does with \\n \\r \\b \\e in titles), other unprintable characters '?', non-ASCII degraded."""
        out = []
        for ch in text:
            if ch == "\t" or (ord(ch) < 0x20) or ch == "\x7f" or 0x80 <= ord(ch) < 0xA0:
                out.append(" ")
            elif ch.isascii():
                out.append(ch)
            elif not ch.isprintable():
                out.append("?")
            elif self.utf8:
                out.append(ch)
            else:
                out.append(_ascii_of(ch))
        return "".join(out)

    def cell(self, ch: str) -> str:
        """One editor cell for one character: itself when it is a narrow printable, else '?'/' '."""
        text = self.clean(ch)
        if len(text) != 1 or char_width(text) != 1:
            return "?"
        return text

    def width(self, text: str) -> int:
        """Columns `text` (already cleaned) takes."""
        if not self.utf8:
            return len(text)
        return sum(char_width(ch) for ch in text)

    def fit(self, text: str, width: int) -> str:
        """Cleaned `text` cut to `width` columns, ending with an ellipsis when something was cut."""
        text = self.clean(text)
        if width <= 0:
            return ""
        if self.width(text) <= width:
            return text
        mark = self.ellipsis if width > len(self.ellipsis) else ""
        room = width - self.width(mark)
        out, used = [], 0
        for ch in text:
            w = char_width(ch) if self.utf8 else 1
            if used + w > room:
                break
            out.append(ch)
            used += w
        return "".join(out) + mark

    def wrap(self, text: str, width: int) -> list[str]:
        """Cleaned `text` broken into rows of at most `width` columns (hard breaks, for output)."""
        rows: list[str] = []
        width = max(width, 1)
        for line in text.split("\n"):
            line = self.clean(line.expandtabs(8))
            row: list[str] = []
            used = 0
            for ch in line:
                w = char_width(ch) if self.utf8 else 1
                if used + w > width:
                    rows.append("".join(row))
                    row, used = [], 0
                row.append(ch)
                used += w
            rows.append("".join(row))
        return rows


def _ascii_of(ch: str) -> str:
    """A non-ASCII printable character as ASCII: its base letter when it has one, else '?'."""
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if c.isascii() and c.isprintable())
    return base if len(base) == 1 else "?"


def words_wrap(text: str, width: int) -> list[str]:
    """GRUB's message wrapping: words moved whole to the next line, a word longer than a line split."""
    width = max(width, 1)
    lines: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current or not lines:
        lines.append(current)
    return lines


def choose_charset(term: str | None, codeset: str) -> Charset:
    """UTF-8 only when the locale is UTF-8 and the terminal is not one known to lack it.
    PVBOOT_CHARSET=ascii|utf-8 overrides (e.g. for an admin whose console does UTF-8 behind vt100)."""
    forced = os.environ.get("PVBOOT_CHARSET", "").lower().replace("-", "")
    if forced in ("ascii", "utf8"):
        return Charset(forced == "utf8")
    name = (term or "unknown").lower()
    if any(name == t or name.startswith(t + "-") for t in _ASCII_TERMS):
        return Charset(False)
    return Charset(codeset.upper().replace("-", "") == "UTF8")
