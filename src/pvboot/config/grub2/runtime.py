"""What GRUB 2's script builtins use of the interpreter (script/execute.c's state, grub_env_*, grub_error).

The builtins (builtins.py) are typed against this protocol rather than `interp.Interpreter`, which
installs them: the interpreter depends on its builtins, and they only on this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pvboot.config.grub2.host import ScriptHost


class ScriptRuntime(Protocol):
    """The running interpreter, as a builtin sees it."""

    host: ScriptHost
    current_file: str
    current_line: int
    wildcards: bool  # GRUB's wildcard translator is installed (the regexp module is loaded)

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def unset(self, name: str) -> None: ...

    def export(self, name: str) -> None: ...

    def sorted_variables(self) -> list[tuple[str, str]]: ...

    def write(self, text: str) -> None:
        """echo's output: the console, or the decision trace."""
        ...

    def report(self, message: str) -> None:
        """An error line as GRUB prints it; the status is unchanged."""
        ...

    def error(self, code: int, message: str) -> int:
        """grub_error: report (unless a test failure) and return `code` as the status."""
        ...

    def charge(self, n: int = 1) -> None:
        """Count interpreter steps against the step limit."""
        ...

    def run_source(self, text: str, filename: str, *, first_line: int = 1) -> int: ...

    def execute_file(self, path: str) -> int: ...

    def positional(self) -> list[str] | None: ...

    def set_positional(self, args: list[str]) -> None: ...

    def set_breaks(self, count: int, is_continue: bool) -> None: ...

    def set_function_return(self) -> None: ...


Builtin = Callable[[ScriptRuntime, list[str], "str | None"], int]
