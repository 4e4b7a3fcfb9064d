"""`configfile` (commands/configfile.c): another config in a new context, with a menu of its own.

(`source` and `.`, which run a file in the current context, are script builtins: builtins.py.)
"""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext, fail
from pvboot.config.grub2.extcmd import Command
from pvboot.config.grub2.options import Parsed
from pvboot.errors import GuestDataError, LimitError


def configfile(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    if not opts.args:
        return fail(ctx, "filename expected")
    try:
        ctx.configfile(opts.args[0])
    except LimitError:
        raise
    except GuestDataError as exc:
        return fail(ctx, str(exc))
    return 0


COMMANDS = [Command("configfile", configfile)]
