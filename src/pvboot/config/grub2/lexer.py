"""The GRUB 2.06 script lexer (grub-core/script/yylex.l and lexer.c), rewritten by hand.

How GRUB reads a script, reproduced here:

- Input arrives one line at a time through a getline callback; every line gets a "\\n" appended. When the
  buffer runs out the lexer asks for another line only while a construct is open (`refs`: `if`, `for`,
  `while`, `until`, `function NAME`, `{`) or a word is unfinished; otherwise it reports end of input, so a
  top-level "chunk" ends at the end of a line.
- Config files (normal/main.c read_config_file) drop every '\\r' and every line whose first character is
  '#', also inside a multi-line quote or block. Source code run by grub_script_execute_sourcecode (`eval`,
  menu entry bodies) is split at '\\n' only. A NUL ends a line (GRUB's strings are C strings).
- Tokens follow flex's longest-match rule, ties going to the earlier rule: blanks; a '#' that starts a
  token is a comment to the end of the line; `\\n || && ;; | & ; < > { } [[ ]]`; keywords; NAME; WORD.
  A WORD is a run of plain characters, "…", '…', $"…", backslash escapes and `$name`/`${name}`/`$N`/`${N}`/
  `$? $# $* $@`. A word whose quote is still open at the end of the buffer (MULTILINE) or that ends in a
  backslash-newline (POS_MULTILINE) pulls in the next line. A '$' not starting a valid variable is a lexer
  error ("$." in GRUB's words), as is a '$' inside "…" that does not start one.
- A WORD is split into typed parts exactly as yylex.l's SPLIT/DQUOTE/SQUOTE/I18NQUOTE/VAR states do:
  TEXT keeps backslash escapes (removed later by wildcard_unescape), DQSTR undoes only \\$ \\\\ \\" and
  \\-newline, SQSTR is literal, GETTEXT keeps \\\\ and turns \\" into ", VAR/DQVAR name a variable. The
  text before `$"` is emitted as a GETTEXT part, as GRUB does.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum


class T(IntEnum):
    EOF = 0
    NEWLINE = 1
    SEMI = 2
    LBR = 3
    RBR = 4
    KEYWORD = 5
    NAME = 6
    WORD = 7
    OTHER = 8  # || && ;; | & < > [[ ]] : tokens the grammar never accepts
    BAD = 9


# Part types of a word (grub_script_arg_type_t)
TEXT, VAR, DQVAR, DQSTR, SQSTR, GETTEXT = range(6)
Part = tuple[int, str]

KEYWORDS = frozenset(
    (
        "case",
        "do",
        "done",
        "elif",
        "else",
        "esac",
        "fi",
        "for",
        "if",
        "in",
        "select",
        "then",
        "until",
        "while",
        "function",
    )
)

_CHAR_RUN = re.compile(r"[^{}|&$;<> \t\n'\"\\]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR_AFTER_DOLLAR = re.compile(
    r"\{(?:[?#*@]|[0-9]+|[A-Za-z_][A-Za-z0-9_]*)\}|[?#*@]|[0-9]+|[A-Za-z_][A-Za-z0-9_]*"
)
_DQ_BODY = re.compile(r'[^"\\]*(?:\\[\s\S][^"\\]*)*')
_SPLIT_PLAIN = re.compile(r"[^\"'$\\]+")
_BLANKS = re.compile(r"[ \t]+")
_OPERATORS = {"||": T.OTHER, "&&": T.OTHER, ";;": T.OTHER}
_SINGLE = {
    "\n": T.NEWLINE,
    ";": T.SEMI,
    "{": T.LBR,
    "}": T.RBR,
    "|": T.OTHER,
    "&": T.OTHER,
    "<": T.OTHER,
    ">": T.OTHER,
}


@dataclass(slots=True)
class Token:
    kind: T
    text: str  # the token's source text (for BAD: the error message)
    parts: tuple[Part, ...]
    start: int  # offsets into the lexer's buffer
    end: int
    line: int


class LineReader:
    """The getline callbacks: read_config_file_getline (config=True) or execute_sourcecode_getline."""

    def __init__(self, text: str, config: bool, first_line: int = 1) -> None:
        if config:
            text = text.replace("\r", "")
        self._lines = text.split("\n")
        if config and self._lines[-1] == "":
            self._lines.pop()  # grub_file_getline: nothing after the last newline is no line at all
        self._config = config
        self._next = 0
        self._first = first_line
        self.number = first_line - 1  # line number of the line returned last

    def next(self) -> str | None:
        while self._next < len(self._lines):
            line = self._lines[self._next]
            self.number = self._first + self._next
            self._next += 1
            nul = line.find("\0")
            if nul >= 0:
                line = line[:nul]
            if self._config and line.startswith("#"):
                continue
            return line
        return None


def _skip(regex: re.Pattern[str], text: str, pos: int) -> int:
    m = regex.match(text, pos)
    return pos if m is None else m.end()


class Lexer:
    """Tokens of one chunk (one grub_script_parse call); `refs` is maintained by the parser."""

    def __init__(
        self, first: str, first_no: int, reader: LineReader | None, charge: Callable[[int], None]
    ) -> None:
        self.buf = first + "\n"
        self.pos = 0
        self.refs = 0
        self._reader = reader
        self._charge = charge
        self._starts = [0]
        self._numbers = [first_no]
        self._resume: tuple[int, int, int, int] | None = None  # (start, index, mode, bs-newline end)

    def line_of(self, offset: int) -> int:
        return self._numbers[bisect.bisect_right(self._starts, offset) - 1]

    def _fetch(self) -> bool:
        line = self._reader.next() if self._reader is not None else None
        if line is None:
            return False
        # Append in place: with self.buf cleared, `buf` holds the only reference, so CPython resizes the
        # string instead of copying it (a long construct would otherwise cost quadratic time). Callers
        # must not keep the buffer (or a regex match on it) alive across this call.
        buf = self.buf
        self.buf = ""
        self._starts.append(len(buf))
        self._numbers.append(self._reader.number if self._reader is not None else 0)
        buf += line + "\n"
        self.buf = buf
        return True

    def _tok(self, kind: T, start: int, end: int, parts: tuple[Part, ...] = ()) -> Token:
        self.pos = end
        self._charge(1 + (end - start) // 256)
        return Token(kind, self.buf[start:end], parts, start, end, self.line_of(start))

    def _bad(self, message: str, start: int) -> Token:
        return Token(T.BAD, message, (), start, start, self.line_of(min(start, len(self.buf) - 1)))

    def next_token(self) -> Token:
        while True:
            tok = self._lex()
            if tok is not None:
                return tok
            if not self._fetch():
                self._resume = None
                return self._bad("unexpected end of file", self.pos)

    def _lex(self) -> Token | None:
        """The next token in the buffer, or None if more input is needed first."""
        buf, pos = self.buf, self.pos
        n = len(buf)
        while True:
            if pos >= n:
                self.pos = pos
                if self.refs == 0:
                    return Token(T.EOF, "", (), pos, pos, self.line_of(max(pos - 1, 0)))
                return None
            c = buf[pos]
            if c == " " or c == "\t":
                pos = _skip(_BLANKS, buf, pos)
                continue
            if c == "#":
                newline = buf.find("\n", pos)
                pos = n if newline < 0 else newline
                continue
            self.pos = pos
            two = buf[pos : pos + 2]
            if two in _OPERATORS:
                return self._tok(_OPERATORS[two], pos, pos + 2)
            if c in _SINGLE:
                return self._tok(_SINGLE[c], pos, pos + 1)
            end = self._scan_word(pos)
            if end is None:
                return None
            if end == pos:
                return self._bad(f"`{c}' does not start a word", pos)
            return self._word_token(pos, end)

    def _word_token(self, start: int, end: int) -> Token:
        text = self.buf[start:end]
        if text in KEYWORDS:
            return self._tok(T.KEYWORD, start, end, ((TEXT, text),))
        if text in ("[[", "]]"):
            return self._tok(T.OTHER, start, end)
        if _NAME.fullmatch(text):
            return self._tok(T.NAME, start, end, ((TEXT, text),))
        parts = split_word(text)
        if parts is None:
            return self._bad(f"bad variable reference in {text!r}", start)
        return self._tok(T.WORD, start, end, parts)

    def _scan_word(self, start: int) -> int | None:
        """End of the longest WORD at `start`, or None if it runs past the buffer (more input needed)."""
        buf = self.buf
        n = len(buf)
        mode, bsnl = 0, -1  # mode: 0 between elements, 1 in "…" or $"…", 2 in '…'
        i = start
        if self._resume is not None and self._resume[0] == start:
            _, i, mode, bsnl = self._resume
        self._resume = None
        while True:
            if mode == 1:
                m = _DQ_BODY.match(buf, i)
                assert m is not None
                i = m.end()
                if i >= n:
                    self._resume = (start, i, 1, -1)
                    return None
                i += 1  # the closing quote
                mode = 0
            elif mode == 2:
                q = buf.find("'", i)
                if q < 0:
                    self._resume = (start, n, 2, -1)
                    return None
                i, mode = q + 1, 0
            if i >= n:
                if bsnl == n:  # POS_MULTILINE at the end of the buffer: join the next line
                    self._resume = (start, i, 0, bsnl)
                    return None
                return i
            c = buf[i]
            if c == "\\":
                i += 2
                if buf[i - 1] == "\n":
                    bsnl = i
            elif c == '"':
                i, mode = i + 1, 1
            elif c == "'":
                i, mode = i + 1, 2
            elif c == "$":
                m = _VAR_AFTER_DOLLAR.match(buf, i + 1)
                if m is not None:
                    i = m.end()
                elif buf.startswith('$"', i):
                    i, mode = i + 2, 1
                else:
                    return i
            else:
                m = _CHAR_RUN.match(buf, i)
                if m is None:
                    return i
                i = m.end()


def split_word(text: str) -> tuple[Part, ...] | None:
    """yylex.l's SPLIT state over a WORD; None where GRUB's VAR state returns TOKEN_BAD."""
    parts: list[Part] = []
    cur: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 < n:
                if text[i + 1] != "\n":
                    cur.append(text[i : i + 2])
                i += 2
            else:
                cur.append("\\")
                i += 1
        elif c == '"':
            parts.append((TEXT, "".join(cur)))
            cur = []
            j = _split_dquote(text, i + 1, parts)
            if j < 0:
                return None
            i = j
        elif c == "'":
            parts.append((TEXT, "".join(cur)))
            cur = []
            q = text.find("'", i + 1)
            q = n if q < 0 else q
            parts.append((SQSTR, text[i + 1 : q]))
            i = q + 1
        elif c == "$":
            if text.startswith('$"', i):
                parts.append((GETTEXT, "".join(cur)))
                cur = []
                i = _split_i18n(text, i + 2, parts)
            else:
                parts.append((TEXT, "".join(cur)))
                cur = []
                m = _VAR_AFTER_DOLLAR.match(text, i + 1)
                if m is None:
                    return None
                parts.append((VAR, _var_name(m.group())))
                i = m.end()
        else:
            m = _SPLIT_PLAIN.match(text, i)
            assert m is not None
            cur.append(m.group())
            i = m.end()
    parts.append((TEXT, "".join(cur)))
    return tuple(parts)


def _var_name(matched: str) -> str:
    return matched[1:-1] if matched.startswith("{") else matched


def _split_dquote(text: str, i: int, parts: list[Part]) -> int:
    cur: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            d = text[i + 1]
            if d in '$\\"':
                cur.append(d)
                i += 2
            elif d == "\n":
                i += 2
            else:
                cur.append("\\")
                i += 1
        elif c == '"':
            parts.append((DQSTR, "".join(cur)))
            return i + 1
        elif c == "$":
            parts.append((DQSTR, "".join(cur)))
            cur = []
            m = _VAR_AFTER_DOLLAR.match(text, i + 1)
            if m is None:
                return -1
            parts.append((DQVAR, _var_name(m.group())))
            i = m.end()
        else:
            cur.append(c)
            i += 1
    parts.append((DQSTR, "".join(cur)))
    return n


def _split_i18n(text: str, i: int, parts: list[Part]) -> int:
    cur: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            d = text[i + 1] if i + 1 < n else ""
            if d == "\\":
                cur.append("\\\\")
                i += 2
            elif d == '"':
                cur.append('"')
                i += 2
            elif d == "\n":
                i += 2
            else:
                cur.append("\\")
                i += 1
        elif c == '"':
            parts.append((GETTEXT, "".join(cur)))
            return i + 1
        else:
            cur.append(c)
            i += 1
    parts.append((GETTEXT, "".join(cur)))
    return n
