"""Commands whose effect does not exist when pvboot runs in dom0: the screen, the firmware, modules,
the keyboard (commands/keystatus.c, read.c, i386/cpuid.c, gettext/gettext.c, and the video, font,
terminal and module commands). They are accepted, so a config that uses them runs as in GRUB."""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext
from pvboot.config.grub2.extcmd import Command, Run
from pvboot.config.grub2.options import Parsed

IGNORED = (
    "insmod",
    "rmmod",
    "load_video",
    "terminal_output",
    "terminal_input",
    "terminal",
    "serial",
    "loadfont",
    "font",
    "background_image",
    "background_color",
    "play",
    "clear",
    "sleep",
    "gfxmode",
    "videoinfo",
    "set_gfxpayload",
    "cmostest",
    "cmosclean",
    "lsfonts",
    "tpm2_key_protector_init",
    "cryptomount",
    "lsmod",
    "loopback",
    "savedefault",
    "fwsetup",
)


def _status(value: int) -> Run:
    def run(_ctx: CommandContext, _opts: Parsed, _block: str | None) -> int:
        return value

    return run


def gettext(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    ctx.log(" ".join(opts.args))
    return 0


COMMANDS = [
    *(Command(name, _status(0)) for name in IGNORED),
    Command("gettext", gettext),
    Command("keystatus", _status(1)),  # no key is ever held down
    Command("cpuid", _status(0)),  # a 64-bit CPU with long mode, as dom0's
    Command("read", _status(1)),  # no console input while the config runs
]
