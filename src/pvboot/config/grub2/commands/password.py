"""`password` (commands/password.c) and `password_pbkdf2` (commands/password_pbkdf2.c): recorded for
the console menu to enforce.

pvboot never checks a password in the child: it hands the menu (which users may run which entry, and
the hashes) to the parent's console, which asks for them (normal/auth.c semantics).
"""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext
from pvboot.config.grub2.extcmd import Command
from pvboot.config.grub2.options import Parsed


def password(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    args = opts.args
    if len(args) != 2:
        ctx.log("error: two arguments expected")
        return 1
    ctx.auth.users[args[0]] = ("plain", args[1])
    return 0


def password_pbkdf2(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    args = opts.args
    if len(args) != 2 or not args[1].startswith("grub.pbkdf2.sha512."):
        ctx.log("error: invalid PBKDF2 password")
        return 1
    ctx.auth.users[args[0]] = ("pbkdf2", args[1])
    return 0


COMMANDS = [Command("password", password), Command("password_pbkdf2", password_pbkdf2)]
