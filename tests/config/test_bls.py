"""BLS entries as Fedora/RHEL GRUB's blscfg and as systemd-boot 252 read them.

Expected values come from the corpus README (what real systemd-boot booted), from the version-ordering
examples in the loaders' own sources (rpm's rpmvercmp test vectors, systemd's strverscmp_improved
comment), or from reading blscfg.c / boot.c for the hand-written cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diskbuild import config_tree as tree
from pvboot.config.bls import (
    BlscfgState,
    BlsEntry,
    blscfg_command,
    blscfg_entries,
    blscfg_expand,
    blscfg_menuentry,
    parse_blscfg_text,
    systemd_boot_menu,
)
from pvboot.config.source import HostDirFiles
from pvboot.config.vercmp import efi_fnmatch, rpmvercmp, strverscmp_improved
from pvboot.errors import LimitError, NotFoundError, PvbootError
from pvboot.menu import LINUX, NOTHING

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
BLS_CORPUS = CORPUS / "systemd-kernel-install-bls"
U = "5a1e0b2c-0000-4000-8000-00000000d0d0"
MID = "6c1d8e0c2f5a4b6e9d3a7b1c0e2f4a5b"


class MemFiles:
    """An in-memory ConfigFiles for the property tests (no disk churn per example)."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def read(self, path: str) -> str:
        if path not in self.files:
            raise NotFoundError(path)
        return self.files[path]

    def listdir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        names = [p[len(prefix) :] for p in self.files if p.startswith(prefix) and "/" not in p[len(prefix) :]]
        if not names:
            raise NotFoundError(path)
        return names

    def exists(self, path: str) -> bool:
        return path in self.files or any(p.startswith(path.rstrip("/") + "/") for p in self.files)


@pytest.fixture
def corpus_tree(tmp_path: Path) -> HostDirFiles:
    if not BLS_CORPUS.is_dir():
        pytest.skip("../shared/corpus is not here")
    files = {}
    for conf in (BLS_CORPUS / "loader" / "entries").iterdir():
        files[f"/loader/entries/{conf.name}"] = conf.read_text()
    for ver in ("6.1.0-10-amd64", "6.1.0-20-amd64"):
        files[f"/boot/{MID}/{ver}/linux"] = "kernel"
        files[f"/boot/{MID}/{ver}/initrd.img-{ver}"] = "initrd"
    return tree(tmp_path, files)


# --- the corpus (README: systemd-kernel-install-bls)


def test_corpus_systemd_boot_boots_the_newest(corpus_tree: HostDirFiles) -> None:
    menu = systemd_boot_menu(corpus_tree, "/loader/entries", None)
    boot = menu.entries[int(menu.default or 0)].boot
    assert boot is not None and boot.kind == LINUX and boot.kernel is not None
    assert boot.kernel.path == f"/boot/{MID}/6.1.0-20-amd64/linux"
    assert [i.path for i in boot.initrds] == [f"/boot/{MID}/6.1.0-20-amd64/initrd.img-6.1.0-20-amd64"]
    assert boot.args.split() == f"root=UUID={U} ro quiet systemd.machine_id={MID}".split()


def test_corpus_blscfg_newest_first_ids_are_file_names(corpus_tree: HostDirFiles) -> None:
    entries = blscfg_entries(corpus_tree, "/loader/entries", {})
    assert [e.id for e in entries] == [f"{MID}-6.1.0-20-amd64", f"{MID}-6.1.0-10-amd64"]
    boot = entries[0].boot
    assert boot is not None and boot.kernel is not None
    assert boot.kernel.path == f"/boot/{MID}/6.1.0-20-amd64/linux"
    assert boot.args.split() == f"root=UUID={U} ro quiet systemd.machine_id={MID}".split()


# --- blscfg parsing and the menu entry it generates


