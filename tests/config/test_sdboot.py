"""systemd-boot 252's menu from BLS entries and loader.conf (config/sdboot.py): ordering, boot counting,
defaults, entry parsing; expected values from reading systemd's src/boot/ boot.c."""

from __future__ import annotations

from pathlib import Path

from diskbuild import config_tree as tree
from pvboot.config.bls import parse_sdboot_text, systemd_boot_menu
from pvboot.config.source import HostDirFiles
from pvboot.menu import CHAINLOADER

MID = "6c1d8e0c2f5a4b6e9d3a7b1c0e2f4a5b"


def sd_tree(
    tmp_path: Path, entries: dict[str, str], kernels: tuple[str, ...] = ("/vmlinuz",)
) -> HostDirFiles:
    files = {f"/loader/entries/{k}": v for k, v in entries.items()}
    files.update({k: "k" for k in kernels})
    return tree(tmp_path, files)


def test_sdboot_order_sort_key_version_then_id(tmp_path: Path) -> None:
    files = sd_tree(
        tmp_path,
        {
            "a.conf": "title A\nlinux /vmlinuz\n",  # no sort-key: after all with one
            "z.conf": "title Z\nlinux /vmlinuz\n",
            "f1.conf": "title F\nsort-key fedora\nversion 5.9\nlinux /vmlinuz\n",
            "f2.conf": "title F\nsort-key fedora\nversion 5.10\nlinux /vmlinuz\n",
            "d.conf": "title D\nsort-key debian\nversion 1\nlinux /vmlinuz\n",
        },
    )
    menu = systemd_boot_menu(files, "/loader/entries", None)
    assert [e.id for e in menu.entries] == ["d.conf", "f2.conf", "f1.conf", "z.conf", "a.conf"]
    assert [e.title for e in menu.entries][:3] == ["D", "F (5.10)", "F (5.9)"]  # made unique with the version
    assert menu.default == "0" and menu.timeout == 0 and menu.timeout_style == "hidden"


def test_sdboot_boot_counting_puts_exhausted_entries_last(tmp_path: Path) -> None:
    files = sd_tree(tmp_path, {"b+0-3.conf": "linux /vmlinuz\n", "a+2.conf": "linux /vmlinuz\n"})
    assert [e.id for e in systemd_boot_menu(files, "/loader/entries", None).entries] == [
        "a+2.conf",
        "b+0-3.conf",
    ]


def test_sdboot_loader_conf_default_and_timeout(tmp_path: Path) -> None:
    files = sd_tree(tmp_path, {f"k-{v}.conf": f"version {v}\nlinux /vmlinuz\n" for v in (1, 2, 3)})
    menu = systemd_boot_menu(files, "/loader/entries", "timeout 4\ndefault K-2*\n")
    assert menu.entries[int(menu.default or 0)].id == "k-2.conf" and menu.timeout == 4
    assert systemd_boot_menu(files, "/loader/entries", "default @saved\n").default == "0"
    assert systemd_boot_menu(files, "/loader/entries", "default nomatch\n").default == "0"
    assert systemd_boot_menu(files, "/loader/entries", "timeout menu-force\n").timeout is None


def test_sdboot_entry_parsing(tmp_path: Path) -> None:
    files = sd_tree(
        tmp_path,
        {
            "x.conf": '# c\n\ntitle "Quoted"\noptions a  b\ninitrd \\EFI\\i1\n'
            'options "c"\ninitrd //i2\nlinux vmlinuz\n',
            "gone.conf": "linux /missing\n",
            "arm.conf": "architecture aa64\nlinux /vmlinuz\n",
            "auto-x.conf": "linux /vmlinuz\n",
            "win.conf": "efi /EFI/x.efi\n",
        },
        kernels=("/vmlinuz", "/EFI/x.efi"),
    )
    menu = systemd_boot_menu(files, "/loader/entries", None)
    assert sorted(e.id for e in menu.entries) == ["win.conf", "x.conf"]
    x = next(e for e in menu.entries if e.id == "x.conf")
    assert x.title == "Quoted" and x.boot is not None
    assert x.boot.args == "a  b c"  # options lines joined verbatim
    assert [i.path for i in x.boot.initrds] == ["/EFI/i1", "/i2"] and x.boot.kernel is not None
    assert x.boot.kernel.path == "/vmlinuz"
    win = next(e for e in menu.entries if e.id == "win.conf")
    assert win.boot is not None and win.boot.kind == CHAINLOADER
    assert parse_sdboot_text("key\nk v\n") == [("k", "v")]
