"""`cat` (commands/cat.c), for the console's command line: the file, with bytes that are not printable
UTF-8 shown as <hex> as GRUB does (and CR as <d> unless --dos and before LF). At most GRUB_MAX_CAT bytes
are read.
"""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext, fail, file_failure
from pvboot.config.grub2.extcmd import Command
from pvboot.config.grub2.options import Option, Parsed
from pvboot.disk.fsapi import Kind
from pvboot.errors import GuestDataError
from pvboot.limits import GRUB_MAX_CAT
from pvboot.menu import FileRef

OPTIONS = (Option("dos"),)
_SPACE = " \t\n\r\f\v"


def cat(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    if len(opts.args) != 1:
        return fail(ctx, "filename expected")
    path = opts.args[0]
    ref = ctx.resolve(path)
    try:
        data = _read(ctx, ref)
    except GuestDataError as exc:
        return file_failure(ctx, exc, path)
    ctx.write(render_cat(data, opts.has("dos")))
    return 0


def _read(ctx: CommandContext, ref: FileRef) -> bytes:
    tree = ctx.view.tree_of(ref)
    if tree.lookup(ref.path).kind is not Kind.FILE:
        raise GuestDataError("not a regular file")
    _node, stream = tree.open_file(ref.path)
    return bytes(stream.read(GRUB_MAX_CAT))


def render_cat(data: bytes, dos: bool) -> str:
    """cat.c's output: valid UTF-8 that is printable (or a space, or >= U+00A1) as is; anything else,
    byte by byte, as <hex>; CR as <d> unless --dos and followed by LF."""
    out: list[str] = []
    i = 0
    while i < len(data):
        byte = data[i]
        length = 1 if byte < 0x80 else 2 if 0xC2 <= byte < 0xE0 else 3 if 0xE0 <= byte < 0xF0 else 4
        chunk = data[i : i + length]
        try:
            ch = chunk.decode("utf-8")
        except UnicodeDecodeError:
            out.append(f"<{byte:x}>")
            i += 1
            continue
        i += length
        if ch == "\r":
            if dos and data[i : i + 1] == b"\n":
                continue
            out.append("<d>")
        elif ch in _SPACE or ord(ch) >= 0xA1 or (ch.isascii() and ch.isprintable()):
            out.append(ch)
        else:
            out.append("".join(f"<{b:x}>" for b in chunk))
    return "".join(out)


COMMANDS = [Command("cat", cat, OPTIONS)]
