"""`-l`, `--entry`, `--output-format=json` and `--debug` on a real Debian 12 update-grub menu.

The menu is the corpus `saved-id` case (a top entry and an "Advanced options" submenu of four entries;
grubenv's saved_entry names the 6.1.0-10 recovery entry by id path). Expected entries and titles are
read from the corpus grub.cfg and README, never from pvboot's output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from diskbuild import marker_initrd, marker_kernel
from pvrun import boot, pvboot
from test_corpus import CORPUS, U, debian_case

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not CORPUS.is_dir(), reason="needs root and ../shared/corpus"
)

SUBMENU = "Advanced options for Debian GNU/Linux"
TITLES = [
    "Debian GNU/Linux, with Linux 6.1.0-20-amd64",
    "Debian GNU/Linux, with Linux 6.1.0-20-amd64 (recovery mode)",
    "Debian GNU/Linux, with Linux 6.1.0-10-amd64",
    "Debian GNU/Linux, with Linux 6.1.0-10-amd64 (recovery mode)",
]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return debian_case(tmp_path_factory.mktemp("saved-id"), "saved-id")


def test_list_shows_grub_numbering_and_default(image: Path) -> None:
    proc = pvboot("-l", str(image))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    assert "0     Debian GNU/Linux\n" in text
    assert f"1     {SUBMENU} >" in text
    for index, title in enumerate(TITLES):
        assert f"1>{index}   {title}" in text
    assert f"* 1>3   {TITLES[3]}" in text  # the default, marked
    assert "default: 1>3" in text and "grubenv" not in text.split("default:")[0]
    assert "(hd0,msdos1)" in text and "/boot/grub/grub.cfg" in text


def test_list_json(image: Path) -> None:
    proc = pvboot("-l", "--output-format=json", str(image))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    menu = doc["menu"]
    assert menu["kind"] == "grub2"
    assert [e["title"] for e in menu["entries"]] == ["Debian GNU/Linux", SUBMENU]
    assert [e["title"] for e in menu["entries"][1]["submenu"]] == TITLES
    assert menu["default"]["path"] == [1, 3]
    top = menu["entries"][0]["boot"]
    assert top["kernel"]["path"] == "/boot/vmlinuz-6.1.0-20-amd64"
    assert top["args"].split() == f"root=UUID={U} ro quiet".split()
    assert doc["configs"][0]["path"] == "/boot/grub/grub.cfg"


@pytest.mark.parametrize(
    ("entry", "kernel", "args"),
    [
        ("0", "6.1.0-20", "ro quiet"),
        ("1>2", "6.1.0-10", "ro quiet"),
        ("1>1", "6.1.0-20", "ro single"),
        (f"{SUBMENU}>{TITLES[2]}", "6.1.0-10", "ro quiet"),
        (f"gnulinux-advanced-{U}>gnulinux-6.1.0-10-amd64-recovery-{U}", "6.1.0-10", "ro single"),
        (f"gnulinux-simple-{U}", "6.1.0-20", "ro quiet"),
    ],
)
def test_entry_forms(image: Path, tmp_path: Path, entry: str, kernel: str, args: str) -> None:
    """--entry takes GRUB's forms: index, `a>b` path, titles, ids."""
    result = boot(image, tmp_path, f"--entry={entry}")
    assert result.code == 0, result.stderr
    assert result.kernel == marker_kernel(f"/boot/vmlinuz-{kernel}-amd64")
    assert result.ramdisk == marker_initrd(f"/boot/initrd.img-{kernel}-amd64")
    assert result.answer["args"].split() == [f"root=UUID={U}", *args.split()]


def test_entry_that_does_not_exist(image: Path, tmp_path: Path) -> None:
    result = boot(image, tmp_path, "--entry=7")
    assert result.code != 0
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("pvboot: ")
    assert "--entry=7" in result.stderr
    assert result.answer == {} and not list((tmp_path / "out").iterdir())


