"""The loader slot GRUB's loaders share (commands/boot.c grub_loader_set/unset) and how they open files.

Loader commands do not load anything: while a menu entry runs they record into a BootSpec what GRUB's
loader would have loaded (checking the files exist, as GRUB opens them), so the entry's commands decide
the kernel, initrds and command line exactly as GRUB's would. The BootSpec is GRUB's one loader slot;
beside it each loader module keeps its own `loaded` flag (`BootSpec.loaded_modules`), as in GRUB 2.06
for i386-pc: `linux` and `linux16` are separate modules, as are `multiboot` and `multiboot2`.
"""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext
from pvboot.disk.fsapi import Kind
from pvboot.errors import GuestDataError
from pvboot.menu import LINUX, MULTIBOOT, NOTHING, BootSpec, FileRef

# The GRUB module each loader command belongs to: its `loaded` flag in BootSpec.loaded_modules.
MODULE_OF = {
    "linux": "linux",
    "linuxefi": "linux",
    "initrd": "linux",
    "initrdefi": "linux",
    "linux16": "linux16",
    "initrd16": "linux16",
    "multiboot": "multiboot",
    "module": "multiboot",
    "multiboot2": "multiboot2",
    "module2": "multiboot2",
}


class BootNow(BaseException):
    """`boot` inside a running menu entry: the entry is complete. Not an Exception, so no handler in the
    interpreter mistakes it for a command failure."""


def unload(spec: BootSpec) -> None:
    """grub_loader_unset, or the old loader's unload hook in grub_loader_set: the slot is emptied."""
    if spec.kind == LINUX:
        spec.loaded_modules.discard(MODULE_OF.get(spec.loader, "linux"))
    elif spec.kind == MULTIBOOT:
        spec.loaded_modules.discard(MODULE_OF.get(spec.loader, "multiboot"))
    spec.kind, spec.loader, spec.kernel, spec.args = NOTHING, "", None, ""
    spec.initrds, spec.devicetree, spec.modules = [], None, []


def loader_file(ctx: CommandContext, path: str, what: str) -> FileRef:
    """A loader's file as GRUB opens it: `(dev)/path` or `/path` on $root; must be a regular file. A
    missing kernel is replaced by the guest's fallback kernel when it has one (XenServer's rule)."""
    ref = ctx.open_ref(path)
    kind = ctx.view.kind(ref)
    if kind is None and what == "kernel":
        alternative = ctx.view.fallback_for(ref)
        if alternative is not None:
            ctx.log(f"kernel {ref.display()} not found: {alternative.display()} loads instead")
            return alternative
    if kind is not Kind.FILE:
        raise GuestDataError(
            f"file `{ref.display()}' not found"
            if kind is None
            else f"{what} {ref.display()}: not a regular file"
        )
    return ref
