"""build_report: complete enough to debug from, redacted enough to post."""

from __future__ import annotations

import io
import json
import re
import time

import pytest

from pvboot.report import Redactor, build_report, collect_versions, file_facts

U1 = "5a1e0b2c-0000-4000-8000-00000000d0d0"
U2 = "0d3c0b2c-1111-4000-8000-00000000beef"
MID = "6c1d8e0c2f5a4b6e9d3a7b1c0e2f4a5b"
PBKDF2 = "grub.pbkdf2.sha512.10000.ABCDEF0123.456789FEDCBA"
MIB = 1 << 20

INSPECT = {
    "type": "inspect",
    "volumes": [
        {
            "name": "hd0,msdos1",
            "offset": 1048576,
            "size": 524288000,
            "fstype": "ext2",
            "uuid": U1,
            "label": "boot",
        },
        {"name": "hd0,msdos2", "offset": 525336576, "size": 1 << 30, "fstype": None},
    ],
    "configs": [
        {
            "kind": "grub2",
            "volume": "hd0,msdos1",
            "path": "/boot/grub/grub.cfg",
            "size": 4321,
            "sha256": "ab" * 32,
        }
    ],
}
SOURCE = (
    f"search --no-floppy --fs-uuid --set=root {U1}\n"
    f"linux /vmlinuz root=UUID={U2} ro ip=192.0.2.7::192.0.2.1:255.255.255.0:myhost:eth0:off "
    f"rd.luks.key=/keys/disk.key systemd.machine_id={MID} quiet\n"
    f"password_pbkdf2 alice {PBKDF2}\npassword bob hunter2\n"
)
MENU = {
    "type": "menu",
    "config": {"kind": "grub2", "volume": "hd0,msdos1", "path": "/boot/grub/grub.cfg"},
    "source": "(hd0,msdos1)/boot/grub/grub.cfg",
    "kind": "grub2",
    "timeout": 5,
    "timeout_style": "menu",
    "superusers": "alice bob",
    "passwords": {"alice": ["pbkdf2", PBKDF2], "bob": ["plain", "hunter2"]},
    "entries": [
        {
            "title": f"Debian GNU/Linux ({MID})",
            "id": f"gnulinux-simple-{U1}",
            "classes": ["debian"],
            "users": "bob",
            "unrestricted": False,
            "hotkey": None,
            "source": SOURCE,
            "boot": {
                "kind": "linux",
                "loader": "linux",
                "kernel": {"volume": "hd0,msdos1", "path": "/vmlinuz-6.1.0-18-amd64"},
                "initrds": [{"volume": "hd0,msdos1", "path": "/initrd.img-6.1.0-18-amd64"}],
                "args": f"root=UUID={U2} ro ip=192.0.2.7::192.0.2.1:255.255.255.0:myhost:eth0:off quiet",
                "devicetree": None,
                "errors": [],
            },
            "pv_bootable": True,
        },
        {
            "title": "Advanced options",
            "id": "",
            "classes": [],
            "users": None,
            "unrestricted": False,
            "hotkey": None,
            "source": "",
            "submenu": [],
        },
    ],
    "default": {"path": [0], "titles": ["Debian GNU/Linux"], "reasons": ["default='0' names entry 0"]},
}
SECRETS = ["hunter2", PBKDF2, "192.0.2.7", "/keys/disk.key", U1, U2, MID, "alice", "myhost"]


def test_report_is_complete_and_redacted():
    boot = {
        "title": "Debian GNU/Linux",
        "kernel_source": "(hd0,msdos1)/vmlinuz-6.1.0-18-amd64",
        "ramdisk_sources": ["(hd0,msdos1)/initrd.img-6.1.0-18-amd64"],
        "args": f"root=UUID={U2} ro",
        "kernel_info": {
            "format": "bzImage",
            "arch": "x86_64",
            "version": "6.1.0-18-amd64",
            "pv": True,
            "pvh": True,
        },
        "warnings": ["initrd x: not a cpio archive"],
    }
    text = build_report(
        INSPECT, MENU, ["pvboot: something failed on " + U1], {"pvboot": "0.1"}, boot_reply=boot
    )
    for secret in SECRETS:
        assert secret not in text, secret
    for kept in (
        "/vmlinuz-6.1.0-18-amd64",
        "grub2",
        "4321 bytes",
        "ab" * 32,
        "Debian GNU/Linux",
        "ext2",
        "hd0,msdos1",
        "default: 0",
        "bzImage",
        "not a cpio archive",
        "pvboot: 0.1",
        "pbkdf2",
        "plain",
    ):
        assert kept in text, kept
    # the same UUID gets the same pseudonym everywhere: the volume and the search line still match
    assert "uuid=uuid-1" in text and "--set=root uuid-1" in text and "root=UUID=uuid-2" in text
    assert "machine_id=machine-id-1" in text
    assert all(ch.isprintable() or ch == "\n" for ch in text)
    redacted_json = json.loads(text.split("== menu as JSON (redacted) ==\n", 1)[1])
    assert redacted_json["passwords"] == {
        "user-1": ["pbkdf2", "<redacted>"],
        "user-2": ["plain", "<redacted>"],
    }
    assert redacted_json["superusers"] == "user-1 user-2"


def test_report_without_menu_and_with_real_listing(layout_free_listing=None):
    text = build_report(INSPECT, None, ["pvboot: no boot config found"], collect_versions())
    assert "(no menu: see errors)" in text and "no boot config found" in text
    assert re.search(r"python: 3\.\d+", text)


