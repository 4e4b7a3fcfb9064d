"""Key decoding (tui/keys.py): escape sequences as terminals send them, as GRUB's terminfo reads them."""

from __future__ import annotations

import pytest

from pvboot.tui import keys


def decode(data: bytes) -> list[str]:
    stream = list(data)

    def read(_ms: int) -> int | None:
        return stream.pop(0) if stream else None

    reader, out = keys.KeyReader(read), []
    while stream or reader._unread is not None:
        key = reader.get(0)
        if key is not None:
            out.append(key)
    return out


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x1b[A\x1bOB\x1b[C\x1bOD", [keys.UP, keys.DOWN, keys.RIGHT, keys.LEFT]),
        (
            b"\x1b[5~\x1b[6~\x1b[1~\x1b[4~\x1b[H\x1b[F\x1bOH\x1b[7~",
            ["PGUP", "PGDN", "HOME", "END", "HOME", "END", "HOME", "HOME"],
        ),
        (b"\x1b[21~\x1bOx\x1b[12~\x1bOQ\x1b[3~\x1bOS", ["F10", "F10", "F2", "F2", "DELETE", "F4"]),
        (b"\x1b[1;5A", [keys.UP]),
        (b"\x1b", [keys.ESC]),
        (b"\x1bx", [keys.ESC, "x"]),
        (b"\x1b\x1b[B", [keys.ESC, keys.DOWN]),
        (b"\r\n\x7f\x08\x05\x18", [keys.ENTER, keys.ENTER, keys.BACKSPACE, keys.BACKSPACE, "\x05", "\x18"]),
        ("é中".encode(), ["é", "中"]),
        (b"\xff\x80a", ["a"]),
    ],
)
def test_key_decoding(data: bytes, expected: list[str]) -> None:
    assert decode(data) == expected


def test_hotkeys() -> None:
    assert keys.hotkey_of("t") == "t"
    assert keys.hotkey_of("backspace") == keys.BACKSPACE
    assert keys.hotkey_of("f10") == keys.F10
    assert keys.hotkey_of("nonsense") is None and keys.hotkey_of(None) is None
