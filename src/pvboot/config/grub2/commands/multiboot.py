"""`multiboot`/`module` and `multiboot2`/`module2` (loader/multiboot.c, loader/multiboot_mbi2.c).

`multiboot` and `multiboot2` empty the loader slot first (grub_loader_unset) whether or not they
succeed; `module`/`module2` need their own kernel loaded (its relocator).
"""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext, fail
from pvboot.config.grub2.extcmd import Command, Run
from pvboot.config.grub2.loader import MODULE_OF, loader_file, unload
from pvboot.config.grub2.options import Parsed
from pvboot.errors import GuestDataError
from pvboot.menu import MULTIBOOT


def _multiboot(name: str) -> Run:
    def run(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
        spec = ctx.recorder
        if spec is None:
            return 0
        unload(spec)
        files = [a for a in opts.args if not a.startswith("--")]
        if not files:
            return fail(ctx, "filename expected")
        try:
            spec.kernel = loader_file(ctx, files[0], "kernel")
        except GuestDataError as exc:
            return fail(ctx, str(exc))
        spec.kind, spec.loader, spec.args = MULTIBOOT, name, " ".join(files[1:])
        spec.loaded_modules.add(MODULE_OF[name])
        return 0

    return run


def _module(name: str) -> Run:
    def run(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
        spec = ctx.recorder
        if spec is None:
            return 0
        if MODULE_OF[name] not in spec.loaded_modules:
            return fail(ctx, "you need to load the multiboot kernel first")
        spec.modules.append(" ".join(a for a in opts.args if not a.startswith("--")))
        return 0

    return run


COMMANDS = [
    *(Command(name, _multiboot(name)) for name in ("multiboot", "multiboot2")),
    *(Command(name, _module(name)) for name in ("module", "module2")),
]
