"""`linux`/`initrd` (loader/i386/linux.c), `linux16`/`initrd16` (loader/i386/pc/linux.c) and Fedora's
`linuxefi`/`initrdefi` (loader/i386/efi/linux.c): the Linux loaders, recorded into the running entry's
loader slot. The command line is lib/cmdline.c's (`words.loader_cmdline`).

Each module has a `loaded` flag that its `initrd` requires. A successful kernel load replaces the slot
(the previous loader's unload hook clears its flag) and drops any initrd; a failed one clears only its
module's flag: the kernel loaded before stays in the slot and still boots, but a following `initrd`
fails. A failed `initrd` leaves the previous initrd.
"""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext, fail
from pvboot.config.grub2.extcmd import Command, Run
from pvboot.config.grub2.loader import MODULE_OF, loader_file, unload
from pvboot.config.grub2.options import Parsed
from pvboot.config.grub2.words import loader_cmdline
from pvboot.errors import GuestDataError
from pvboot.menu import LINUX


def _linux(name: str) -> Run:
    module = MODULE_OF[name]

    def run(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
        spec, args = ctx.recorder, opts.args
        if spec is None:
            return 0
        spec.loaded_modules.discard(module)  # the `fail:` path; set again below on success
        if not args:
            return fail(ctx, "filename expected")
        try:
            kernel = loader_file(ctx, args[0], "kernel")
        except GuestDataError as exc:
            return fail(ctx, str(exc))
        unload(spec)
        spec.kind, spec.loader, spec.kernel = LINUX, name, kernel
        spec.args = loader_cmdline(args[1:])
        spec.loaded_modules.add(module)
        return 0

    return run


def _initrd(name: str) -> Run:
    module = MODULE_OF[name]

    def run(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
        spec = ctx.recorder
        if spec is None:
            return 0
        files = [a for a in opts.args if not a.startswith("--")]
        if not files:
            return fail(ctx, "filename expected")
        if module not in spec.loaded_modules:
            return fail(ctx, "you need to load the kernel first")
        try:
            initrds = [loader_file(ctx, f, "initrd") for f in files]
        except GuestDataError as exc:
            return fail(ctx, str(exc))  # the initrd loaded before stays
        spec.initrds = initrds
        return 0

    return run


COMMANDS = [
    *(Command(name, _linux(name)) for name in ("linux", "linux16", "linuxefi")),
    *(Command(name, _initrd(name)) for name in ("initrd", "initrd16", "initrdefi")),
]
