"""The GRUB commands pvboot implements beyond the script builtins, one module per GRUB command family.

Each module mirrors a file (or a family of files) of GRUB's grub-core/commands/ and grub-core/loader/
and declares its commands in `COMMANDS` (a list of `extcmd.Command`: name, function, options). The
modules are listed here, once; `install` registers every command of every module with the interpreter,
bound to the session's `CommandContext`. A later module's command replaces an earlier one of the same
name, as a later grub_register_command does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module
from typing import TYPE_CHECKING

from pvboot.config.grub2.context import CommandContext
from pvboot.config.grub2.extcmd import Command, bind

if TYPE_CHECKING:
    from pvboot.config.grub2.interp import CommandFn

MODULES = (
    "menuentry",  # commands/menuentry.c: menuentry, submenu
    "linux",  # loader/i386/linux.c, loader/i386/pc/linux.c: linux, initrd, linux16, initrd16, linuxefi
    "devicetree",  # loader/efi/fdt.c: devicetree
    "multiboot",  # loader/multiboot.c: multiboot, module, multiboot2, module2
    "chainloader",  # loader/i386/pc/chainloader.c and the other systems' loaders
    "boot",  # commands/boot.c: boot
    "search",  # commands/search*.c: search, search.file, search.fs_uuid, search.fs_label
    "probe",  # commands/probe.c: probe
    "loadenv",  # commands/loadenv.c: load_env, save_env
    "configfile",  # commands/configfile.c: configfile
    "blscfg",  # Fedora's commands/blscfg.c: blscfg
    "password",  # commands/password.c, password_pbkdf2.c
    "ls",  # commands/ls.c: ls
    "cat",  # commands/cat.c: cat
    "dom0",  # screen, firmware and module commands: accepted, no effect
)


def commands() -> list[Command]:
    """Every declared command, in module order."""
    found: list[Command] = []
    for name in MODULES:
        declared: Sequence[Command] = import_module(f"{__name__}.{name}").COMMANDS
        found.extend(declared)
    return found


def install(register: Callable[[str, CommandFn], None], ctx: CommandContext) -> None:
    """Register every command with the interpreter (`Interpreter.register`), running against `ctx`."""
    for command in commands():
        register(command.name, bind(command, ctx))
