"""`boot` (commands/boot.c): inside an entry it boots at once when the loader slot is full, and
otherwise fails and the entry goes on."""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext, fail
from pvboot.config.grub2.extcmd import Command
from pvboot.config.grub2.loader import BootNow
from pvboot.config.grub2.options import Parsed
from pvboot.menu import NOTHING


def boot(ctx: CommandContext, _opts: Parsed, _block: str | None) -> int:
    spec = ctx.recorder
    if spec is None:
        return 0
    if spec.kind == NOTHING:
        return fail(ctx, "you need to load the kernel first")
    raise BootNow()


COMMANDS = [Command("boot", boot)]
