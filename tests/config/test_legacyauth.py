"""GRUB legacy's `password` and `lock` as GRUB 2's legacy_configfile turns them into access rules
(config/legacyauth.py)."""

from __future__ import annotations

from diskbuild import LEGACY, NoFiles
from pvboot.config.grub_legacy import grub_legacy_menu
from pvboot.config.legacyauth import legacy_auth
from pvboot.tui.auth import check_secret


def test_legacy_passwords_map_to_grub2_rules() -> None:
    fields = legacy_auth(grub_legacy_menu(LEGACY, NoFiles(), "/boot/grub/menu.lst"))
    assert fields == {
        "superusers": "legacy",
        "passwords": {"legacy": ["md5crypt", "$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1"]},
        "entry_auth": {"1": {"password": ["plain", "topsecret"]}, "2": {"lock": True}},
    }
    assert check_secret(*fields["passwords"]["legacy"], "secret")  # openssl passwd -1 -salt abcdefgh secret
    plain = legacy_auth(grub_legacy_menu("password pw\ntitle a\n kernel /k\n", NoFiles(), "/m"))
    assert plain["passwords"] == {"legacy": ["plain", "pw"]}
    odd = legacy_auth(grub_legacy_menu("password --encrypted x\ntitle a\n kernel /k\n", NoFiles(), "/m"))
    assert odd["passwords"] == {"legacy": ["deny", ""]}
    assert legacy_auth(grub_legacy_menu("title a\n kernel /k\n", NoFiles(), "/m")) == {}
