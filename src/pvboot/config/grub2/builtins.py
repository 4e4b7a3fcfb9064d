"""GRUB 2.06's script-level commands, rewritten: echo (commands/echo.c), set/unset (kern/corecmd.c), export
(normal/context.c), true/false (commands/true.c), test and [ (commands/test.c), regexp (commands/regexp.c),
eval (commands/eval.c), source and . (commands/configfile.c), and break/continue/shift/setparams/return
(script/execute.c). Also GRUB's option parser (lib/arg.c) and grub_strtoull, for commands hosts register.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from .ere import EREError, compile_ere

if TYPE_CHECKING:
    from .interp import CommandFn, Interpreter


class GrubErr(IntEnum):
    """The grub_err_t numbers that end up in $?."""

    NONE = 0
    TEST_FAILURE = 1
    FILE_NOT_FOUND = 5
    BAD_FILENAME = 7
    BAD_NUMBER = 10
    OUT_OF_RANGE = 11
    UNKNOWN_DEVICE = 12
    UNKNOWN_COMMAND = 16
    INVALID_COMMAND = 17
    BAD_ARGUMENT = 18


_ULL_MAX = (1 << 64) - 1
_ERRMSG = {GrubErr.BAD_NUMBER: "unrecognized number", GrubErr.OUT_OF_RANGE: "overflow is detected"}


def strtoull(s: str, base: int = 0) -> tuple[int, int, int]:
    """grub_strtoull: (value, index where parsing stopped, grub_errno it would set or 0)."""
    i, n = 0, len(s)
    while i < n and s[i] in " \t\n\r":
        i += 1
    if s[i:i + 1] == "0":
        if s[i + 1:i + 2] == "x":
            if base in (0, 16):
                base, i = 16, i + 2
        elif base == 0 and "0" <= s[i + 1:i + 2] <= "7" and s[i + 1:i + 2]:
            base = 8
    base = base or 10
    num, found = 0, False
    while i < n:
        c = s[i]
        if "0" <= c <= "9":
            digit = ord(c) - 48
        elif "a" <= c.lower() <= "z" and c.isascii():
            digit = ord(c.lower()) - 87
        else:
            break
        if digit >= base:
            break
        found = True
        if num > (_ULL_MAX - digit) // base:
            return _ULL_MAX, i, GrubErr.OUT_OF_RANGE
        num = num * base + digit
        i += 1
    if not found:
        return 0, i, GrubErr.BAD_NUMBER
    return num, i, 0


def to_int(value: int) -> int:
    """What a C `int` (a grub_err_t, test's grub_strtosl) keeps of an unsigned long."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


# -- lib/arg.c -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    long: str | None
    short: str | None = None
    takes_value: bool = False
    repeatable: bool = False
    optional: bool = False

    @property
    def key(self) -> str:
        return self.long or self.short or ""


class OptionError(Exception):
    """grub_arg_parse failed with GRUB_ERR_BAD_ARGUMENT; the message is GRUB's."""


class HelpRequested(Exception):
    """-h/--help or -u/--usage: GRUB prints help instead of running the command (status 0)."""


_HELP = Option("help", "h")
_USAGE = Option("usage", "u")


def parse_options(argv: list[str], options: tuple[Option, ...], *, accept_dash: bool = False,
                  options_at_start: bool = False) -> tuple[dict[str, object], list[str]]:
    """grub_arg_parse: returns ({option key: True | value | [values]}, remaining arguments)."""
    shorts = {o.short: o for o in options if o.short}
    longs = {o.long: o for o in options if o.long}
    state: dict[str, object] = {}
    rest: list[str] = []

    def find_short(c: str) -> Option | None:
        return shorts.get(c) or {"h": _HELP, "u": _USAGE}.get(c)

    def apply(opt: Option, value: str | None) -> None:
        if opt in (_HELP, _USAGE):
            raise HelpRequested
        if opt.repeatable:
            values = state.setdefault(opt.key, [])
            assert isinstance(values, list)
            values.append(value)
        else:
            state[opt.key] = True if value is None else value

    i = 0
    while i < len(argv):
        arg = argv[i]
        if (rest and options_at_start) or not arg.startswith("-") or len(arg) == 1:
            rest.append(arg)
            i += 1
            continue
        value: str | None = None
        opt: Option | None
        if arg[1] != "-":
            if accept_dash and any(find_short(c) is None for c in arg[1:]):
                rest.append(arg)
                i += 1
                continue
            j = 1
            while True:
                opt = find_short(arg[j])
                if opt is None:
                    raise OptionError(f"unknown argument `-{arg[j]}'")
                j += 1
                if j < len(arg):
                    if opt.takes_value and not opt.optional:
                        raise OptionError(f"missing mandatory option for `{opt.long}'")
                    apply(opt, None)
                    continue
                if opt.takes_value and i + 1 < len(argv):
                    nxt = argv[i + 1]
                    if not opt.optional or len(nxt) < 2 or nxt[0] != "-":
                        value = nxt
                        i += 1
                break
        else:
            if len(arg) == 2:
                rest.extend(argv[i + 1:])
                break
            eq = arg.find("=")
            name = arg[2:eq] if eq >= 0 else arg[2:]
            if eq >= 0:
                value = arg[eq + 1:]
            opt = longs.get(name) or {"help": _HELP, "usage": _USAGE}.get(name)
            if value is None and i + 1 < len(argv) and not argv[i + 1].startswith("-") and opt \
                    and opt.takes_value:
                value = argv[i + 1]
                i += 1
            if opt is None:
                if accept_dash:
                    rest.append(arg)
                    i += 1
                    continue
                raise OptionError(f"unknown argument `{arg}'")
        if opt.takes_value and not (value is None and opt.optional):
            if value is None:
                raise OptionError(f"missing mandatory option for `{opt.long}'")
            apply(opt, value)
        else:
            if value is not None:
                raise OptionError(f"a value was assigned to the argument `{arg}' while it doesn't require"
                                  " an argument")
            apply(opt, None)
        i += 1
    return state, rest


# -- the commands --------------------------------------------------------------------------------

_ECHO_OPTIONS = (Option(None, "n"), Option(None, "e"))
_ECHO_ESCAPES = {"\\": "\\", "a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _echo(interp: Interpreter, args: list[str], block: str | None) -> int:
    try:
        state, words = parse_options(args, _ECHO_OPTIONS, accept_dash=True, options_at_start=True)
    except HelpRequested:
        interp.write("Usage: echo [-e|-n] STRING\n")
        return 0
    except OptionError as e:
        return interp.error(GrubErr.BAD_ARGUMENT, str(e))
    newline = "n" not in state
    if "e" in state:
        out = []
        for word in words:
            chars: list[str] = []
            i = 0
            while i < len(word):
                if word[i] == "\\":
                    i += 1
                    if i >= len(word):
                        break
                    if word[i] == "c":
                        newline = False
                    else:
                        chars.append(_ECHO_ESCAPES.get(word[i], ""))
                else:
                    chars.append(word[i])
                i += 1
            out.append("".join(chars))
        words = out
    interp.write(" ".join(words) + ("\n" if newline else ""))
    return 0


def _set(interp: Interpreter, args: list[str], block: str | None) -> int:
    if not args:
        interp.write("".join(f"{name}={value}\n" for name, value in interp.sorted_variables()))
        return 0
    if "=" not in args[0]:
        return interp.error(GrubErr.BAD_ARGUMENT, "not an assignment")
    name, value = args[0].split("=", 1)
    interp.set(name, value)
    return 0


def _unset(interp: Interpreter, args: list[str], block: str | None) -> int:
    if not args:
        return interp.error(GrubErr.BAD_ARGUMENT, "one argument expected")
    interp.unset(args[0])
    return 0


def _export(interp: Interpreter, args: list[str], block: str | None) -> int:
    if not args:
        return interp.error(GrubErr.BAD_ARGUMENT, "one argument expected")
    for name in args:
        interp.export(name)
    return 0


def _true(interp: Interpreter, args: list[str], block: str | None) -> int:
    return 0


def _false(interp: Interpreter, args: list[str], block: str | None) -> int:
    return GrubErr.TEST_FAILURE


def _eval(interp: Interpreter, args: list[str], block: str | None) -> int:
    if not args:
        return 0
    return interp.run_source(" ".join(args), interp.current_file, first_line=interp.current_line)


def _source(interp: Interpreter, args: list[str], block: str | None) -> int:
    if len(args) != 1:
        return interp.error(GrubErr.BAD_ARGUMENT, "filename expected")
    interp.execute_file(args[0])
    return 0


def _break_or_continue(is_continue: bool) -> CommandFn:
    def command(interp: Interpreter, args: list[str], block: str | None) -> int:
        if not args:
            count = 1
        elif len(args) > 1:
            return interp.error(GrubErr.BAD_ARGUMENT, "one argument expected")
        else:
            count, end, err = strtoull(args[0], 10)
            if err:
                return interp.error(err, _ERRMSG[GrubErr(err)])
            if end != len(args[0]):
                return interp.error(GrubErr.BAD_ARGUMENT, "unrecognized number")
            if count == 0:
                return interp.error(GrubErr.BAD_ARGUMENT, "can't break 0 loops")
        interp.set_breaks(count, is_continue)
        return 0

    return command


def _shift(interp: Interpreter, args: list[str], block: str | None) -> int:
    params = interp.positional()
    if params is None:
        return 0
    if not args:
        n = 1
    elif len(args) > 1:
        return GrubErr.BAD_ARGUMENT
    else:
        n, end, err = strtoull(args[0], 10)
        if err:  # grub_errno stays set and is printed after the command
            interp.report(_ERRMSG[GrubErr(err)])
        if end != len(args[0]):
            return GrubErr.BAD_ARGUMENT
    if n > len(params):
        return GrubErr.BAD_ARGUMENT
    interp.set_positional(params[n:])
    return 0


def _setparams(interp: Interpreter, args: list[str], block: str | None) -> int:
    if interp.positional() is None:
        return GrubErr.INVALID_COMMAND
    interp.set_positional(args)
    return 0


def _return(interp: Interpreter, args: list[str], block: str | None) -> int:
    if interp.positional() is None or len(args) > 1:
        return interp.error(GrubErr.BAD_ARGUMENT, "not in function body")
    if not args:
        interp.set_function_return()
        status = interp.get("?")
        if status is None:
            return 0
        value, _, err = strtoull(status, 10)
        if err:
            interp.report(_ERRMSG[GrubErr(err)])
        return to_int(value)
    value, end, err = strtoull(args[0], 10)
    if err:
        return interp.error(err, _ERRMSG[GrubErr(err)])
    if end != len(args[0]):
        return interp.error(GrubErr.BAD_ARGUMENT, "unrecognized number")
    interp.set_function_return()
    return interp.error(to_int(value), "false") if value else 0


# -- test ----------------------------------------------------------------------------------------

_NUMERIC = {"-eq": lambda a, b: a == b, "-ge": lambda a, b: a >= b, "-gt": lambda a, b: a > b,
            "-le": lambda a, b: a <= b, "-lt": lambda a, b: a < b, "-ne": lambda a, b: a != b}
_STRING = {"=": lambda c: c == 0, "==": lambda c: c == 0, "!=": lambda c: c != 0, "<": lambda c: c < 0,
           "<=": lambda c: c <= 0, ">": lambda c: c > 0, ">=": lambda c: c >= 0}


def _strcmp(a: str, b: str) -> int:
    x, y = a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    return (x > y) - (x < y)


def evaluate_test(interp: Interpreter, args: list[str]) -> tuple[bool, list[str]]:
    """commands/test.c test_parse, without recursion; returns (result, error messages GRUB would keep)."""
    errors: list[str] = []

    def strtosl(s: str) -> int:
        negative = s.startswith("-")
        value, _, err = strtoull(s[1:] if negative else s, 0)
        if err:
            errors.append(_ERRMSG[GrubErr(err)])
        return to_int(-value if negative else value)

    def strtoul(s: str) -> int:
        value, _, err = strtoull(s, 0)
        if err:
            errors.append(_ERRMSG[GrubErr(err)])
        return value

    argc, argn = len(args), 0
    stack: list[list[bool]] = []
    ctx = [False, False, True]  # invert, or, and

    def update(val: bool) -> None:
        ctx[2] = ctx[2] and (not val if ctx[0] else val)
        ctx[0] = False

    while True:
        if argn >= argc:
            val = ctx[1] or ctx[2]
            if not stack:
                return val, errors
            ctx = stack.pop()
            update(val)
            continue
        interp.charge()
        a = args[argn]
        if argn + 2 < argc:
            op, b = args[argn + 1], args[argn + 2]
            if op in _STRING:
                update(_STRING[op](_strcmp(a, b)))
                argn += 3
                continue
            if op in _NUMERIC:
                update(_NUMERIC[op](strtosl(a), strtosl(b)))
                argn += 3
                continue
            if op in ("-pgt", "-plt"):
                i = 0
                while i < len(a) and i < len(b) and a[i] == b[i]:
                    i += 1
                i -= 1
                while i > 0 and a[i].isascii() and a[i].isdigit():
                    i -= 1
                i += 1
                x, y = strtoul(a[i:]), strtoul(b[i:])
                update(x > y if op == "-pgt" else x < y)
                argn += 3
                continue
            if op.startswith(("-nt", "-ot")):
                first, second = interp.host.file_test("-e", a), interp.host.file_test("-e", b)
                update(first and not second if op.startswith("-nt") else second and not first)
                argn += 3
                continue
        if argn + 1 < argc:
            b = args[argn + 1]
            if a in ("-d", "-e", "-f", "-s"):
                update(bool(interp.host.file_test(a, b)))
                argn += 2
                continue
            if a in ("-n", "-z"):
                update(bool(b) if a == "-n" else not b)
                argn += 2
                continue
        argn += 1
        if a == ")":
            val = ctx[1] or ctx[2]
            if not stack:
                return val, errors
            ctx = stack.pop()
            update(val)
        elif a == "(":
            stack.append(ctx)
            ctx = [False, False, True]
        elif a == "!":
            ctx[0] = not ctx[0]
        elif a == "-a":
            pass
        elif a == "-o":
            ctx[1] = ctx[1] or ctx[2]
            ctx[2] = True
        else:
            update(bool(a))


def _test(interp: Interpreter, args: list[str], block: str | None) -> int:
    if args and args[-1] == "]":
        args = args[:-1]
    result, errors = evaluate_test(interp, args)
    if not result:
        return GrubErr.TEST_FAILURE  # grub_error(TEST_FAILURE) replaces any pending error
    for message in errors:
        interp.report(message)
    return 0


# -- regexp --------------------------------------------------------------------------------------

_REGEXP_OPTIONS = (Option("set", "s", takes_value=True, repeatable=True),)


def _regexp(interp: Interpreter, args: list[str], block: str | None) -> int:
    interp.wildcards = True  # loading the regexp module installs GRUB's wildcard translator
    try:
        state, rest = parse_options(args, _REGEXP_OPTIONS)
    except HelpRequested:
        interp.write("Usage: regexp [OPTIONS] REGEXP STRING\n")
        return 0
    except OptionError as e:
        return interp.error(GrubErr.BAD_ARGUMENT, str(e))
    if len(rest) != 2:
        return interp.error(GrubErr.BAD_ARGUMENT, "two arguments expected")
    pattern, string = rest
    try:
        program = compile_ere(pattern)
        groups = program.search(string, interp.charge)
    except EREError as e:
        interp.host.log(f"{interp.current_file}:{interp.current_line}: regexp: {e}")
        return GrubErr.TEST_FAILURE
    if groups is None:
        return GrubErr.TEST_FAILURE
    names = state.get("set", [])
    assert isinstance(names, list)
    pending: list[str] = []
    for name in names:
        colon = name.find(":")
        if colon < 0:
            index, var = 1, name
        else:
            index, end, err = strtoull(name, 10)
            if end != colon:
                return interp.error(GrubErr.BAD_ARGUMENT, f"invalid variable name format {name}")
            if err:
                pending.append(_ERRMSG[GrubErr(err)])
            var = name[colon + 1:]
        span = groups[index] if index < len(groups) else None
        if span is None:
            interp.unset(var)
        else:
            interp.set(var, string[span[0]:span[1]])
    for message in pending[-1:]:
        interp.report(message)
    return 0


def install(interp: Interpreter) -> None:
    for name, fn in (("echo", _echo), ("set", _set), ("unset", _unset), ("export", _export),
                     ("true", _true), ("false", _false), ("test", _test), ("[", _test),
                     ("regexp", _regexp), ("eval", _eval), ("source", _source), (".", _source),
                     ("break", _break_or_continue(False)), ("continue", _break_or_continue(True)),
                     ("shift", _shift), ("setparams", _setparams), ("return", _return)):
        interp.register_builtin(name, fn)
