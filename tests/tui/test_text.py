"""Guest text on the console (tui/text.py): cleaning, charsets, GRUB's word wrap."""

from __future__ import annotations

from pvboot.tui.text import Charset, choose_charset, words_wrap

ASCII, UTF8 = Charset(False), Charset(True)


def test_clean_removes_every_control_and_format_character() -> None:
    evil = "a\x1b[2Jb\x1b]0;t\x07c\x9b1md\u202e\u0435\x00\x7f\u200b"
    for charset in (ASCII, UTF8):
        shown = charset.clean(evil)
        assert len(shown) == len(evil)  # one cell per character
        assert all(ch.isprintable() for ch in shown)
        assert "\x1b" not in shown and "\x9b" not in shown and "\u202e" not in shown
    assert ASCII.clean("Très ñ 中") == "Tres n ?"
    assert UTF8.clean("Très ñ 中") == "Très ñ 中"


def test_fit_cuts_with_an_ellipsis() -> None:
    assert ASCII.fit("short", 10) == "short"
    assert ASCII.fit("a long title here", 10) == "a long ..."
    assert UTF8.fit("a long title here", 10) == "a long ti\u2026"
    assert UTF8.width(UTF8.fit("中文标题很长很长", 7)) <= 7
    assert ASCII.fit("abc", 0) == "" and ASCII.fit("abcdef", 2) == "ab"


def test_charset_choice() -> None:
    assert choose_charset("vt100", "UTF-8") == ASCII  # libxl's terminal: no UTF-8 whatever the locale
    assert choose_charset("xterm-256color", "UTF-8") == UTF8
    assert choose_charset("xterm", "ANSI_X3.4-1968") == ASCII


def test_words_wrap() -> None:
    assert words_wrap("aa bb cc", 5) == ["aa bb", "cc"]
    assert words_wrap("abcdefgh", 3) == ["abc", "def", "gh"]
