"""`load_env` and `save_env` (commands/loadenv.c): the variables of an environment block (grubenv).

`save_env` writes nothing: pvboot reads the guest disk read-only.
"""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext, fail
from pvboot.config.grub2.extcmd import Command
from pvboot.config.grub2.grubenv import parse_envblk
from pvboot.config.grub2.options import Option, Parsed
from pvboot.errors import GuestDataError

OPTIONS = (Option("file", "f", takes_value=True), Option("skip-sig", "s"))


def load_env(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    path = opts.one("file")
    if path is None:
        prefix = ctx.get("prefix")
        if prefix is None:
            return fail(ctx, "variable `prefix' isn't set")
        path = prefix + "/grubenv"
    try:
        text = ctx.read_text(path)
    except GuestDataError as exc:
        return fail(ctx, str(exc))
    values = parse_envblk(text)
    if values is None:
        return fail(ctx, "invalid environment block")
    wanted = set(opts.args)
    for name, value in values.items():
        if not wanted or name in wanted:
            ctx.set(name, value)
    ctx.log(f"load_env {path}: {', '.join(f'{k}={v}' for k, v in values.items()) or 'empty'}")
    return 0


def save_env(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    ctx.log(f"save_env {' '.join(opts.args)}: not written (pvboot reads the guest disk read-only)")
    return 0


COMMANDS = [Command("load_env", load_env, OPTIONS), Command("save_env", save_env)]
