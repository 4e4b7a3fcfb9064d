"""POSIX extended regular expressions as GRUB's `regexp` compiles them (gnulib regcomp, REG_EXTENDED).

Python's `re` is not used: its syntax differs (`a+?` is lazy there, a greedy optional in POSIX; `\\d`,
`(?…)`, backslashes in brackets…), it returns the leftmost-*first* match where POSIX wants leftmost-
*longest*, and it can backtrack exponentially. This is a Thompson/Pike VM: linear in pattern size times
text length, every step charged to the interpreter's budget. The match is the leftmost-longest one;
sub-matches come from the highest-priority (greedy, left alternative first) path reaching that end, which
is what grub-emu returns for the cases in the tests (`(a|ab)(c|bcd)(d*)` on abcd gives a / bcd / "").

Syntax (RE_SYNTAX_POSIX_EXTENDED): `^ $` anchor anywhere; `* + ? {m} {m,} {,n} {m,n}` (a repetition with
nothing before it is an error; repetitions stack); `|`, `( )` with an unmatched `)` literal; brackets
with ranges, `[:class:]`, `[.c.]`, `[=c=]` and a literal backslash; `.` matches anything; GNU escapes
`\\w \\W \\s \\S \\b \\B \\< \\> \\` \\'`; any other escaped character is literal.
Not supported: back-references (`\\1`…), which GNU allows — they raise EREError. Characters are Python
code points, not bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pvboot.limits import GRUB_MAX_ERE_DEPTH, GRUB_MAX_ERE_PROGRAM

ANY, CHAR, SET, SPLIT, JMP, SAVE, ASSERT, MATCH = range(8)
_DUP_MAX = 0x7FFF

_CLASSES: dict[str, tuple[tuple[int, int], ...]] = {
    "alpha": ((65, 90), (97, 122)),
    "digit": ((48, 57),),
    "alnum": ((48, 57), (65, 90), (97, 122)),
    "upper": ((65, 90),),
    "lower": ((97, 122),),
    "space": ((9, 13), (32, 32)),
    "blank": ((9, 9), (32, 32)),
    "punct": ((33, 47), (58, 64), (91, 96), (123, 126)),
    "print": ((32, 126),),
    "graph": ((33, 126),),
    "cntrl": ((0, 31), (127, 127)),
    "xdigit": ((48, 57), (65, 70), (97, 102)),
}
_WORD = ((48, 57), (65, 90), (95, 95), (97, 122))


class EREError(Exception):
    """The pattern does not compile (message as regerror would say it)."""


def _word_char(s: str, i: int) -> bool:
    if 0 <= i < len(s):
        c = ord(s[i])
        return any(lo <= c <= hi for lo, hi in _WORD)
    return False


# Nodes: ("lit", c) ("set", ranges, negate) ("any",) ("assert", kind) ("group", n, node)
#        ("cat", nodes) ("alt", nodes) ("rep", node, min, max|None); each carries its depth last.
Node = tuple[Any, ...]
Op = tuple[Any, ...]


def _depth(node: Node) -> int:
    return int(node[-1])


def _mk(*fields: object, children: tuple[Node, ...] = ()) -> Node:
    depth = 1 + max((_depth(c) for c in children), default=0)
    if depth > GRUB_MAX_ERE_DEPTH:
        raise EREError("Regular expression too big")
    return (*fields, depth)


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.groups = 0

    def parse(self) -> Node:
        p = self.p
        # frames: [group number or None, alternatives (each a list of nodes)]
        stack: list[tuple[int | None, list[list[Node]]]] = [(None, [[]])]
        i = 0
        while i < len(p):
            c = p[i]
            i += 1
            branch = stack[-1][1][-1]
            if c == "(":
                self.groups += 1
                stack.append((self.groups, [[]]))
            elif c == ")" and len(stack) > 1:
                number, alts = stack.pop()
                inner = self._alt(alts)
                stack[-1][1][-1].append(_mk("group", number, inner, children=(inner,)))
            elif c == "|":
                stack[-1][1].append([])
            elif c in "*+?{":
                if not branch or branch[-1][0] == "assert":
                    raise EREError("Invalid preceding regular expression")
                if c == "{":
                    lo, hi, i = self._interval(i)
                else:
                    lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
                node = branch.pop()
                branch.append(_mk("rep", node, lo, hi, children=(node,)))
            elif c == "[":
                node, i = self._bracket(i)
                branch.append(node)
            elif c == "\\":
                if i >= len(p):
                    raise EREError("Trailing backslash")
                branch.append(self._escape(p[i]))
                i += 1
            elif c == ".":
                branch.append(_mk("any"))
            elif c == "^":
                branch.append(_mk("assert", "bol"))
            elif c == "$":
                branch.append(_mk("assert", "eol"))
            else:
                branch.append(_mk("lit", c))
        if len(stack) > 1:
            raise EREError("Unmatched ( or \\(")
        return self._alt(stack[0][1])

    @staticmethod
    def _alt(alts: list[list[Node]]) -> Node:
        cats = tuple(_mk("cat", tuple(a), children=tuple(a)) for a in alts)
        return cats[0] if len(cats) == 1 else _mk("alt", cats, children=cats)

    def _interval(self, i: int) -> tuple[int, int | None, int]:
        p = self.p
        close = p.find("}", i)
        body = p[i:close] if close >= 0 else ""
        lo_s, comma, hi_s = body.partition(",")
        if (
            close < 0
            or not (lo_s.isdigit() or lo_s == "")
            or not (hi_s.isdigit() or hi_s == "")
            or not body
            or not body.isascii()
        ):
            raise EREError("Invalid content of \\{\\}")
        lo = int(lo_s) if lo_s else 0
        hi = (int(hi_s) if hi_s else None) if comma else lo
        if (hi is not None and lo > hi) or lo > _DUP_MAX or (hi or 0) > _DUP_MAX:
            raise EREError("Invalid content of \\{\\}")
        return lo, hi, close + 1

    def _escape(self, c: str) -> Node:
        if c in "wW":
            return _mk("set", _WORD, c == "W")
        if c in "sS":
            return _mk("set", _CLASSES["space"], c == "S")
        if c in "bB<>`'":
            return _mk("assert", c)
        if "1" <= c <= "9":
            raise EREError("back-references are not supported")
        return _mk("lit", c)

    def _bracket(self, i: int) -> tuple[Node, int]:
        p = self.p
        unmatched = EREError("Unmatched [, [^, [:, [., or [=")
        negate = p[i : i + 1] == "^"
        i += negate
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            if i >= len(p):
                raise unmatched
            c = p[i]
            if c == "]" and not first:
                return _mk("set", tuple(ranges), negate), i + 1
            first = False
            start: str | None
            if c == "[" and p[i + 1 : i + 2] in (":", ".", "="):
                kind = p[i + 1]
                end = p.find(kind + "]", i + 2)
                if end < 0:
                    raise unmatched
                name, i = p[i + 2 : end], end + 2
                if kind == ":":
                    if name not in _CLASSES:
                        raise EREError("Invalid character class name")
                    ranges.extend(_CLASSES[name])
                    if p[i : i + 1] == "-" and p[i + 1 : i + 2] not in ("]", ""):
                        raise EREError("Invalid range end")
                    continue
                if len(name) != 1:
                    raise EREError("Invalid collation character")
                start = name
            else:
                start, i = c, i + 1
            if p[i : i + 1] == "-" and p[i + 1 : i + 2] not in ("]", ""):
                i += 1
                if p[i] == "[" and p[i + 1 : i + 2] in (".", "="):
                    kind = p[i + 1]
                    end = p.find(kind + "]", i + 2)
                    if end < 0 or end != i + 3:
                        raise EREError("Invalid range end")
                    stop, i = p[i + 2], end + 2
                elif p[i] == "[" and p[i + 1 : i + 2] == ":":
                    raise EREError("Invalid range end")
                else:
                    stop, i = p[i], i + 1
                if ord(stop) < ord(start):
                    raise EREError("Invalid range end")
                ranges.append((ord(start), ord(stop)))
            else:
                ranges.append((ord(start), ord(start)))


class Program:
    def __init__(self, code: list[Op], groups: int) -> None:
        self.code = code
        self.groups = groups

    def search(self, s: str, charge: Callable[[int], None]) -> list[tuple[int, int] | None] | None:
        """Leftmost-longest match: spans of group 0…groups (None when a group did not take part)."""
        code, n, nslots = self.code, len(s), 2 * (self.groups + 1)
        best: tuple[int | None, ...] | None = None
        clist: list[tuple[int, tuple[int | None, ...]]] = []
        visited: set[int] = set()
        for i in range(n + 1):
            if best is None:
                start = (i, *(None,) * (nslots - 1))
                self._add(clist, visited, 0, start, s, i)
            if not clist:
                if best is not None:
                    break
                visited = set()
                continue
            charge(1 + len(clist) // 2)
            nlist: list[tuple[int, tuple[int | None, ...]]] = []
            nvisited: set[int] = set()
            ch = s[i] if i < n else ""
            for pc, caps in clist:
                if best is not None and (caps[0] or 0) > (best[0] or 0):
                    continue
                op = code[pc]
                kind = op[0]
                if kind == MATCH:
                    if (
                        best is None
                        or (caps[0] or 0) < (best[0] or 0)
                        or ((caps[0] == best[0]) and i > (best[1] or 0))
                    ):
                        best = (caps[0], i, *caps[2:])
                    continue
                if not ch:
                    continue
                if kind == CHAR:
                    ok = ch == op[1]
                elif kind == SET:
                    c = ord(ch)
                    ok = any(lo <= c <= hi for lo, hi in op[1]) != op[2]
                else:
                    ok = True
                if ok:
                    self._add(nlist, nvisited, pc + 1, caps, s, i + 1)
            clist, visited = nlist, nvisited
        if best is None:
            return None
        return [
            None
            if best[2 * g] is None or best[2 * g + 1] is None
            else (int(best[2 * g] or 0), int(best[2 * g + 1] or 0))
            for g in range(self.groups + 1)
        ]

    def _add(
        self,
        out: list[tuple[int, tuple[int | None, ...]]],
        visited: set[int],
        pc: int,
        caps: tuple[int | None, ...],
        s: str,
        i: int,
    ) -> None:
        code = self.code
        stack = [(pc, caps)]
        while stack:
            pc, caps = stack.pop()
            if pc in visited:
                continue
            visited.add(pc)
            op = code[pc]
            kind = op[0]
            if kind == JMP:
                stack.append((op[1], caps))
            elif kind == SPLIT:
                stack.append((op[2], caps))
                stack.append((op[1], caps))
            elif kind == SAVE:
                k = op[1]
                stack.append((pc + 1, (*caps[:k], i, *caps[k + 1 :])))
            elif kind == ASSERT:
                if _holds(op[1], s, i):
                    stack.append((pc + 1, caps))
            else:
                out.append((pc, caps))


def _holds(kind: str, s: str, i: int) -> bool:
    if kind in ("bol", "`"):
        return i == 0
    if kind in ("eol", "'"):
        return i == len(s)
    before, after = _word_char(s, i - 1), _word_char(s, i)
    if kind == "b":
        return before != after
    if kind == "B":
        return before == after
    if kind == "<":
        return after and not before
    return before and not after  # ">"


def _compile(node: Node, code: list[Op]) -> None:
    def emit(op: Op) -> int:
        if len(code) >= GRUB_MAX_ERE_PROGRAM:
            raise EREError("Regular expression too big")
        code.append(op)
        return len(code) - 1

    kind = node[0]
    if kind == "lit":
        emit((CHAR, node[1]))
    elif kind == "set":
        emit((SET, node[1], node[2]))
    elif kind == "any":
        emit((ANY,))
    elif kind == "assert":
        emit((ASSERT, node[1]))
    elif kind == "group":
        emit((SAVE, 2 * node[1]))
        _compile(node[2], code)
        emit((SAVE, 2 * node[1] + 1))
    elif kind == "cat":
        for child in node[1]:
            _compile(child, code)
    elif kind == "alt":
        jumps = []
        alts = node[1]
        for k, child in enumerate(alts):
            if k < len(alts) - 1:
                split = emit((SPLIT, 0, 0))
                _compile(child, code)
                jumps.append(emit((JMP, 0)))
                code[split] = (SPLIT, split + 1, len(code))
            else:
                _compile(child, code)
        for j in jumps:
            code[j] = (JMP, len(code))
    else:  # rep
        child, lo, hi = node[1], node[2], node[3]
        for _ in range(lo):
            _compile(child, code)
        if hi is None:
            split = emit((SPLIT, 0, 0))
            _compile(child, code)
            emit((JMP, split))
            code[split] = (SPLIT, split + 1, len(code))
        else:
            splits = []
            for _ in range(hi - lo):
                splits.append(emit((SPLIT, 0, 0)))
                _compile(child, code)
            for sp in splits:
                code[sp] = (SPLIT, sp + 1, len(code))


def compile_ere(pattern: str) -> Program:
    parser = _Parser(pattern)
    tree = parser.parse()
    code: list[Op] = [(SAVE, 0)]
    _compile(tree, code)
    code.append((SAVE, 1))
    code.append((MATCH,))
    return Program(code, parser.groups)
