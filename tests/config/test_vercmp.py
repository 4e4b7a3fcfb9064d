"""Version comparisons and globbing as the loaders do them: rpm's rpmvercmp (Fedora's blscfg),
systemd's strverscmp_improved and efi_fnmatch (systemd-boot). Expected values are the loaders' own test
vectors and source comments."""

from __future__ import annotations

import pytest

from pvboot.config.vercmp import blscfg_cmp, efi_fnmatch, rpmvercmp, strverscmp_improved


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [  # rpm's rpmvercmp test vectors (those without '+'/'^', which GRUB's copy treats differently)
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0", "1.0", 1),
        ("2.0.1", "2.0.1", 0),
        ("2.0", "2.0.1", -1),
        ("2.0.1", "2.0", 1),
        ("2.0.1a", "2.0.1a", 0),
        ("2.0.1a", "2.0.1", 1),
        ("2.0.1", "2.0.1a", -1),
        ("5.5p1", "5.5p1", 0),
        ("5.5p1", "5.5p2", -1),
        ("5.5p2", "5.5p1", 1),
        ("5.5p10", "5.5p10", 0),
        ("5.5p1", "5.5p10", -1),
        ("5.5p10", "5.5p1", 1),
        ("10xyz", "10.1xyz", -1),
        ("10.1xyz", "10xyz", 1),
        ("xyz10", "xyz10", 0),
        ("xyz10", "xyz10.1", -1),
        ("xyz10.1", "xyz10", 1),
        ("xyz.4", "xyz.4", 0),
        ("xyz.4", "8", -1),
        ("8", "xyz.4", 1),
        ("xyz.4", "2", -1),
        ("2", "xyz.4", 1),
        ("5.5p2", "5.6p1", -1),
        ("5.6p1", "5.5p2", 1),
        ("5.6p1", "6.5p1", -1),
        ("6.5p1", "5.6p1", 1),
        ("6.0.rc1", "6.0", 1),
        ("6.0", "6.0.rc1", -1),
        ("10b2", "10a1", 1),
        ("10a2", "10b2", -1),
        ("1.0aa", "1.0aa", 0),
        ("1.0a", "1.0aa", -1),
        ("1.0aa", "1.0a", 1),
        ("10.0001", "10.0001", 0),
        ("10.0001", "10.1", 0),
        ("10.1", "10.0001", 0),
        ("10.0001", "10.0039", -1),
        ("10.0039", "10.0001", 1),
        ("4.999.9", "5.0", -1),
        ("5.0", "4.999.9", 1),
        ("20101121", "20101121", 0),
        ("20101121", "20101122", -1),
        ("20101122", "20101121", 1),
        ("2_0", "2_0", 0),
        ("2.0", "2_0", 0),
        ("2_0", "2.0", 0),
        ("a", "a", 0),
        ("1.0~rc1", "1.0~rc1", 0),
        ("1.0~rc1", "1.0", -1),
        ("1.0", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~rc2", "1.0~rc1", 1),
        ("1.0~rc1~git123", "1.0~rc1~git123", 0),
        ("1.0~rc1~git123", "1.0~rc1", -1),
        ("1.0~rc1", "1.0~rc1~git123", 1),
        # blscfg.c's '+': like '~' but a base version is older
        ("1.0+1", "1.0", 1),
        ("1.0", "1.0+1", -1),
        ("1.0+1", "1.0+2", -1),
        ("a+", "a_", 1),
    ],
)
def test_rpmvercmp(a: str, b: str, want: int) -> None:
    assert rpmvercmp(a, b) == want


def test_blscfg_compares_name_version_release() -> None:
    # split at the last two '-': name, version, release (blscfg.c split_package_string)
    assert blscfg_cmp("abc-5.14.10-300.fc35.x86_64", "abc-5.9.16-200.fc33.x86_64") == 1
    assert blscfg_cmp("abc-0-rescue", "abc-5.9.16-200.fc33.x86_64") == -1
    assert blscfg_cmp("abc-5.14.10-300.fc35.x86_64", "abc-5.14.10-300.fc35.x86_64") == 0
    assert blscfg_cmp("zzz-1-1", "aaa-9-9") == 1  # the name is compared first


def test_strverscmp_improved_order_from_systemd_source() -> None:
    # the sorted list in the comment above strverscmp_improved (string-util-fundamental.c)
    order = ["122.1", "123~rc1-1", "123", "123-a", "123-a.1", "123-1", "123-1.1", "123^post1", "123.a-1",
             "123.1-1", "123a-1", "124-1"]  # fmt: skip
    for i, older in enumerate(order):
        assert strverscmp_improved(older, older) == 0
        for newer in order[i + 1 :]:
            assert strverscmp_improved(older, newer) < 0, (older, newer)
            assert strverscmp_improved(newer, older) > 0, (newer, older)
    assert strverscmp_improved("00123", "123") == 0
    assert strverscmp_improved(None, "1") < 0 and strverscmp_improved("", None) == 0


@pytest.mark.parametrize(
    ("pattern", "name", "want"),
    [
        ("*", "anything.conf", True),
        ("fedora-*", "fedora-5.conf", True),
        ("fedora-*", "debian.conf", False),
        ("a?c.conf", "abc.conf", True),
        ("a?c.conf", "ac.conf", False),
        ("[a-c]x", "bx", True),
        ("[a-c]x", "dx", False),
        ("[]]x", "]x", True),
        ("[a-]x", "-x", True),
        ("\\*", "*", True),
        ("\\*", "a", False),
        ("*-6.1.0-20*", "mid-6.1.0-20-amd64.conf", True),
        ("abc", "abcd", False),
        ("[ab", "a", False),
        ("*" * 40 + "x", "x", True),  # consecutive stars are one level
        ("*x" * 31, "x" * 31, True),
        ("*x" * 32, "x" * 32, False),  # systemd-boot stops at 32 levels
    ],
)
def test_efi_fnmatch(pattern: str, name: str, want: bool) -> None:
    assert efi_fnmatch(pattern, name) is want
