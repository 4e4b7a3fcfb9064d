"""The boot-config format table (config/formats.py) is what discovery and loading use.

The images are real ext4 filesystems (mkfs.ext4 -d) holding configs at the places each distribution's
tooling writes them; the expected preference is the one docs/ and pygrub document (GRUB 2, then BLS,
then extlinux, then GRUB legacy), not read back from the table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from layouts import mkext
from pvboot.config.discover import find_configs
from pvboot.config.formats import BY_KIND, FORMATS, ConfigKind, host_kind
from pvboot.config.guestview import GuestView
from pvboot.config.load import open_menu
from pvboot.disk.volumes import GuestDisk
from pvboot.limits import Limits
from pvboot.menu import FileRef

CONFIGS = {
    ConfigKind.GRUB2: ("boot/grub/grub.cfg", "menuentry 'g' {\n linux /vmlinuz-g\n}\n"),
    ConfigKind.BLS: ("loader/entries/b.conf", "title b\nlinux /vmlinuz-b\n"),
    ConfigKind.EXTLINUX: ("boot/extlinux/extlinux.conf", "default e\nlabel e\n kernel /vmlinuz-e\n"),
    ConfigKind.GRUB_LEGACY: ("boot/grub/menu.lst", "title l\n kernel /vmlinuz-l\n"),
}


def _disk(tmp_path: Path, kinds: list[ConfigKind]) -> GuestDisk:
    tree = tmp_path / "tree"
    for kind in kinds:
        path, text = CONFIGS[kind]
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
        kernel = text.split("/vmlinuz-")[1][0]
        (tree / f"vmlinuz-{kernel}").write_bytes(b"kernel " + kernel.encode())
    return GuestDisk(str(mkext("ext4", tree, tmp_path / "fs.img", 16 << 20)), Limits(), None, "raw")


def test_every_kind_has_one_format_with_a_reader() -> None:
    assert [fmt.kind for fmt in FORMATS] == [
        ConfigKind.GRUB2,
        ConfigKind.BLS,
        ConfigKind.EXTLINUX,
        ConfigKind.GRUB_LEGACY,
    ]
    assert set(BY_KIND) == set(ConfigKind)
    for fmt in FORMATS:
        assert fmt.reader.count(":") == 1 and fmt.paths, fmt


def test_discovery_prefers_formats_in_table_order(tmp_path: Path) -> None:
    disk = _disk(tmp_path, list(CONFIGS))
    try:
        found = find_configs(disk)
        assert [(f.kind, f.path) for f in found] == [
            (ConfigKind.GRUB2, "/boot/grub/grub.cfg"),
            (ConfigKind.BLS, "/loader/entries"),  # the directory is the config
            (ConfigKind.EXTLINUX, "/boot/extlinux/extlinux.conf"),
            (ConfigKind.GRUB_LEGACY, "/boot/grub/menu.lst"),
        ]
        assert found[0].to_json() == {"kind": "grub2", "volume": "hd0", "path": "/boot/grub/grub.cfg"}
    finally:
        disk.close()


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_each_format_is_read_by_its_reader(tmp_path: Path, kind: ConfigKind) -> None:
    disk = _disk(tmp_path, [kind])
    try:
        (found,) = find_configs(disk)
        source = open_menu(GuestView(disk), found, Limits(), lambda _: None)
        spec = source.run(source.choose(None).path)
        assert spec.kernel is not None and spec.kernel.path == f"/vmlinuz-{CONFIGS[kind][1].split('-')[1][0]}"
    finally:
        disk.close()


def test_a_bls_directory_without_conf_files_is_no_config(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "loader" / "entries").mkdir(parents=True)
    (tree / "loader" / "entries" / "README").write_text("not an entry\n")
    disk = GuestDisk(str(mkext("ext4", tree, tmp_path / "fs.img", 8 << 20)), Limits(), None, "raw")
    try:
        assert find_configs(disk) == []
    finally:
        disk.close()


@pytest.mark.parametrize(
    ("name", "head", "kind"),
    [
        ("menu.lst", "", ConfigKind.GRUB_LEGACY),
        ("GRUB.CONF", "menuentry x {\n}\n", ConfigKind.GRUB_LEGACY),  # the name wins
        ("syslinux.cfg", "", ConfigKind.EXTLINUX),
        ("pxelinux.cfg", "", ConfigKind.EXTLINUX),
        ("x.cfg", "set default=0\n  menuentry 'a' {\n}\n", ConfigKind.GRUB2),
        ("x.cfg", "blscfg\n", ConfigKind.GRUB2),
        ("x.cfg", "default 0\nTITLE a\n kernel /k\n", ConfigKind.GRUB_LEGACY),
        ("x.cfg", "DEFAULT a\nLABEL a\n KERNEL /k\n", ConfigKind.EXTLINUX),
        ("x.cfg", "Menuentry a {\n}\n", ConfigKind.GRUB2),  # GRUB 2's words are case-sensitive: default
        ("x.cfg", "", ConfigKind.GRUB2),
    ],
)
def test_host_config_kind(name: str, head: str, kind: ConfigKind) -> None:
    assert host_kind(name, head) is kind


def test_a_file_reference_can_name_a_byte_range() -> None:
    whole = FileRef("hd0,gpt1", "/EFI/Linux/a.efi")
    part = FileRef("hd0,gpt1", "/EFI/Linux/a.efi", (4096, 1000), ".linux")
    assert whole.display() == "(hd0,gpt1)/EFI/Linux/a.efi"
    assert whole.to_json() == {"volume": "hd0,gpt1", "path": "/EFI/Linux/a.efi"}
    assert part.display() == "(hd0,gpt1)/EFI/Linux/a.efi:.linux[4096+1000]"
    assert part.to_json() == {
        "volume": "hd0,gpt1",
        "path": "/EFI/Linux/a.efi",
        "offset": 4096,
        "length": 1000,
        "section": ".linux",
    }