def test_redactor_keeps_versions_and_paths():
    r = Redactor()
    line = "linux /boot/vmlinuz-2.6.32.11-1.el6 root=/dev/mapper/vg-root ro hostname=db01 inst.ks=http://u:p@h/ks"
    out = r.text(line)
    assert "2.6.32.11" in out and "/dev/mapper/vg-root" in out
    assert "db01" not in out and "u:p@h" not in out
    assert r.text("$6$salt$hash and $y$j9T$abc") == "<redacted> and <redacted>"
    assert r.text("menu master passwd $1$x$y") == "menu master passwd <redacted>"


def test_file_facts():
    data = b"set default=0\n" * 100
    facts = file_facts(io.BytesIO(data), len(data), 1 << 20)
    assert facts["size"] == len(data) and len(facts["sha256"]) == 64 and "sha256_of_first" not in facts
    assert file_facts(io.BytesIO(data), len(data), 10)["sha256_of_first"] == 10


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("linux /vmlinuz password='a b' quiet", ["linux /vmlinuz password=<redacted> quiet"], ["a b", " b'"]),
        ('linux /vmlinuz "rootpw=x y" quiet', ['"rootpw=<redacted>" quiet'], ["x y"]),
        ("linux /vmlinuz PASSWORD=Hunter2 Passwd=Other1", ["PASSWORD=<redacted>"], ["Hunter2", "Other1"]),
        ("linux /vmlinuz root_password=s1 db_pass=s2 --iscsi-pw=s3 ok=1", ["ok=1"], ["s1", "s2", "s3"]),
        (
            "inst.stage2=http://user:secret@host/os echo ftp://anon@h/x",
            ["http://<redacted>:<redacted>@host/os", "ftp://<redacted>@h/x"],
            ["user", "secret", "anon"],
        ),
        (
            "set pw='s3cret value'\n\tpassword_pbkdf2 admin $pw\n\tlinux /vmlinuz quiet\n",
            ["set pw=<redacted>", "password_pbkdf2 user-1 $pw"],
            ["s3cret", "admin"],
        ),
        (
            f"  password_pbkdf2 root {PBKDF2}\npassword bob 'two words'\n",
            ["user-2 <redacted>"],
            [PBKDF2, "two", "bob"],
        ),
        ("if true; then password carol pw3; fi", ["password user-1 <redacted>; fi"], ["carol", "pw3"]),
        ("password --md5 $1$salt$hash", ["password --md5 <redacted>"], ["salt", "hash"]),
        (
            "MENU MASTER PASSWD plain text\n  passwd other",
            ["MENU MASTER PASSWD <redacted>"],
            ["plain", "other"],
        ),
        (
            "search --set=root --hotkey=x hostname=db01",
            ["--set=root --hotkey=x hostname=<redacted>"],
            ["db01"],
        ),
    ],
)
def test_redaction(text: str, kept: list[str], gone: list[str]) -> None:
    r = Redactor()
    r.learn({"source": text})
    out = r.text(text)
    for part in kept:
        assert part in out, out
    for part in gone:
        assert part not in out, out


def test_a_secret_set_in_a_variable_is_redacted_wherever_it_appears() -> None:
    """`set pw=...` then `password_pbkdf2 user $pw`: the assignment, and the value itself in any other
    text of the report (a boot's expanded command line, say)."""
    entry = {"title": "x", "source": "set mysecret=Tr0ub4dor\npassword_pbkdf2 root ${mysecret}\n"}
    menu = {**MENU, "entries": [entry]}
    boot = {
        "title": "x",
        "kernel_source": "/vmlinuz",
        "args": "console=hvc0 Tr0ub4dor",
        "ramdisk_sources": [],
    }
    text = build_report(INSPECT, menu, [], {"pvboot": "0.1"}, boot_reply=boot)
    assert "Tr0ub4dor" not in text
    assert "set mysecret=<redacted>" in text and "args   console=hvc0 <redacted>" in text


HOSTILE_TITLES = {
    "newlines": "\n" * MIB,
    "spaces": " " * MIB,
    "blank lines with tabs": " \t\n" * (MIB // 3),
    "password commands": "password a b\n" * (MIB // 13),
    "assignments": "pw=x " * (MIB // 5),
    "quoted assignments": "pw='" * (MIB // 4),
    "unterminated quotes": '"\\' * (MIB // 2),
    "url prefixes": "://" * (MIB // 3),
    "hex": "a" * MIB,
    "uuid-like": "0123456-" * (MIB // 8),
    "crypt prefixes": "$6$" * (MIB // 3),
    "pbkdf2 prefixes": "grub.pbkdf2." * (MIB // 12),
    "escapes": "\x1b]0;x\x07" * (MIB // 6),
}


@pytest.mark.parametrize("shape", HOSTILE_TITLES)
def test_a_1mib_hostile_title_is_redacted_in_linear_time(shape: str) -> None:
    """The report is built in the unconfined root parent: a guest title of 1 MiB crafted against each
    pattern takes well under a second (40 KB of newlines took minutes when the patterns backtracked).
    The bound below only guards against a hang; it is not a benchmark."""
    title = HOSTILE_TITLES[shape]
    entry = {"title": title, "source": title, "boot": {"kind": "linux", "args": title}}
    menu = {**MENU, "entries": [entry], "default": {"path": [0], "titles": [title], "reasons": [title]}}
    start = time.monotonic()
    text = build_report(INSPECT, menu, [title], {"pvboot": "0.1"}, boot_reply={"title": title, "args": title})
    assert time.monotonic() - start < 5
    assert all(ch.isprintable() or ch == "\n" for ch in text.split("== menu as JSON")[0])
