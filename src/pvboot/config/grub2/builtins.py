"""GRUB 2.06's script-level commands, rewritten: echo (commands/echo.c), set/unset (kern/corecmd.c), export
(normal/context.c), true/false (commands/true.c), test and [ (commands/test.c), regexp (commands/regexp.c),
eval (commands/eval.c), source and . (commands/configfile.c), and break/continue/shift/setparams/return
(script/execute.c). They run on the interpreter alone (any ScriptHost), so they see the interpreter
(`runtime.ScriptRuntime`), not a session's CommandContext; options go through options.py and numbers
through numbers.py, as the session's commands' do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ere import EREError, compile_ere
from .numbers import ERRMSG, GrubErr, strtoull, to_int
from .options import HelpRequested, Option, OptionError, Parsed, parse_options

if TYPE_CHECKING:
    from .runtime import Builtin, ScriptRuntime


# -- the commands --------------------------------------------------------------------------------

_ECHO_OPTIONS = (Option(None, "n"), Option(None, "e"))
_ECHO_ESCAPES = {"\\": "\\", "a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _options(interp: ScriptRuntime, args: list[str], options: tuple[Option, ...], usage: str,
             **how: bool) -> Parsed | int:  # fmt: skip
    """`args` parsed as GRUB's extcmd parses them, or the status the command returns at once: 0 after
    printing `usage` for --help/--usage, GRUB_ERR_BAD_ARGUMENT for a bad option."""
    try:
        return parse_options(args, options, **how)
    except HelpRequested:
        interp.write(f"Usage: {usage}\n")
        return 0
    except OptionError as e:
        return interp.error(GrubErr.BAD_ARGUMENT, str(e))


def _echo(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    opts = _options(
        interp, args, _ECHO_OPTIONS, "echo [-e|-n] STRING", accept_dash=True, options_at_start=True
    )
    if isinstance(opts, int):
        return opts
    words = opts.args
    newline = not opts.has("n")
    if opts.has("e"):
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


def _set(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    if not args:
        interp.write("".join(f"{name}={value}\n" for name, value in interp.sorted_variables()))
        return 0
    if "=" not in args[0]:
        return interp.error(GrubErr.BAD_ARGUMENT, "not an assignment")
    name, value = args[0].split("=", 1)
    interp.set(name, value)
    return 0


def _unset(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    if not args:
        return interp.error(GrubErr.BAD_ARGUMENT, "one argument expected")
    interp.unset(args[0])
    return 0


def _export(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    if not args:
        return interp.error(GrubErr.BAD_ARGUMENT, "one argument expected")
    for name in args:
        interp.export(name)
    return 0


def _true(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    return 0


def _false(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    return GrubErr.TEST_FAILURE


def _eval(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    if not args:
        return 0
    return interp.run_source(" ".join(args), interp.current_file, first_line=interp.current_line)


def _source(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    if len(args) != 1:
        return interp.error(GrubErr.BAD_ARGUMENT, "filename expected")
    interp.execute_file(args[0])
    return 0


def _break_or_continue(is_continue: bool) -> Builtin:
    def command(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
        if not args:
            count = 1
        elif len(args) > 1:
            return interp.error(GrubErr.BAD_ARGUMENT, "one argument expected")
        else:
            count, end, err = strtoull(args[0], 10)
            if err:
                return interp.error(err, ERRMSG[GrubErr(err)])
            if end != len(args[0]):
                return interp.error(GrubErr.BAD_ARGUMENT, "unrecognized number")
            if count == 0:
                return interp.error(GrubErr.BAD_ARGUMENT, "can't break 0 loops")
        interp.set_breaks(count, is_continue)
        return 0

    return command


def _shift(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
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
            interp.report(ERRMSG[GrubErr(err)])
        if end != len(args[0]):
            return GrubErr.BAD_ARGUMENT
    if n > len(params):
        return GrubErr.BAD_ARGUMENT
    interp.set_positional(params[n:])
    return 0


def _setparams(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    if interp.positional() is None:
        return GrubErr.INVALID_COMMAND
    interp.set_positional(args)
    return 0


def _return(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    if interp.positional() is None or len(args) > 1:
        return interp.error(GrubErr.BAD_ARGUMENT, "not in function body")
    if not args:
        interp.set_function_return()
        status = interp.get("?")
        if status is None:
            return 0
        value, _, err = strtoull(status, 10)
        if err:
            interp.report(ERRMSG[GrubErr(err)])
        return to_int(value)
    value, end, err = strtoull(args[0], 10)
    if err:
        return interp.error(err, ERRMSG[GrubErr(err)])
    if end != len(args[0]):
        return interp.error(GrubErr.BAD_ARGUMENT, "unrecognized number")
    interp.set_function_return()
    return interp.error(to_int(value), "false") if value else 0


# -- test ----------------------------------------------------------------------------------------

_NUMERIC = {
    "-eq": lambda a, b: a == b,
    "-ge": lambda a, b: a >= b,
    "-gt": lambda a, b: a > b,
    "-le": lambda a, b: a <= b,
    "-lt": lambda a, b: a < b,
    "-ne": lambda a, b: a != b,
}
_STRING = {
    "=": lambda c: c == 0,
    "==": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _strcmp(a: str, b: str) -> int:
    x, y = a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    return (x > y) - (x < y)


def evaluate_test(interp: ScriptRuntime, args: list[str]) -> tuple[bool, list[str]]:
    """commands/test.c test_parse, without recursion; returns (result, error messages GRUB would keep)."""
    errors: list[str] = []

    def strtosl(s: str) -> int:
        negative = s.startswith("-")
        value, _, err = strtoull(s[1:] if negative else s, 0)
        if err:
            errors.append(ERRMSG[GrubErr(err)])
        return to_int(-value if negative else value)

    def strtoul(s: str) -> int:
        value, _, err = strtoull(s, 0)
        if err:
            errors.append(ERRMSG[GrubErr(err)])
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


def _test(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
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


def _regexp(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    interp.wildcards = True  # loading the regexp module installs GRUB's wildcard translator
    opts = _options(interp, args, _REGEXP_OPTIONS, "regexp [OPTIONS] REGEXP STRING")
    if isinstance(opts, int):
        return opts
    rest = opts.args
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
    names = opts.all("set")
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
                pending.append(ERRMSG[GrubErr(err)])
            var = name[colon + 1 :]
        span = groups[index] if index < len(groups) else None
        if span is None:
            interp.unset(var)
        else:
            interp.set(var, string[span[0] : span[1]])
    for message in pending[-1:]:
        interp.report(message)
    return 0


_TR_OPTIONS = (Option("set", "s", takes_value=True), Option("upcase", "U"), Option("downcase", "D"))
_LOWER, _UPPER = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _tr(interp: ScriptRuntime, args: list[str], block: str | None) -> int:
    """commands/tr.c: `tr [-s VAR] [-U|-D] [SET1 SET2] [STRING]`: each character of STRING (or of $VAR)
    found in SET1 becomes the one at the same place in SET2 (its first occurrence counts); printed, or
    stored in VAR. One argument is the string, two the sets (the string is $VAR), three all of them.
    Where GRUB would read a NULL (a string or set that neither an argument nor an option gives) it is
    "missing parameters" here too."""
    opts = _options(interp, args, _TR_OPTIONS, "tr [OPTIONS] [SET1] [SET2] [STRING]")
    if isinstance(opts, int):
        return opts
    var = opts.one("set") if opts.has("set") else None
    source: str | None = interp.get(var) if var is not None else None
    sets: tuple[str, str] | None = None
    if opts.has("upcase"):
        sets = (_LOWER, _UPPER)
    if opts.has("downcase"):  # (checked after --upcase: it wins)
        sets = (_UPPER, _LOWER)
    rest = opts.args
    if len(rest) > 3:
        return interp.error(GrubErr.BAD_ARGUMENT, "too many parameters")
    if len(rest) == 1:
        source = rest[0]
    elif len(rest) >= 2:
        sets = (rest[0], rest[1])
        source = rest[2] if len(rest) == 3 else source
    if sets is None or source is None:
        return interp.error(GrubErr.BAD_ARGUMENT, "missing parameters")
    before, after = sets
    if len(before) != len(after):
        return interp.error(GrubErr.BAD_ARGUMENT, "set sizes did not match")
    interp.charge(len(source))
    table = {c: after[before.index(c)] for c in set(source) if c in before}
    result = "".join(table.get(c, c) for c in source)
    if var is not None:
        interp.set(str(var), result)
    else:
        interp.write(result + "\n")
    return 0


# The builtins every Interpreter has (registered with block_as_arg: a `{ … }` block is the last word).
BUILTINS: dict[str, Builtin] = {
    "echo": _echo,
    "set": _set,
    "unset": _unset,
    "export": _export,
    "true": _true,
    "false": _false,
    "test": _test,
    "[": _test,
    "regexp": _regexp,
    "tr": _tr,
    "eval": _eval,
    "source": _source,
    ".": _source,
    "break": _break_or_continue(False),
    "continue": _break_or_continue(True),
    "shift": _shift,
    "setparams": _setparams,
    "return": _return,
}
