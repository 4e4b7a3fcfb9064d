"""GRUB 2's `superusers`, `password` and `password_pbkdf2`: recorded for the console menu to enforce.

pvboot never checks a password in the child: it hands the menu (which users may run which entry, and
the hashes) to the parent's console, which asks for them (normal/auth.c semantics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pvboot.config.grub2.session import Grub2Session


@dataclass
class AuthConfig:
    """Users and their secrets: ('plain', text) or ('pbkdf2', 'grub.pbkdf2.sha512.ITER.SALT.HASH')."""

    users: dict[str, tuple[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, list[str]]:
        return {name: [kind, secret] for name, (kind, secret) in self.users.items()}


def install(session: Grub2Session) -> None:
    reg = session.interp.register

    def password(_interp: object, args: list[str], _block: str | None) -> int:
        if len(args) != 2:
            session.log("error: two arguments expected")
            return 1
        session.auth.users[args[0]] = ("plain", args[1])
        return 0

    def password_pbkdf2(_interp: object, args: list[str], _block: str | None) -> int:
        if len(args) != 2 or not args[1].startswith("grub.pbkdf2.sha512."):
            session.log("error: invalid PBKDF2 password")
            return 1
        session.auth.users[args[0]] = ("pbkdf2", args[1])
        return 0

    reg("password", password)
    reg("password_pbkdf2", password_pbkdf2)
