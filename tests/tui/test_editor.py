"""The entry editor's buffer (tui/editor.py): GRUB's editing keys and line handling."""

from __future__ import annotations

from pvboot.tui import keys
from pvboot.tui.editor import Buffer, kernel_line


def test_buffer_editing() -> None:
    buf = Buffer.of("setparams 'A'\n\tlinux /vmlinuz ro\n\tinitrd /initrd")
    buf.row = kernel_line(buf.lines)
    assert buf.row == 1
    buf.key(keys.CTRL_E)
    for ch in " x=1":
        buf.key(ch)
    assert buf.lines[1] == "\tlinux /vmlinuz ro x=1"
    buf.key(keys.CTRL_A)
    buf.key(keys.BACKSPACE)  # joins with the line above
    assert buf.lines[0] == "setparams 'A'\tlinux /vmlinuz ro x=1" and buf.col == len("setparams 'A'")
    buf.key(keys.ENTER)  # and splits again
    assert buf.lines[:2] == ["setparams 'A'", "\tlinux /vmlinuz ro x=1"]
    buf.key(keys.CTRL_K)
    buf.key(keys.CTRL_K)  # the line's text, then its newline: one kill
    assert buf.lines == ["setparams 'A'", "\tinitrd /initrd"]
    buf.key(keys.DOWN)
    buf.key(keys.END)
    buf.key(keys.ENTER)
    buf.key(keys.CTRL_Y)
    assert buf.text() == "setparams 'A'\n\tinitrd /initrd\n\tlinux /vmlinuz ro x=1\n"
    buf.key(keys.UP)
    buf.key(keys.UP)
    buf.key(keys.CTRL_O)  # opens a line before the cursor's text; the cursor stays
    assert buf.lines[1:3] == ["", "\tinitrd /initrd"] and (buf.row, buf.col) == (1, 0)
    buf.key(keys.DELETE)  # at the end of the empty line: joins the next
    assert buf.lines[1] == "\tinitrd /initrd"
    buf.key(keys.LEFT)  # at column 0: to the end of the line above
    assert (buf.row, buf.col) == (0, len("setparams 'A'"))
    buf.key(keys.RIGHT)
    assert (buf.row, buf.col) == (1, 0)