def test_blscfg_parse_quirks() -> None:
    text = "# comment\n  title  A B\r\noptions one\noptions two\nlinux\t/vmlinuz x\n\ninitrd /late\n"
    # first space splits (even after a tab), a blank line ends the file
    assert parse_blscfg_text(text) == [
        ("title", "A B"),
        ("options", "one"),
        ("options", "two"),
        ("linux\t/vmlinuz", "x"),
    ]
    assert parse_blscfg_text("title A\nversion\ninitrd /x\n") == [("title", "A")]


def test_blscfg_first_options_line_counts_and_variables_expand() -> None:
    entry = BlsEntry(
        "m-5.1-1.conf", [("linux", "/vmlinuz-5.1"), ("options", "$kernelopts quiet"), ("options", "x")]
    )
    me = blscfg_menuentry(entry, {"kernelopts": "root=/dev/sda1 ro"})
    assert me is not None and me.options == "root=/dev/sda1 ro quiet"
    assert (
        me.source
        == "load_video\nset gfxpayload=keep\ninsmod gzio\nlinux ($root)/vmlinuz-5.1 root=/dev/sda1 ro quiet\n"
    )


def test_blscfg_default_kernelopts_fallback() -> None:
    env = {"default_kernelopts": "root=/dev/vg/root ro"}
    no_options = BlsEntry("a.conf", [("linux", "/vmlinuz")])
    unset_var = BlsEntry("b.conf", [("linux", "/vmlinuz"), ("options", "$kernelopts")])
    for entry in (no_options, unset_var):
        me = blscfg_menuentry(entry, env)
        assert me is not None and me.options == "root=/dev/vg/root ro"


def test_blscfg_expand_quirks() -> None:
    env = {"a": "1", "kernelopts": "k"}
    assert blscfg_expand("x $a yy", env) == "x 1 yy"
    assert blscfg_expand("x $a y", env) == "x 1 "  # a one-character trailing field is dropped
    assert blscfg_expand("$a", env) is None
    assert blscfg_expand("x \\$a yy", env) == "x \\$a yy"  # escaped: left for GRUB's own parser
    assert blscfg_expand("$unset $kernelopts", env) == "k "
    assert blscfg_expand("$ab$cd", env) is None


def test_blscfg_args_go_through_grubs_word_rules() -> None:
    entry = BlsEntry("e.conf", [("linux", "/vmlinuz"), ("options", "$kernelopts 'a b' c\\\"d")])
    e = blscfg_entries_of([entry], {"kernelopts": "root=x  ro"})[0]
    assert e.boot is not None and e.boot.args == 'root=x ro "a b" c\\"d'


def blscfg_entries_of(entries: list[BlsEntry], env: dict[str, str]):  # type: ignore[no-untyped-def]
    from pvboot.config.bls import blscfg_entry

    return [blscfg_entry(b, env) for b in entries]


def test_blscfg_initrds_early_initrd_devicetree_and_menu_fields() -> None:
    entry = BlsEntry(
        "id-1.conf",
        [("title", "T"), ("linux", "/boot/vmlinuz"), ("initrd", "/boot/i1"), ("initrd", "/boot/i2"),
         ("grub_users", "$admins"), ("grub_class", "kernel"), ("grub_arg", "--unrestricted"),
         ("grub_hotkey", "x")],
    )  # fmt: skip
    env = {"early_initrd": "ucode.img", "devicetree": "board.dtb", "admins": "root"}
    me = blscfg_menuentry(entry, env)
    assert me is not None
    assert me.source.endswith(
        "initrd ($root)/boot/ucode.img ($root)/boot/i1 ($root)/boot/i2\ndevicetree ($root)/boot/board.dtb\n"
    )
    e = blscfg_entries_of([entry], env)[0]
    assert e.users == "root " and not e.unrestricted and e.classes == ["kernel"] and e.hotkey == "x"
    assert e.boot is not None and [i.path for i in e.boot.initrds] == [
        "/boot/ucode.img",
        "/boot/i1",
        "/boot/i2",
    ]
    assert e.boot.devicetree is not None and e.boot.devicetree.path == "/boot/board.dtb"
    assert blscfg_entries_of([BlsEntry("n.conf", [("linux", "/v")])], {})[0].unrestricted


