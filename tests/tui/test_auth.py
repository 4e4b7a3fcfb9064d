"""Password checks (tui/auth.py) against what GRUB's own tools write: plain, md5crypt, PBKDF2; superusers."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from tuihelp import ROOT_PW, pbkdf2_hash

from pvboot.tui.auth import Auth, check_md5crypt, check_pbkdf2, check_secret, strword


@pytest.fixture(scope="module")
def grub_hash() -> str:
    if shutil.which("grub-mkpasswd-pbkdf2") is None:
        pytest.skip("needs grub-mkpasswd-pbkdf2")
    return pbkdf2_hash(ROOT_PW)


def test_pbkdf2_against_grub_mkpasswd(grub_hash: str) -> None:
    assert check_pbkdf2(ROOT_PW, grub_hash)
    assert not check_pbkdf2(ROOT_PW + "x", grub_hash)
    assert not check_pbkdf2(ROOT_PW, grub_hash.replace(".1000.", ".99999999999."))  # bounded work
    assert not check_pbkdf2(ROOT_PW, "grub.pbkdf2.sha512.1000.zz.zz")


def test_md5crypt_against_openssl() -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    for password, salt in (("secret", "abcdefgh"), ("a password longer than sixteen chars", "xy"), ("", "s")):
        digest = subprocess.run(
            ["openssl", "passwd", "-1", "-salt", salt, password], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert check_md5crypt(password, digest)
        assert not check_md5crypt(password + "!", digest)
    assert not check_md5crypt("x", "$1$nohash") and not check_md5crypt("x", "$1$s$!!!!")


def test_secrets_and_access_rules() -> None:
    assert check_secret("plain", "pw", "pw") and not check_secret("plain", "pw", "pw2")
    assert not check_secret("deny", "", "") and not check_secret("unknown", "x", "x")
    assert strword("root, alice;bob|eve&mallory carol", "bob") and not strword("roots", "root")
    everyone = Auth(None, {})
    assert everyone.allowed(None) and everyone.allowed("")
    auth = Auth("root", {"root": ["plain", "r"], "alice": ["plain", "a"]})
    assert not auth.allowed("") and not auth.allowed("alice") and not auth.allowed(None)
    assert not auth.login("alice", "wrong") and auth.login("alice", "a")
    assert (
        auth.allowed("alice")
        and auth.allowed("bob,alice")
        and not auth.allowed("")
        and not auth.allowed(None)
    )
    assert auth.login("root", "r") and auth.allowed("") and auth.allowed(None) and auth.allowed("zed")
    nobody = Auth("", {"alice": ["plain", "a"]})  # superusers set but empty
    nobody.login("alice", "a")
    assert not nobody.allowed(None) and nobody.allowed("alice")
    assert [auth.failed(), auth.failed(), auth.failed()] == [1, 2, 4]
