"""Word expansion as grub_script_arglist_to_argv (script/execute.c) does it.

Each word is built in GRUB's escaped form and then unescaped (or wildcard-expanded):
- TEXT parts (unquoted text) keep their backslash escapes; empty TEXT adds nothing.
- Quoted parts ("…", '…') and quoted variables are passed through wildcard_escape, so they can never
  glob; an empty quoted part still makes an (empty) argument.
- An unquoted variable's value is split on GRUB's blanks (space, tab, CR, LF): the first piece joins the
  current word, the others start new words; leading/trailing blanks vanish, and a value of only blanks
  adds nothing. Backslashes in the value are kept, '*'/'?' in it remain wildcards.
- $#, $1…, $*, $@ come from the current scope, and expand to nothing at the top level. "$@" keeps empty
  arguments and gives one empty word when there are none (GRUB, unlike sh). $10 is the tenth parameter.
- $"…" is the (untranslated) string with $name/${name}/$N/$?/$# substituted by parse_string: "$1"
  there is the *variable* named 1, as in GRUB.
- A block argument is the word "{" + text + "}".
- Finally a word starting with '/', '(' or '*' holding an unescaped '*' or '?' goes to host.glob when
  wildcards are on; no match keeps the word. Everything else is unescaped ("\\c" -> "c").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from pvboot.errors import LimitError

from .lexer import DQSTR, DQVAR, GETTEXT, SQSTR, TEXT, VAR
from .parser import Word

if TYPE_CHECKING:
    from pvboot.limits import ScriptLimits

    from .env import Env
    from .host import ScriptHost

_SPECIAL = frozenset("#*@")
_BLANK_RUN = re.compile(r"[ \t\n\r]+")
_UNESCAPE = re.compile(r"\\(.)", re.S)
_NAME_REST = re.compile(r"[A-Za-z0-9_]*")


class WordExpander:
    """Mixin of Interpreter: the expansion half of the interpreter."""

    host: ScriptHost
    limits: ScriptLimits
    wildcards: bool
    _env: Env
    _scope: list[str] | None
    charge: Callable[[int], None]
    _limit: Callable[[str], LimitError]
    report: Callable[[str], None]

    # -- word expansion (grub_script_arglist_to_argv) ---------------------------------------------

    def expand(self, words: tuple[Word, ...], block: str | None = None) -> list[str]:
        out: list[list[str] | None] = []
        total = 0
        cap = self.limits.max_command_size

        def add(s: str) -> None:
            nonlocal total
            total += len(s)
            if total > cap:
                raise self._limit(f"a command longer than {cap} bytes after expansion")
            cur = out[-1]
            if cur is None:
                out[-1] = [s]
            else:
                cur.append(s)

        for word in words:
            if not out or out[-1] is not None:
                out.append(None)
            for ptype, text in word:
                if ptype == TEXT:
                    if text:
                        add(text)
                elif ptype in (VAR, DQVAR):
                    for i, value in enumerate(self._var_values(text, ptype == VAR)):
                        if i and out[-1] is not None:
                            out.append(None)
                        add(_escape_var(value) if ptype == VAR else _escape(value))
                elif ptype == GETTEXT:
                    add(_escape(self._gettext(text)))
                else:
                    assert ptype in (DQSTR, SQSTR)
                    add(_escape(text))
        if block is not None:
            if not out or out[-1] is not None:
                out.append(None)
            add("{" + _escape(block) + "}")
        if out and out[-1] is None:
            out.pop()
        self.charge(len(out) + total // 256)
        result: list[str] = []
        for pieces in out:
            assert pieces is not None
            s = "".join(pieces)
            if self.wildcards and s[:1] in ("/", "(", "*") and _has_wildcard(s):
                matches = self.host.glob(s)
                if matches:
                    self.charge(len(matches))
                    total += sum(len(m) for m in matches)
                    if total > cap:
                        raise self._limit(f"a command longer than {cap} bytes after expansion")
                    result.extend(matches)
                    continue
            result.append(_unescape(s))
        return result

    def positional(self) -> list[str] | None:
        """The current positional parameters ($1 …), None at the top level."""
        return self._scope

    def _var_values(self, name: str, split: bool) -> list[str]:
        """grub_script_env_get: the argument pieces a variable expands to."""
        res: list[str | None] = [None]
        scope = self._scope
        if not is_special(name):
            value = self._env.get(name)
            if value:
                if split:
                    _split_append(res, value)
                else:
                    res[-1] = value
        elif scope is None:
            pass
        elif name == "#":
            res[-1] = str(len(scope))
        elif name == "*" and not split:
            if scope:
                res[-1] = " ".join(scope)
        elif name in ("*", "@"):
            for i, arg in enumerate(scope):
                if i and res[-1] is not None:
                    res.append(None)
                if split:
                    _split_append(res, arg)
                else:
                    res[-1] = (res[-1] or "") + arg
        else:
            num = int(name) if len(name) <= 20 else 1 << 64
            if num >= 1 << 64:
                self.report("overflow is detected")
            elif 0 < num <= len(scope):
                if split:
                    _split_append(res, scope[num - 1])
                else:
                    res[-1] = scope[num - 1]
        return [r for r in res if r is not None]

    def _gettext(self, text: str) -> str:
        """gettext_append: the (untranslated) template with $vars substituted by parse_string."""
        out: list[str] = []
        i, n, escaped = 0, len(text), False
        while i < n:
            c = text[i]
            if c == "\\":
                escaped = not escaped
                if not escaped:
                    out.append("\\")
                i += 1
            elif c == "$":
                if escaped:
                    escaped = False
                    out.append("$")
                    i += 1
                    continue
                i += 1
                d = text[i] if i < n else ""
                if d == "{":
                    close = text.find("}", i + 1)
                    if close < 0:
                        break
                    out.append(self._gettext_var(text[i + 1 : close]))
                    i = close + 1
                elif d and d in "0123456789":
                    j = i
                    while j < n and text[j] in "0123456789":
                        j += 1
                    out.append(self._gettext_var(text[i:j]))
                    i = j
                elif d and (d == "_" or ("a" <= d <= "z") or ("A" <= d <= "Z")):
                    m = _NAME_REST.match(text, i)
                    assert m is not None
                    out.append(self._gettext_var(m.group()))
                    i = m.end()
                elif d and d in "?#":
                    out.append(self._gettext_var(d))
                    i += 1
                else:
                    out.append("$")
            else:
                if escaped:
                    out.append("\\")
                escaped = False
                out.append(c)
                i += 1
        return "".join(out)

    def _gettext_var(self, name: str) -> str:
        if name == "#" and self._scope is not None:
            return str(len(self._scope))
        return self._env.get(name) or ""


def is_special(name: str) -> bool:
    """grub_env_special: positional and special parameters cannot be assigned by scripts."""
    return (name[:1].isascii() and name[:1].isdigit()) or name in _SPECIAL


def _split_append(res: list[str | None], value: str) -> None:
    """grub_script_argv_split_append: split on GRUB's blanks, first piece joins the current word."""
    stripped = value.strip(" \t\n\r")
    if not stripped:
        return
    pieces = _BLANK_RUN.split(stripped)
    res[-1] = (res[-1] or "") + pieces[0]
    for piece in pieces[1:]:
        res.append(piece)


def _escape(s: str) -> str:
    """wildcard_escape: quoted text can never be a wildcard."""
    if "\\" in s or "*" in s or "?" in s:
        s = s.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
    return s


def _escape_var(s: str) -> str:
    """The escaping of unquoted variable values: backslashes kept, '*'/'?' stay wildcards."""
    if "\\" not in s:
        return s
    out: list[str] = []
    for i, ch in enumerate(s):
        if ch == "\\":
            out.append("\\")
            if s[i + 1 : i + 2] in ("?", "*"):
                out.append("\\")
        out.append(ch)
    return "".join(out)


def _unescape(s: str) -> str:
    return _UNESCAPE.sub(r"\1", s) if "\\" in s else s


def _has_wildcard(s: str) -> bool:
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c in "*?":
            return True
        i += 1
    return False
