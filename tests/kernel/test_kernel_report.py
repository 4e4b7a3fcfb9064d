"""build_report: complete enough to debug from, redacted enough to post."""

from __future__ import annotations

import io
import json
import re

from pvboot.report import Redactor, build_report, collect_versions, file_facts

U1 = "5a1e0b2c-0000-4000-8000-00000000d0d0"
U2 = "0d3c0b2c-1111-4000-8000-00000000beef"
MID = "6c1d8e0c2f5a4b6e9d3a7b1c0e2f4a5b"
PBKDF2 = "grub.pbkdf2.sha512.10000.ABCDEF0123.456789FEDCBA"

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
