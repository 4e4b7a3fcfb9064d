"""`chainloader` (loader/i386/pc/chainloader.c) and the loaders of other systems (loader/i386/bsd.c,
loader/xnu.c, loader/i386/pc/{ntldr,truecrypt,freedos,plan9}.c): each fills the loader slot with
something pvboot cannot boot, so an entry using one is recognised and reported, not mistaken for a
Linux entry."""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext
from pvboot.config.grub2.extcmd import Command, Run
from pvboot.config.grub2.loader import unload
from pvboot.config.grub2.options import Parsed
from pvboot.menu import CHAINLOADER, OTHER

OTHER_LOADERS = (
    "knetbsd",
    "kfreebsd",
    "kopenbsd",
    "xnu_kernel",
    "xnu_kernel64",
    "appleloader",
    "ntldr",
    "truecrypt",
    "freedos",
    "plan9",
)


def _other(kind: str, name: str) -> Run:
    def run(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
        spec = ctx.recorder
        if spec is not None:
            unload(spec)
            spec.kind, spec.loader = kind, name
            spec.args = " ".join(opts.args)
        return 0

    return run


COMMANDS = [
    Command("chainloader", _other(CHAINLOADER, "chainloader")),
    *(Command(name, _other(OTHER, name)) for name in OTHER_LOADERS),
]