def test_args_are_appended(image: Path, tmp_path: Path) -> None:
    result = boot(image, tmp_path, "--args=console=hvc0 extra=1")
    assert result.code == 0, result.stderr
    assert result.answer["args"].split() == [f"root=UUID={U}", "ro", "single", "console=hvc0", "extra=1"]


def test_debug_names_config_default_line_and_entry(image: Path, tmp_path: Path) -> None:
    result = boot(image, tmp_path, "--debug")
    assert result.code == 0, result.stderr
    assert "/boot/grub/grub.cfg" in result.stderr
    assert "grub.cfg:19" in result.stderr  # `set default="${saved_entry}"` is line 19 of the corpus file
    assert TITLES[3] in result.stderr


def test_json_boot_answer(image: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = pvboot("-q", "--output-format=json", f"--output-directory={out}", str(image))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert Path(doc["kernel"]).read_bytes() == marker_kernel("/boot/vmlinuz-6.1.0-10-amd64")
    assert doc["entry"]["title"].endswith(TITLES[3])
    assert doc["args"].split() == f"root=UUID={U} ro single".split()


def test_isconfig_prints_what_a_host_config_boots() -> None:
    """pygrub's --isconfig: the argument is a config file on the host (corpus submenu-index: `1>2`)."""
    cfg = CORPUS / "debian12-grub-mkconfig" / "submenu-index" / "grub.cfg"
    proc = pvboot("--isconfig", str(cfg))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert "  kernel: /boot/vmlinuz-6.1.0-10-amd64" in lines
    assert "  initrd: /boot/initrd.img-6.1.0-10-amd64" in lines
    assert f"  args: root=UUID={U} ro quiet" in lines


PBKDF2 = "grub.pbkdf2.sha512.10000." + "AB" * 64 + "." + "CD" * 64
GRUB2_PASSWORDS = f"""set superusers="root"
password_pbkdf2 root {PBKDF2}
password alice plain-s3cret
menuentry 'Locked' --users alice {{
\tlinux /boot/vmlinuz ro
}}
"""
LEGACY_PASSWORDS = """default 0
password --md5 $1$saltsalt$0123456789abcdefghijkl
title Locked
\tlock
\tpassword legacy-s3cret
\tkernel /boot/vmlinuz ro
"""


@pytest.mark.parametrize(
    ("config_path", "config", "secrets", "expected"),
    [
        ("/boot/grub/grub.cfg", GRUB2_PASSWORDS, [PBKDF2, "plain-s3cret"],
         {"root": ["pbkdf2", "<redacted>"], "alice": ["plain", "<redacted>"]}),
        ("/boot/grub/menu.lst", LEGACY_PASSWORDS, ["$1$saltsalt$", "legacy-s3cret"],
         {"legacy": ["md5crypt", "<redacted>"]}),
    ],
)  # fmt: skip
def test_list_json_never_prints_password_secrets(
    tmp_path: Path, config_path: str, config: str, secrets: list[str], expected: dict[str, list[str]]
) -> None:
    """-l's JSON says who can unlock a protected menu and how, never the secret or its hash: listings end
    up in control planes' logs (the console gets the secrets through its own channel)."""
    from diskbuild import Part, make_disk, put

    tree = tmp_path / "tree"
    put(tree, "/boot/vmlinuz", marker_kernel("/boot/vmlinuz"))
    put(tree, config_path, config.encode())
    disk = make_disk(tmp_path / "disk.img", [Part(tree)], "dos")
    proc = pvboot("-l", "--output-format=json", str(disk))
    assert proc.returncode == 0, proc.stderr
    for secret in secrets:
        assert secret.encode() not in proc.stdout
    menu = json.loads(proc.stdout)["menu"]
    assert {user: menu["passwords"][user] for user in expected} == expected
    for rule in menu.get("entry_auth", {}).values():
        assert rule.get("password", ["", "<redacted>"])[1] == "<redacted>"
