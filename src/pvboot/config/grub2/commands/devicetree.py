"""`devicetree` (loader/efi/fdt.c): the device tree the running entry's kernel gets."""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext, fail
from pvboot.config.grub2.extcmd import Command
from pvboot.config.grub2.loader import loader_file
from pvboot.config.grub2.options import Parsed
from pvboot.errors import GuestDataError


def devicetree(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    spec = ctx.recorder
    if spec is None:
        return 0
    if not opts.args:
        return fail(ctx, "filename expected")
    try:
        spec.devicetree = loader_file(ctx, opts.args[0], "devicetree")
    except GuestDataError as exc:
        return fail(ctx, str(exc))
    return 0


COMMANDS = [Command("devicetree", devicetree)]
