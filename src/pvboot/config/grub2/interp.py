"""A bounded interpreter for GRUB 2.06 scripts (grub-core/script/execute.c, main.c; normal/main.c).

Execution model, as in GRUB:

- Status: every command, `if`, loop and command list sets `$?` to its status (grub_script_execute_cmd).
  Statuses are grub_err_t numbers: 0 success, 1 GRUB_ERR_TEST_FAILURE ("false"), 18 bad argument, …
- Lookup order for a command name: registered commands (which override the builtins) → script functions
  → `NAME=VALUE` assignment → unknown. An unknown command logs "can't find command" and, exactly like
  GRUB 2.06, leaves status 0 (execute_cmdline returns 0 on that path; grub-emu prints "yes" for
  `if nosuchcmd; then echo yes; fi`). `!` inverts: 1 → 0, 0 → 1, other errors → 0 (and is ignored for
  unknown commands and assignments).
- Error messages are not fatal: they are logged through `host.log` as "FILE:LINE: error: MESSAGE." (GRUB
  prints "error: MESSAGE."); GRUB_ERR_TEST_FAILURE is never printed.
- Syntax errors: the top level of a config file (`run_config`, and `source`/`.`, which GRUB also runs
  through read_config_file) parses and runs one chunk at a time — a line, plus the lines an open construct
  or quote pulls in — and a syntax error drops that chunk (nothing of it runs) and goes on with the next
  line. Code run by grub_script_execute_sourcecode (`run_source`, `run_new_scope` for menu entry bodies,
  `eval`) stops at the first syntax error, with status 0 (GRUB has already printed and cleared the error).
  Functions are defined while parsing, so `f; function f { … }` on one line runs the new `f`.
- Scope: functions, `run_new_scope` get new positional parameters ($1…, $#, $@, $*) but share variables;
  at the top level those expand to nothing and `shift`/`setparams`/`return` refuse. `break`/`continue`/
  `return` work through GRUB's global flags (active_loops, active_breaks, function_return), so they cross
  `source` and `eval` exactly as in GRUB.
- Word expansion follows grub_script_arglist_to_argv (see expand.py): unquoted variables split on blanks,
  quoted text is wildcard-escaped, and words starting with '/', '(' or '*' that hold an unescaped '*' or
  '?' are passed to `host.glob` while `self.wildcards` is true. GRUB has a wildcard translator only once
  its regexp module is loaded: always in grub-emu and in distribution EFI images (regexp is built in),
  on demand elsewhere. It defaults to True; a host modelling a GRUB without regexp sets it False and
  sets it back on `insmod regexp` (the `regexp` builtin turns it on, as autoloading the module does).
- Limits (`ScriptLimits`, in pvboot.limits) raise `LimitError` naming the limit. `max_steps` counts per
  outermost `run_*` call: one step per command/statement, lexer token, loop iteration and word, plus one
  per 256 bytes of tokens and expanded words and per two regexp VM threads. Nesting (`max_nesting`) is
  capped so that the Python stack stays below ~650 frames; parser and executor count against the same
  budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pvboot import budget
from pvboot.errors import GuestDataError, LimitError, NotFoundError
from pvboot.limits import ScriptLimits as ScriptLimits

from .builtins import BUILTINS
from .env import Env
from .expand import WordExpander, is_special
from .host import ScriptHost as ScriptHost
from .lexer import Lexer, LineReader
from .parser import Cmdline, CmdList, For, If, Node, ParseError, Parser, While

CommandFn = Callable[["Interpreter", list[str], str | None], int]


ERR_TEST_FAILURE = 1
ERR_OUT_OF_RANGE = 11
ERR_BAD_ARGUMENT = 18


class _Function:
    __slots__ = ("body", "executing")

    def __init__(self, body: CmdList) -> None:
        self.body = body
        self.executing = 0


@dataclass(frozen=True)
class _Snapshot:
    env: object
    functions: dict[str, CmdList]
    scope: list[str] | None
    flags: tuple[int, int, bool, bool]
    wildcards: bool


class Interpreter(WordExpander):
    def __init__(self, host: ScriptHost, limits: ScriptLimits | None = None) -> None:
        self.host = host
        self.limits = limits = ScriptLimits() if limits is None else limits
        self.current_file = "<script>"
        self.current_line = 0
        self.block_line = 0  # line where the block argument of the running command starts
        self.console: Callable[[str], None] | None = None  # where echo writes; host.log when None
        self.wildcards = True
        self.on_set: Callable[[str, str], None] | None = None  # told of every assignment (decision trace)
        self._env = Env(
            limits.max_value_size, limits.max_variables, limits.max_total_size, lambda: self.current_file
        )
        self._functions: dict[str, _Function] = {}
        self._commands: dict[str, tuple[CommandFn, bool]] = {}
        self._scope: list[str] | None = None
        self._active_loops = 0
        self._active_breaks = 0
        self._is_continue = False
        self._function_return = False
        self._steps = 0
        self._nest = 0
        self._calls = 0
        self._sources = 0
        self._running = 0
        for name, fn in BUILTINS.items():
            self.register_builtin(name, fn)

    # -- public API -------------------------------------------------------------------------------

    def register(self, name: str, fn: CommandFn) -> None:
        """Add a command; it gets (interp, args, block) with any `{ … }` block text apart from args."""
        self._commands[name] = (fn, False)

    def register_builtin(self, name: str, fn: CommandFn) -> None:
        """A command that, like most of GRUB's, sees a block argument as its last word "{…}"."""
        self._commands[name] = (fn, True)

    def run_config(self, text: str, filename: str) -> int:
        """Run a config file's text as normal/main.c read_config_file does (continue after syntax errors)."""
        with self._running_guard(), self._source_level():
            return self._run_text(text, filename, True, 1)

    def run_source(self, text: str, filename: str, *, first_line: int = 1) -> int:
        """grub_script_execute_sourcecode: stop at the first syntax error."""
        with self._running_guard(), self._source_level():
            return self._run_text(text, filename, False, first_line)

    def run_new_scope(
        self, text: str, args: list[str], *, filename: str | None = None, first_line: int = 1
    ) -> int:
        """grub_script_execute_new_scope: a menu entry body with $1… = args, sharing variables.

        Unlike GRUB, a `return` in the body does not stay in effect after it (GRUB boots next anyway)."""
        with self._running_guard(), self._call_level():
            saved = self._scope
            self._scope = list(args)
            try:
                return self._run_text(text, filename or self.current_file, False, first_line)
            finally:
                self._scope = saved
                self._function_return = False

    def execute_file(self, path: str) -> int:
        """read_config_file(path) as `source` does it: missing files are ignored (GRUB clears the error)."""
        try:
            text = self.host.read_file(path)
        except NotFoundError as e:
            self.host.log(f"{self.current_file}:{self.current_line}: {path}: not found, ignored ({e})")
            return 0
        except LimitError:
            raise
        except GuestDataError as e:
            self.report(str(e))
            return 0
        old_file, old_dir = self.get("config_file"), self.get("config_directory")
        config_file = path if path.startswith("(") else f"({self.get('root') or ''}){path}"
        slash = config_file.rfind("/")
        self.set("config_file", config_file)
        self.set("config_directory", config_file[:slash] if slash >= 0 else config_file)
        self.export("config_file")
        self.export("config_directory")
        try:
            return self.run_config(text, path)
        finally:
            for name, old in (("config_file", old_file), ("config_directory", old_dir)):
                if old is None:
                    self.unset(name)
                else:
                    self.set(name, old)

    def get(self, name: str) -> str | None:
        return self._env.get(name)

    def set(self, name: str, value: str) -> None:
        self._env.set(name, value)
        if self.on_set is not None:
            self.on_set(name, value)

    def unset(self, name: str) -> None:
        self._env.unset(name)

    def export(self, name: str) -> None:
        self._env.export(name)

    def add_write_hook(self, name: str, hook: Callable[[str], str]) -> None:
        """grub_register_variable_hook(name, 0, hook): every value stored under `name` goes through it."""
        self._env.write_hooks[name] = hook

    def context_open(self) -> None:
        if self._env.depth > self.limits.max_source_depth + self.limits.max_depth:
            raise self._limit(f"more than {self._env.depth} nested contexts")
        self._env.context_open()

    def context_close(self) -> None:
        if not self._env.context_close():
            self.report("cannot close the initial context")

    def has_function(self, name: str) -> bool:
        return name in self._functions

    def snapshot(self) -> object:
        return _Snapshot(
            self._env.snapshot(),
            {n: f.body for n, f in self._functions.items()},
            None if self._scope is None else list(self._scope),
            (self._active_loops, self._active_breaks, self._is_continue, self._function_return),
            self.wildcards,
        )

    def restore(self, snap: object) -> None:
        if not isinstance(snap, _Snapshot):
            raise TypeError("not a snapshot of this interpreter")
        self._env.restore(snap.env)  # type: ignore[arg-type]
        self._functions = {n: _Function(b) for n, b in snap.functions.items()}
        self._scope = None if snap.scope is None else list(snap.scope)
        self._active_loops, self._active_breaks, self._is_continue, self._function_return = snap.flags
        self.wildcards = snap.wildcards

    # -- reporting and limits ---------------------------------------------------------------------

    def report(self, message: str) -> None:
        """Log an error line the way GRUB prints it."""
        self.host.log(f"{self.current_file}:{self.current_line}: error: {message}.")

    def error(self, code: int, message: str) -> int:
        """grub_error(): report (unless it is a test failure) and return the status."""
        if code not in (0, ERR_TEST_FAILURE):
            self.report(message)
        return code

    def write(self, text: str) -> None:
        if self.console is not None:
            self.console(text)
        else:
            self.host.log("echo: " + text.removesuffix("\n"))

    def _limit(self, what: str) -> LimitError:
        return LimitError(f"{self.current_file}: {what}")

    def charge(self, n: int = 1) -> None:
        self._steps += n
        if self._steps > self.limits.max_steps:
            raise self._limit(f"more than {self.limits.max_steps} interpreter steps")

    def _too_deep(self) -> LimitError:
        return self._limit(f"more than {self.limits.max_nesting} nested blocks, loops, calls and sources")

    def _enter(self) -> None:
        self._nest += 1
        if self._nest > self.limits.max_nesting:
            self._nest -= 1
            raise self._too_deep()

    @contextmanager
    def _running_guard(self) -> Iterator[None]:
        if self._running == 0:
            self._steps = 0
        self._running += 1
        try:
            with budget.charging(self.charge):  # path walks on the guest disk count as steps too
                yield
        except RecursionError:
            raise self._too_deep() from None
        finally:
            self._running -= 1

    @contextmanager
    def _source_level(self) -> Iterator[None]:
        if self._sources >= self.limits.max_source_depth:
            raise self._limit(f"more than {self.limits.max_source_depth} nested source/eval levels")
        self._sources += 1
        try:
            yield
        finally:
            self._sources -= 1

    @contextmanager
    def _call_level(self) -> Iterator[None]:
        if self._calls >= self.limits.max_depth:
            raise self._limit(f"more than {self.limits.max_depth} nested function calls")
        self._enter()
        self._calls += 1
        try:
            yield
        finally:
            self._calls -= 1
            self._nest -= 1

    # -- running text -----------------------------------------------------------------------------

    def _run_text(self, text: str, filename: str, config: bool, first_line: int) -> int:
        if len(text) > self.limits.max_script_size:
            raise LimitError(f"{filename}: script larger than {self.limits.max_script_size} bytes")
        saved = self.current_file, self.current_line
        self.current_file = filename
        self._enter()
        try:
            reader = LineReader(text, config, first_line)
            ret = 0
            while (line := reader.next()) is not None:
                lexer = Lexer(line, reader.number, reader, self.charge)
                parser = Parser(
                    lexer, self._define_function, self.limits.max_nesting - self._nest, self._too_deep
                )
                try:
                    cmds = parser.parse_script()
                except ParseError as e:
                    self.current_line = e.line
                    self.report(e.message)
                    if config:
                        continue
                    return 0
                ret = self._run_list(cmds)
            return ret
        finally:
            self._nest -= 1
            self.current_file, self.current_line = saved

    def _define_function(self, name: str, body: CmdList, line: int) -> None:
        old = self._functions.get(name)
        if old is None:
            self._functions[name] = _Function(body)
        elif old.executing:
            self.current_line = line
            self.report("attempt to redefine a function being executed")
        else:
            old.body = body

    # -- execution --------------------------------------------------------------------------------

    def _set_status(self, ret: int) -> None:
        self._env.set("?", str(ret))

    def _run_list(self, cmds: CmdList | None) -> int:
        """grub_script_execute_cmd on a command list."""
        if not cmds:
            return 0
        ret = 0
        for cmd in cmds:
            if self._active_breaks:
                break
            ret = self._exec(cmd)
            if self._function_return:
                break
        self._set_status(ret)
        return ret

    def _exec(self, node: Node) -> int:
        self.charge()
        self.current_line = node.line
        if type(node) is Cmdline:
            ret = self._exec_cmdline(node)
        else:
            self._enter()
            try:
                if type(node) is If:
                    ret = self._exec_if(node)
                elif type(node) is For:
                    ret = self._exec_for(node)
                else:
                    assert type(node) is While
                    ret = self._exec_while(node)
            finally:
                self._nest -= 1
        self._set_status(ret)
        return ret

    def _exec_if(self, node: If) -> int:
        for cond, body in node.clauses:
            ret = self._run_list(cond)
            if self._function_return:
                return ret
            if ret == 0:
                return self._run_list(body)
        return self._run_list(node.orelse)

    def _loop_step(self, count: int) -> int:
        count += 1
        if count > self.limits.max_loop_iterations:
            raise self._limit(f"more than {self.limits.max_loop_iterations} iterations of one loop")
        self.charge()
        return count

    def _exec_for(self, node: For) -> int:
        if not node.words:
            return 0
        values = self.expand(node.words)
        self._active_loops += 1
        result, count = 0, 0
        try:
            for value in values:
                if self._is_continue and self._active_breaks == 1:
                    self._active_breaks = 0
                if self._active_breaks:
                    break  # GRUB walks the remaining words without running anything
                count = self._loop_step(count)
                self._env.set(node.name, value)
                result = self._run_list(node.body)
                if self._function_return:
                    break
            if self._active_breaks:
                self._active_breaks -= 1
        finally:
            self._active_loops -= 1
        return result

    def _exec_while(self, node: While) -> int:
        self._active_loops += 1
        count = 0
        try:
            while True:
                result = self._run_list(node.cond)
                if self._function_return:
                    break
                if (result == 0) if node.until else (result != 0):
                    break
                count = self._loop_step(count)
                result = self._run_list(node.body)
                if self._function_return:
                    break
                if self._active_breaks == 1 and self._is_continue:
                    self._active_breaks = 0
                if self._active_breaks:
                    break
            if self._active_breaks:
                self._active_breaks -= 1
        finally:
            self._active_loops -= 1
        return result

    def _exec_cmdline(self, node: Cmdline) -> int:
        argv = self.expand(node.words, node.block)
        if not argv:
            return 0
        first = 0
        if argv[0] == "!":
            if len(argv) < 2:
                return self.error(ERR_BAD_ARGUMENT, "no command is specified")
            first = 1
        name = argv[first]
        args = argv[first + 1 :]
        command = self._commands.get(name)
        if command is not None:
            fn, block_as_arg = command
            block = None
            if node.block is not None and not block_as_arg and args:
                args.pop()
                block = node.block
            self.block_line = node.block_line
            ret = int(fn(self, args, block))
        else:
            func = self._functions.get(name)
            if func is None:
                if "=" in name:
                    var, value = name.split("=", 1)
                    self.script_env_set(var, value)
                else:
                    self.report(f"can't find command `{name[:80]}'")
                return 0
            ret = self._call_function(func, args)
        if first:
            if ret == ERR_TEST_FAILURE:
                return 0
            if ret == 0:
                return ERR_TEST_FAILURE
            return 0
        return ret

    def _call_function(self, func: _Function, args: list[str]) -> int:
        with self._call_level():
            saved_loops, saved_scope = self._active_loops, self._scope
            self._active_loops = 0
            self._scope = args
            func.executing += 1
            try:
                return self._run_list(func.body)
            finally:
                func.executing -= 1
                self._function_return = False
                self._active_loops, self._scope = saved_loops, saved_scope

    def script_env_set(self, name: str, value: str) -> int:
        """grub_script_env_set: refuses the positional/special names."""
        if is_special(name):
            return self.error(ERR_BAD_ARGUMENT, f"invalid variable name `{name}'")
        self.set(name, value)
        return 0

    # -- control flags for the builtins -----------------------------------------------------------

    def set_positional(self, args: list[str]) -> None:
        self._scope = list(args)

    def set_breaks(self, count: int, is_continue: bool) -> None:
        self._is_continue = is_continue
        self._active_breaks = min(count, self._active_loops)

    def set_function_return(self) -> None:
        self._function_return = True

    def sorted_variables(self) -> list[tuple[str, str]]:
        return self._env.items_sorted()
