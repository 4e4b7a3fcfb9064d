"""A GRUB command as pvboot declares it: a name, a function and its option table (commands/extcmd.c).

GRUB's extcmd parses a command's options (lib/arg.c) before the command runs, and a malformed argument
fails the command without running it; `bind` does the same for pvboot's commands, which then see the
parsed options and the other arguments. A command declared without options gets its arguments as they
are (GRUB's plain grub_register_command: `linux /vmlinuz -h` passes `-h` to the kernel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pvboot.config.grub2.context import CommandContext, fail
from pvboot.config.grub2.options import Option, OptionError, Parsed, parse_options

if TYPE_CHECKING:
    from pvboot.config.grub2.interp import CommandFn, Interpreter

Run = Callable[[CommandContext, Parsed, "str | None"], int]


@dataclass(frozen=True)
class Command:
    """One command: `run(ctx, parsed options, block)` returns the status ($?)."""

    name: str
    run: Run
    options: tuple[Option, ...] | None = None  # None: the arguments are not parsed
    accept_dash: bool = False  # GRUB_COMMAND_ACCEPT_DASH: unknown options are plain arguments


def bind(command: Command, ctx: CommandContext) -> CommandFn:
    """The interpreter's view of `command`, running against `ctx`."""

    def run(_interp: Interpreter, args: list[str], block: str | None) -> int:
        if command.options is None:
            return command.run(ctx, Parsed(args=list(args)), block)
        try:
            parsed = parse_options(args, command.options, accept_dash=command.accept_dash)
        except OptionError as exc:
            return fail(ctx, str(exc))
        return command.run(ctx, parsed, block)

    return run
