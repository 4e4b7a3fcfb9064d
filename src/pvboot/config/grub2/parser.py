"""The GRUB 2.06 script grammar (grub-core/script/parser.y) as a depth-bounded recursive-descent parser.

    script    : newlines0 | script statement delimiter newlines0
    statement : command | function
    command   : grubcmd | ifcmd | forcmd | whilecmd | untilcmd
    grubcmd   : word arguments0 block0          (word: NAME|WORD; arguments may also be keywords)
    block     : "{" commands1 delimiters0 "}"
    commands1 : newlines0 command | commands1 delimiters1 command
    delimiter : ";" | "\\n"      delimiters1 : delimiter "\\n"*
    function  : "function" NAME newlines0 "{" commands1 delimiters1 "}"
    ifcmd     : "if" commands1 delimiters1 "then" commands1 delimiters1
                    ("elif" … | "else" commands1 delimiters1)? "fi"
    forcmd    : "for" NAME "in" arguments0 delimiters1 "do" commands1 delimiters1 "done"
    whilecmd  : ("while"|"until") commands1 delimiters1 "do" commands1 delimiters1 "done"

Consequences worth knowing (all as in GRUB): a function can only be defined at the top level of a script
(not inside `if` or a block), and it is defined when it is *parsed*, before any command of its chunk runs;
a body needs at least one command (`menuentry x { }` is a syntax error) and a function body needs a
delimiter before its `}` (`function f { echo a }` is an error, a block `{ echo a }` is not); `!`, `[` and
`]` are ordinary words; `<`, `>`, `|`, `&`, `&&`, `||`, `;;`, `[[`, `]]` are tokens no rule accepts.
`refs` (grub_script_lexer_ref) is raised right after `if`, `while`, `until`, `{`, `for NAME` and
`function NAME`, so only then does the lexer read past the end of the current line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .lexer import Lexer, Part, T, Token

Word = tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Cmdline:
    line: int
    words: tuple[Word, ...]
    block: str | None  # raw text between the braces of a block argument
    block_line: int


@dataclass(frozen=True, slots=True)
class If:
    line: int
    clauses: tuple[tuple[tuple[Node, ...], tuple[Node, ...]], ...]  # (condition, body) for if/elif…
    orelse: tuple[Node, ...] | None


@dataclass(frozen=True, slots=True)
class For:
    line: int
    name: str
    words: tuple[Word, ...]
    body: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class While:
    line: int
    cond: tuple[Node, ...]
    body: tuple[Node, ...]
    until: bool


Node = Cmdline | If | For | While
CmdList = tuple[Node, ...]


class ParseError(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


_ARG_KINDS = (T.NAME, T.WORD, T.KEYWORD)


class Parser:
    """Parses one chunk; `define` is called for each function as soon as its definition is complete."""

    def __init__(
        self,
        lexer: Lexer,
        define: Callable[[str, CmdList, int], None],
        max_depth: int,
        too_deep: Callable[[], Exception],
    ) -> None:
        self._lx = lexer
        self._tok: Token | None = None
        self._define = define
        self._depth = 0
        self._max_depth = max_depth
        self._too_deep = too_deep

    # -- tokens -----------------------------------------------------------------------------------

    def _peek(self) -> Token:
        if self._tok is None:
            self._tok = self._lx.next_token()
            if self._tok.kind == T.BAD:
                raise ParseError(self._tok.text, self._tok.line)
        return self._tok

    def _take(self) -> Token:
        tok = self._peek()
        self._tok = None
        return tok

    def _is_kw(self, word: str) -> bool:
        tok = self._peek()
        return tok.kind == T.KEYWORD and tok.text == word

    def _expect_kw(self, word: str) -> Token:
        if not self._is_kw(word):
            self._fail(f"`{word}' expected")
        return self._take()

    def _fail(self, expected: str) -> None:
        tok = self._peek()
        got = "end of input" if tok.kind == T.EOF else "newline" if tok.kind == T.NEWLINE else f"`{tok.text}'"
        raise ParseError(f"syntax error: {expected}, found {got}", tok.line)

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > self._max_depth:
            raise self._too_deep()

    def _open(self) -> None:  # grub_script_lexer_ref
        self._lx.refs += 1

    def _close(self) -> None:  # grub_script_lexer_deref
        self._lx.refs -= 1

    def _newlines(self) -> None:
        while self._peek().kind == T.NEWLINE:
            self._take()

    def _delimiters(self) -> bool:
        """delimiters0; True if at least one delimiter was read."""
        if self._peek().kind not in (T.SEMI, T.NEWLINE):
            return False
        self._take()
        self._newlines()
        return True

    # -- grammar ----------------------------------------------------------------------------------

    def parse_script(self) -> CmdList:
        cmds: list[Node] = []
        self._newlines()
        while self._peek().kind != T.EOF:
            tok = self._peek()
            if tok.kind == T.KEYWORD and tok.text == "function":
                self._function()
            else:
                cmds.append(self._command())
            if self._peek().kind not in (T.SEMI, T.NEWLINE):
                self._fail("`;' or newline expected")
            self._take()
            self._newlines()
        return tuple(cmds)

    def _command(self) -> Node:
        tok = self._peek()
        if tok.kind in (T.NAME, T.WORD):
            return self._grubcmd()
        if tok.kind == T.KEYWORD:
            if tok.text == "if":
                return self._if()
            if tok.text == "for":
                return self._for()
            if tok.text in ("while", "until"):
                return self._while()
        self._fail("command expected")
        raise AssertionError  # pragma: no cover

    def _commands1(self) -> tuple[CmdList, bool]:
        """commands1 followed by delimiters0; returns the list and whether delimiters ended it."""
        self._newlines()
        cmds = [self._command()]
        while True:
            if not self._delimiters():
                return tuple(cmds), False
            tok = self._peek()
            if tok.kind in (T.NAME, T.WORD) or (
                tok.kind == T.KEYWORD and tok.text in ("if", "for", "while", "until")
            ):
                cmds.append(self._command())
            else:
                return tuple(cmds), True

    def _body(self, closer: str) -> CmdList:
        cmds, delimited = self._commands1()
        if not delimited:
            self._fail(f"`;' or newline before `{closer}' expected")
        return cmds

    def _grubcmd(self) -> Cmdline:
        first = self._take()
        words: list[Word] = [first.parts]
        while self._peek().kind in _ARG_KINDS:
            words.append(self._take().parts)
        block, block_line = None, 0
        if self._peek().kind == T.LBR:
            block, block_line = self._block()
        return Cmdline(first.line, tuple(words), block, block_line)

    def _block(self) -> tuple[str, int]:
        lbr = self._take()
        self._enter()
        self._open()
        self._commands1()
        rbr = self._peek()
        if rbr.kind != T.RBR:
            self._fail("`}' expected")
        self._take()
        self._close()
        self._depth -= 1
        return self._lx.buf[lbr.end : rbr.start], self._lx.line_of(lbr.end)

    def _function(self) -> None:
        kw = self._take()
        name = self._peek()
        if name.kind != T.NAME:
            self._fail("function name expected")
        self._take()
        self._enter()
        self._open()
        self._newlines()
        if self._peek().kind != T.LBR:
            self._fail("`{' expected")
        self._take()
        body = self._body("}")
        if self._peek().kind != T.RBR:
            self._fail("`}' expected")
        self._take()
        self._close()
        self._depth -= 1
        self._define(name.text, body, kw.line)

    def _if(self) -> If:
        kw = self._take()
        self._enter()
        self._open()
        clauses: list[tuple[CmdList, CmdList]] = []
        orelse: CmdList | None = None
        while True:
            cond = self._body("then")
            self._expect_kw("then")
            body = self._body("fi")
            clauses.append((cond, body))
            if self._is_kw("elif"):
                self._take()
                continue
            if self._is_kw("else"):
                self._take()
                orelse = self._body("fi")
            break
        self._expect_kw("fi")
        self._close()
        self._depth -= 1
        return If(kw.line, tuple(clauses), orelse)

    def _for(self) -> For:
        kw = self._take()
        name = self._peek()
        if name.kind != T.NAME:
            self._fail("loop variable name expected")
        self._take()
        self._enter()
        self._open()
        self._expect_kw("in")
        words: list[Word] = []
        while self._peek().kind in _ARG_KINDS:
            words.append(self._take().parts)
        if not self._delimiters():
            self._fail("`;' or newline expected")
        self._expect_kw("do")
        body = self._body("done")
        self._expect_kw("done")
        self._close()
        self._depth -= 1
        return For(kw.line, name.text, tuple(words), body)

    def _while(self) -> While:
        kw = self._take()
        self._enter()
        self._open()
        cond = self._body("do")
        self._expect_kw("do")
        body = self._body("done")
        self._expect_kw("done")
        self._close()
        self._depth -= 1
        return While(kw.line, cond, body, kw.text == "until")