def test_blscfg_entry_without_linux_is_skipped_and_bad_names_hang_grub() -> None:
    assert blscfg_menuentry(BlsEntry("x.conf", [("title", "x")]), {}) is None
    with pytest.raises(LimitError):
        blscfg_menuentry(BlsEntry("a.conf-1.conf", [("linux", "/v")]), {})
    me = blscfg_menuentry(BlsEntry("a.conf.conf", [("linux", "/v")]), {})
    assert me is not None and me.id == "a"


def test_blscfg_relative_kernel_is_not_bootable() -> None:
    e = blscfg_entries_of([BlsEntry("x.conf", [("linux", "vmlinuz")])], {})[0]
    assert e.boot is not None and e.boot.kind == NOTHING and "invalid file name" in e.boot.errors[0]


def test_blscfg_command_default_non_default_and_fallback_dir(tmp_path: Path) -> None:
    files = tree(
        tmp_path,
        {f"/boot/loader/entries/m-5.{v}-1.conf": f"title K{v}\nlinux /vmlinuz-5.{v}\n" for v in (1, 2, 3)}
        | {"/boot/loader/entries/.hidden.conf": "linux /x\n", "/boot/loader/entries/notes.txt": "x"},
    )
    state = BlscfgState()
    env = {"default": "m-5.2-1"}
    first = blscfg_command(state, files, ["default"], env)
    assert [e.id for e in first] == ["m-5.2-1"]
    rest = blscfg_command(state, files, ["non-default"], env)
    assert [e.id for e in rest] == ["m-5.3-1", "m-5.1-1"]
    assert blscfg_command(state, files, [], env) == []  # every entry is shown once
    by_index = blscfg_command(BlscfgState(), files, ["default"], {"default": "2"})
    assert [e.title for e in by_index] == ["K1"]


def test_blscfg_blsdir_and_single_file(tmp_path: Path) -> None:
    files = tree(tmp_path, {"/custom/a-1-1.conf": "linux /a\n", "/custom/b-1-1.conf": "linux /b\n"})
    assert [e.id for e in blscfg_command(BlscfgState(), files, [], {"blsdir": "/custom"})] == [
        "b-1-1",
        "a-1-1",
    ]
    one = blscfg_command(BlscfgState(), files, ["(hd0,gpt2)/custom/a-1-1.conf"], {})
    assert [e.id for e in one] == ["a-1-1"]


def test_blscfg_equal_versions_keep_the_first() -> None:
    state = BlscfgState()
    state.add(BlsEntry("k-1.0-1.conf", [("linux", "/first")]))
    state.add(BlsEntry("k-1_0-1.conf", [("linux", "/second")]))
    assert [e.filename for e in state.entries] == ["k-1.0-1.conf"]


# --- hostile input


TEXT = st.text(
    alphabet=st.sampled_from(list(" \t\n\r#$\\'\"{};|=+-~^.*?[]0123456789abckloptinurdsx/\0é")), max_size=200
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT, env_value=TEXT)
def test_hostile_entries_never_crash(text: str, env_value: str) -> None:
    env = {"kernelopts": env_value, "default_kernelopts": env_value, "early_initrd": env_value[:20]}
    files = MemFiles(
        {"/loader/entries/a-1-1.conf": text, "/loader/entries/b.conf": text + "\nlinux /v\n", "/v": "k"}
    )
    try:
        parse_blscfg_text(text)
        blscfg_expand(text, env)
        blscfg_entries(files, "/loader/entries", env)
        blscfg_command(BlscfgState(), files, ["default"], env | {"default": text[:10]})
        systemd_boot_menu(files, "/loader/entries", text)
        rpmvercmp(text, env_value)
        strverscmp_improved(text, env_value)
        efi_fnmatch(text[:40], env_value[:40])
    except PvbootError:
        pass
