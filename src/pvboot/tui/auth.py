"""GRUB 2's access rules (normal/auth.c) and the password checks behind them.

- No `superusers` variable: everyone may do everything.
- `superusers` set (even to ""): editing an entry and the command line need a superuser; an entry
  needs a superuser or one of its `--users`; `--unrestricted` entries need no one (users None).
- A user who logged in once stays logged in for the rest of the menu (GRUB's `authenticated` flag).
- Secrets: ("plain", text), ("pbkdf2", "grub.pbkdf2.sha512.ITER.SALT.HASH") and, for GRUB legacy's
  `password --md5`, ("md5crypt", "$1$salt$hash"); ("deny", "") matches nothing (an unparsable legacy
  password, as legacycfg.c's check_password_deny).
"""

from __future__ import annotations

import hashlib
import hmac
import re

MAX_PBKDF2_ITERATIONS = 1_000_000  # the guest chooses the count: bound the time the parent spends
MAX_PASSWORD = 1024  # GRUB_AUTH_MAX_PASSLEN
_WORD_SEPARATORS = re.compile(r"[\s,;|&]+")


def strword(haystack: str, needle: str) -> bool:
    """grub_strword: `needle` is one of the words of `haystack` (separated by blanks , ; | &)."""
    return needle in [w for w in _WORD_SEPARATORS.split(haystack) if w]


def check_pbkdf2(entered: str, spec: str) -> bool:
    parts = spec.split(".")
    if len(parts) != 6 or parts[:3] != ["grub", "pbkdf2", "sha512"]:
        return False
    try:
        iterations = int(parts[3])
        salt, digest = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    except ValueError:
        return False
    if not 0 < iterations <= MAX_PBKDF2_ITERATIONS or not digest or len(digest) > 1024 or len(salt) > 1024:
        return False
    computed = hashlib.pbkdf2_hmac("sha512", entered.encode(), salt, iterations, len(digest))
    return hmac.compare_digest(computed, digest)


_B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _md5(*parts: bytes) -> bytes:
    h = hashlib.md5(usedforsecurity=False)
    for part in parts:
        h.update(part)
    return h.digest()


def md5crypt_digest(password: bytes, magic: bytes, salt: bytes) -> bytes:
    """The 16-byte result of the MD5-crypt algorithm (as GRUB legacy and legacycfg.c compute it)."""
    alt = _md5(password, salt, password)
    head = [password, magic, salt]
    n = len(password)
    while n > 16:
        head.append(alt)
        n -= 16
    head.append(alt[:n])
    i = len(password)
    while i:
        head.append(b"\0" if i & 1 else password[:1])
        i >>= 1
    digest = _md5(*head)
    for r in range(1000):
        parts = [password if r & 1 else digest]
        if r % 3:
            parts.append(salt)
        if r % 7:
            parts.append(password)
        parts.append(digest if r & 1 else password)
        digest = _md5(*parts)
    return digest


def _decode_md5_hash(text: str) -> bytes | None:
    """The 16 bytes of a 22-character crypt base64 hash, in MD5-crypt's byte order."""
    if len(text) < 22 or any(c not in _B64 for c in text[:22]):
        return None
    out = bytearray(16)
    pos = 0
    for group in range(5):
        word = 0
        for n in range(4):
            word |= _B64.index(text[pos]) << (6 * n)
            pos += 1
        out[5 if group == 4 else 12 + group] = word & 0xFF
        out[6 + group] = (word >> 8) & 0xFF
        out[group] = (word >> 16) & 0xFF
    last = _B64.index(text[pos]) | (_B64.index(text[pos + 1]) << 6)
    if last >= 0x100:
        return None
    out[11] = last
    return bytes(out)


def check_md5crypt(entered: str, spec: str) -> bool:
    """legacycfg.c: the three characters before the salt are the magic ("$1$"), salt ends at '$'."""
    if len(spec) <= 3:
        return False
    end = spec.find("$", 3)
    if end < 0:
        return False
    expected = _decode_md5_hash(spec[end + 1 :])
    if expected is None:
        return False
    digest = md5crypt_digest(entered.encode(), spec[:3].encode(), spec[3:end].encode())
    return hmac.compare_digest(digest, expected)


def check_secret(kind: str, secret: str, entered: str) -> bool:
    if len(entered) >= MAX_PASSWORD:
        return False
    if kind == "plain":
        return hmac.compare_digest(entered.encode(), secret[: MAX_PASSWORD - 1].encode())
    if kind == "pbkdf2":
        return check_pbkdf2(entered, secret)
    if kind == "md5crypt":
        return check_md5crypt(entered, secret)
    return False


class Auth:
    """Who may do what, and who has logged in so far."""

    def __init__(self, superusers: str | None, passwords: dict[str, list[str]]) -> None:
        self.superusers = superusers
        self.passwords = {str(u): (str(v[0]), str(v[1])) for u, v in passwords.items() if len(v) == 2}
        self.authenticated: set[str] = set()
        self.punishment = 1.0

    def allowed(self, userlist: str | None) -> bool:
        """is_authenticated(userlist): no superusers, or a logged-in user is listed or a superuser."""
        if self.superusers is None:
            return True
        return any(
            (userlist is not None and strword(userlist, user)) or strword(self.superusers, user)
            for user in self.authenticated
        )

    def login(self, user: str, password: str) -> bool:
        """Check `user`'s password; a match logs the user in (whatever the list being checked)."""
        secret = self.passwords.get(user)
        if secret is None or not check_secret(secret[0], secret[1], password):
            return False
        self.authenticated.add(user)
        return True

    def failed(self) -> float:
        """GRUB's punishment delay: the seconds to wait now; doubled for the next failure (bounded)."""
        delay = self.punishment
        self.punishment = min(self.punishment * 2, 32.0)
        return delay

    def succeeded(self) -> None:
        self.punishment = 1.0


def entry_users(entry: dict[str, object]) -> tuple[bool, str | None]:
    """(restricted, userlist) of an entry's JSON, as grub_normal_add_menu_entry records them."""
    users = entry.get("users")
    if users is None:
        return False, None
    if isinstance(users, list):
        return True, ",".join(str(u) for u in users)
    return True, str(users)
