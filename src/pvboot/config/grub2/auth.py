"""GRUB 2's users and their secrets (`password`, `password_pbkdf2`: commands/password.py), recorded for
the console menu to enforce.

pvboot never checks a password in the child: it hands the menu (which users may run which entry, and
the hashes) to the parent's console, which asks for them (normal/auth.c semantics).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AuthConfig:
    """Users and their secrets: ('plain', text) or ('pbkdf2', 'grub.pbkdf2.sha512.ITER.SALT.HASH')."""

    users: dict[str, tuple[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, list[str]]:
        return {name: [kind, secret] for name, (kind, secret) in self.users.items()}
