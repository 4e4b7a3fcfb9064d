"""`probe` (commands/probe.c): a device's filesystem type, UUID or label, printed or stored."""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext, fail
from pvboot.config.grub2.extcmd import Command
from pvboot.config.grub2.options import Option, Parsed

OPTIONS = (
    Option("set", "s", takes_value=True),
    Option("driver", "d"),
    Option("partmap", "p"),
    Option("fs", "f"),
    Option("fs-uuid", "u"),
    Option("label", "l"),
    Option("part-uuid"),
)


def probe(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    if not opts.args:
        return fail(ctx, "device name required")
    name = opts.args[0].strip("()")
    view = ctx.view
    if opts.has("fs"):
        value = view.fs_type(name)
    elif opts.has("fs-uuid"):
        value = view.fs_uuid(name)
    else:
        value = view.fs_label(name) if opts.has("label") else None
    if value is None:
        return fail(ctx, f"cannot probe ({name})")
    if opts.has("set"):
        ctx.set(str(opts.one("set")), value)
    else:
        ctx.log(value)
    return 0


COMMANDS = [Command("probe", probe, OPTIONS)]
