"""GRUB 2 words: one command line split into words, and words joined back into GRUB's text.

- `split_command`: blscfg (and GRUB's legacy translation) build menu entry *source text*; GRUB later
  parses that text with its script lexer and the `linux` loader joins the words with lib/cmdline.c's
  rules. The flat readers need the same answer without the full interpreter, so this covers one simple
  command: words, '...' and "..." quoting, backslash escapes, `$var`/`${var}` expansion (unquoted values
  split into words), comments, and the end of the command at an unquoted ';' or newline. What GRUB's
  grammar rejects (an unquoted `{ } | & < >`, an unterminated quote) raises GuestDataError, as the entry
  would fail in GRUB.
- `loader_cmdline`: the kernel command line a loader builds from its words (lib/cmdline.c).
- `quote_word`: a word as GRUB script text that the lexer reads back unchanged (the `setparams` line of
  a menu entry's source, the commands the console's editor shows).
"""

from __future__ import annotations

from collections.abc import Mapping

from pvboot.errors import GuestDataError

_BLANKS = " \t"
_SPECIAL = "{}|&<>"
_SPECIAL_VARS = "?#@*"


def _is_name_start(c: str) -> bool:
    return c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z")


def _is_name_char(c: str) -> bool:
    return _is_name_start(c) or ("0" <= c <= "9")


class _Words:
    def __init__(self) -> None:
        self.words: list[str] = []
        self.cur: list[str] | None = None

    def add(self, text: str) -> None:
        if self.cur is None:
            self.cur = []
        self.cur.append(text)

    def end(self) -> None:
        if self.cur is not None:
            self.words.append("".join(self.cur))
            self.cur = None

    def add_split(self, value: str) -> None:
        """An unquoted expansion: its whitespace separates words, an empty value adds nothing."""
        if not value:
            return
        if value[0] in " \t\n":
            self.end()
        for k, field in enumerate(value.split()):
            if k:
                self.end()
            self.add(field)
        if value[-1] in " \t\n":
            self.end()


def _variable(text: str, i: int, env: Mapping[str, str]) -> tuple[str | None, int]:
    """The value of the variable reference after the '$' at text[i-1], and where it ends."""
    if i < len(text) and text[i] == "{":
        close = text.find("}", i + 1)
        if close < 0:
            raise GuestDataError("GRUB cannot parse the command: unterminated ${")
        return env.get(text[i + 1 : close], ""), close + 1
    if i < len(text) and text[i] in _SPECIAL_VARS:
        return env.get(text[i], ""), i + 1
    j = i
    if j < len(text) and "0" <= text[j] <= "9":
        while j < len(text) and "0" <= text[j] <= "9":
            j += 1
    elif j < len(text) and _is_name_start(text[j]):
        while j < len(text) and _is_name_char(text[j]):
            j += 1
    if j == i:
        return None, i  # a lone '$' is literal
    return env.get(text[i:j], ""), j


def split_command(text: str, env: Mapping[str, str]) -> list[str]:
    """The words of the first command in `text`, with quotes removed and variables expanded."""
    out = _Words()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _BLANKS:
            out.end()
            i += 1
        elif c in "\n;" or (c == "#" and out.cur is None):
            break  # the end of the command, or a comment
        elif c in _SPECIAL:
            raise GuestDataError(f"GRUB cannot parse the command: unquoted {c!r}")
        elif c == "\\":
            if i + 1 >= n:
                raise GuestDataError("GRUB cannot parse the command: it ends with a backslash")
            if text[i + 1] != "\n":
                out.add(text[i + 1])
            i += 2
        elif c == "'":
            close = text.find("'", i + 1)
            if close < 0:
                raise GuestDataError("GRUB cannot parse the command: unterminated '")
            out.add(text[i + 1 : close])
            i = close + 1
        elif c == '"' or (c == "$" and text[i + 1 : i + 2] == '"'):
            i = _double_quoted(text, i + (2 if c == "$" else 1), env, out)
        elif c == "$":
            value, i = _variable(text, i + 1, env)
            if value is None:
                out.add("$")
            else:
                out.add_split(value)
        else:
            out.add(c)
            i += 1
    out.end()
    return out.words


def _double_quoted(text: str, i: int, env: Mapping[str, str], out: _Words) -> int:
    out.add("")  # "" is a word even when empty
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < n and text[i + 1] in '$"\\\n':
            if text[i + 1] != "\n":
                out.add(text[i + 1])
            i += 2
        elif c == "$":
            value, i = _variable(text, i + 1, env)
            out.add("$" if value is None else value)
        else:
            out.add(c)
            i += 1
    raise GuestDataError('GRUB cannot parse the command: unterminated "')


def loader_cmdline(argv: list[str]) -> str:
    """GRUB 2.06 grub_create_loader_cmdline: words joined by spaces, `\\ ' "` escaped with a backslash,
    a word holding a space wrapped in double quotes."""
    parts = []
    for arg in argv:
        escaped = "".join("\\" + c if c in "\\'\"" else c for c in arg)
        parts.append(f'"{escaped}"' if " " in arg else escaped)
    return " ".join(parts)


def quote_word(word: str) -> str:
    """`word` in single quotes, each `'` written as `'\\''` (GRUB has no escape inside '...')."""
    return "'" + word.replace("'", "'\\''") + "'"
