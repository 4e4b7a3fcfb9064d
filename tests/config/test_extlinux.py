"""extlinux/syslinux configs as SYSLINUX 6 (and, for device trees, U-Boot) read them.

Corpus expectations come from the corpus README (real SYSLINUX 6.04 / GRUB 2.06); the hand-written ones
from reading ldlinux's readconfig.c, ldlinux.c, execute.c, kernel.c, menu.c32's menumain.c and U-Boot's
pxe_utils.c.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvboot.config.extlinux import extlinux_menu, parse_extlinux
from pvboot.config.source import HostDirFiles
from pvboot.errors import LimitError, NotFoundError, PvbootError
from pvboot.menu import CHAINLOADER, LINUX, OTHER, BootSpec, FileRef, Menu

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
CONF = "/boot/extlinux/extlinux.conf"


def menu_of(
    tmp_path: Path, text: str, path: str = CONF, extra: dict[str, str] | None = None, **kw: str
) -> Menu:
    for name, content in {path: text, **(extra or {})}.items():
        host = tmp_path / name.lstrip("/")
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_text(content)
    return extlinux_menu(text, HostDirFiles(tmp_path), path, **kw)


def default_boot(menu: Menu) -> BootSpec:
    assert menu.default is not None
    boot = menu.entries[int(menu.default)].boot
    assert boot is not None
    return boot


def corpus(name: str) -> str:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip("../shared/corpus is not here")
    return path.read_text()


# --- the corpus


def test_corpus_u_boot_update(tmp_path: Path) -> None:
    # README: SYSLINUX 6.04 and GRUB boot /boot/vmlinuz-6.1.0-20-amd64, initrd.img-6.1.0-20-amd64, `ro quiet`
    boot = default_boot(menu_of(tmp_path, corpus("debian12-u-boot-update/uboot-default/extlinux.conf")))
    assert boot.kind == LINUX and boot.kernel == FileRef(None, "/boot/vmlinuz-6.1.0-20-amd64")
    assert [i.path for i in boot.initrds] == ["/boot/initrd.img-6.1.0-20-amd64"]
    assert boot.args.split() == ["ro", "quiet"]


def test_corpus_u_boot_update_postinst_default_label(tmp_path: Path) -> None:
    menu = menu_of(tmp_path, corpus("debian12-u-boot-update/host-uboot-menu-postinst/extlinux.conf"))
    assert menu.entries[int(menu.default or -1)].id == "l0"  # the file's own `default l0`
    assert default_boot(menu).kernel == FileRef(None, "/boot/vmlinuz-6.1.0-56-amd64")


def test_corpus_alpine(tmp_path: Path) -> None:
    # README: /vmlinuz-3.0.10-grsec, initramfs-3.0.10-grsec, args keep the initrd= token
    menu = menu_of(tmp_path, corpus("xen-examples/alpine-linux-2.3.2.extlinux"), path="/extlinux.conf")
    boot = default_boot(menu)
    assert boot.kernel == FileRef(None, "/vmlinuz-3.0.10-grsec")
    assert [Path(i.path).name for i in boot.initrds] == ["initramfs-3.0.10-grsec"]
    want = (
        "initrd=initramfs-3.0.10-grsec root=UUID=a97ffe64-430f-4fd3-830e-4736d9a27af0"
        " modules=sd-mod,usb-storage,ext4 quiet"
    )
    assert boot.args.split() == want.split()
    assert menu.timeout == 3 and menu.timeout_style == "hidden"  # TIMEOUT 30 tenths, MENU HIDDEN


# --- defaults


def test_default_label_boots_at_once_and_drops_extra_words(tmp_path: Path) -> None:
    menu = menu_of(tmp_path, "DEFAULT two single\nLABEL one\nKERNEL /a\nLABEL two\nKERNEL /b\nAPPEND ro\n")
    assert menu.entries[int(menu.default or -1)].id == "two"
    assert default_boot(menu).args == "ro" and menu.timeout == 0 and menu.timeout_style == "hidden"


def test_default_implicit_kernel_command(tmp_path: Path) -> None:
    menu = menu_of(tmp_path, "default vmlinuz root=/dev/xvda1 initrd=initrd.gz\n")
    boot = default_boot(menu)
    assert boot.kernel == FileRef(None, "/boot/extlinux/vmlinuz")  # relative to the config's directory
    assert boot.initrds == [FileRef(None, "/boot/extlinux/initrd.gz")]
    assert boot.args == "root=/dev/xvda1 initrd=initrd.gz"
    assert menu_of(tmp_path, "implicit 0\ndefault vmlinuz\n").default is None


def test_menu_default_and_ui(tmp_path: Path) -> None:
    labels = "LABEL a\nLINUX /a\nLABEL b\nMENU DEFAULT\nLINUX /b\nLABEL c\nLINUX /c\n"
    no_ui = menu_of(
        tmp_path, "DEFAULT menu.c32\nDEFAULT c\n" + labels
    )  # the last DEFAULT is a label: boots c
    assert no_ui.entries[int(no_ui.default or -1)].id == "c"
    menu_module = menu_of(tmp_path, "DEFAULT vesamenu.c32\n" + labels)
    assert menu_module.entries[int(menu_module.default or -1)].id == "b"  # MENU DEFAULT; DEFAULT needs UI
    ui = menu_of(tmp_path, "UI menu.c32\nDEFAULT c\nTIMEOUT 25\n" + labels)
    assert ui.entries[int(ui.default or -1)].id == "c" and ui.timeout == 3 and ui.timeout_style == "menu"
    first = menu_of(tmp_path, "UI menu.c32\nLABEL x\nLINUX /x\nLABEL y\nLINUX /y\n")
    assert first.entries[int(first.default or -1)].id == "x" and first.timeout is None


def test_ontimeout(tmp_path: Path) -> None:
    labels = "LABEL a\nLINUX /a\nLABEL b\nLINUX /b\nAPPEND ro\n"
    menu = menu_of(tmp_path, "UI menu.c32\nTIMEOUT 10\nONTIMEOUT b quiet\n" + labels)
    assert default_boot(menu).kernel == FileRef(None, "/b") and default_boot(menu).args == "ro quiet"
    no_timeout = menu_of(tmp_path, "UI menu.c32\nONTIMEOUT b\n" + labels)  # waits: Enter boots a
    assert no_timeout.entries[int(no_timeout.default or -1)].id == "a"
    prompt = menu_of(tmp_path, "PROMPT 1\nTIMEOUT 50\nDEFAULT a\nONTIMEOUT b\n" + labels)
    assert default_boot(prompt).kernel == FileRef(None, "/b") and prompt.timeout == 5


def test_no_default(tmp_path: Path) -> None:
    menu = menu_of(tmp_path, "LABEL a\nLINUX /a\n")
    assert menu.default is None and len(menu.entries) == 1


# --- labels and command lines


def test_label_directives(tmp_path: Path) -> None:
    text = (
        "APPEND console=hvc0\n"
        "label plain\n"  # no KERNEL: the label names the kernel; the global APPEND applies
        "label titled\n  menu label ^Rescue mode\n  kernel vmlinuz single\n  append -\n"
        "label twoinitrds\n  linux /v\n  initrd /i1,/i2\n  append ro\n"
        "label appendinitrd\n  linux /v\n  append initrd=/a,/b ro\n  initrd /ignored\n"
        "label module\n  kernel hdt.c32\n"
        "label disk\n  localboot 0x80\n"
        "label hidden\n  menu hide\n  linux /h\n"
    )
    menu = menu_of(tmp_path, text)
    by_id = {e.id: e for e in menu.entries}
    assert [e.id for e in menu.entries][-1] == "hidden" and menu.entries[-1].handle.hidden
    plain = by_id["plain"].boot
    assert plain is not None and plain.kernel == FileRef(None, "/boot/extlinux/plain")
    assert plain.args == "console=hvc0"
    titled = by_id["titled"]
    assert titled.title == "Rescue mode" and titled.hotkey == "R" and titled.boot is not None
    assert titled.boot.args == "single"  # extra KERNEL words; `append -` is no APPEND at all
    two = by_id["twoinitrds"].boot
    assert two is not None and [i.path for i in two.initrds] == ["/i1", "/i2"] and two.args == "ro"
    assert by_id["twoinitrds"].source == ".linux /v ro initrd=/i1,/i2"  # what SYSLINUX itself runs
    app = by_id["appendinitrd"].boot
    assert app is not None and [i.path for i in app.initrds] == ["/a", "/b"]  # the first initrd= wins
    assert app.args == "initrd=/a,/b ro"
    module = by_id["module"].boot
    assert module is not None and module.kind == OTHER and module.loader == "com32"
    disk = by_id["disk"].boot
    assert disk is not None and disk.kind == CHAINLOADER


def test_devicetree_u_boot(tmp_path: Path) -> None:
    text = (
        "label a\n linux /Image\n fdt /dtbs/board.dtb\n devicetree /second.dtb\n"
        "label b\n linux /Image\n fdtdir /dtbs\n"
        "label c\n linux /Image\n devicetreedir dtbs/\n"
    )
    menu = menu_of(tmp_path, text, fdtfile="vendor/board.dtb")
    a, b, c = (e.boot for e in menu.entries)
    assert a is not None and a.devicetree == FileRef(None, "/dtbs/board.dtb")  # the first one wins
    assert b is not None and b.devicetree == FileRef(None, "/dtbs/vendor/board.dtb")
    assert c is not None and c.devicetree == FileRef(None, "/boot/extlinux/dtbs/vendor/board.dtb")
    assert menu_of(tmp_path, text).entries[1].handle.fdtdir == "/dtbs"


def test_includes(tmp_path: Path) -> None:
    text = "INCLUDE common.cfg\nMENU INCLUDE sub.cfg Submenu\nINCLUDE missing.cfg\nDEFAULT s\n"
    extra = {
        "/boot/extlinux/common.cfg": "LABEL c\nLINUX /c\n",
        "/boot/extlinux/sub.cfg": "LABEL s\nLINUX /s\n",
    }
    menu = menu_of(tmp_path, text, extra=extra)
    assert [e.id for e in menu.entries] == ["c", "s"]
    assert menu.entries[int(menu.default or -1)].id == "s"
    with pytest.raises(LimitError):
        menu_of(tmp_path, "INCLUDE extlinux.conf\n")


def test_timeouts_and_prompt(tmp_path: Path) -> None:
    base = "DEFAULT a\nLABEL a\nLINUX /a\n"
    assert menu_of(tmp_path, "PROMPT 1\nTIMEOUT 1\n" + base).timeout == 1  # tenths round up
    assert menu_of(tmp_path, "PROMPT 1\n" + base).timeout is None  # TIMEOUT 0: wait
    assert menu_of(tmp_path, "PROMPT 1\nTOTALTIMEOUT 100\n" + base).timeout == 10


def test_lexical_rules(tmp_path: Path) -> None:
    text = (
        "# comment\n"
        "SAY hello there\n"
        "TEXT HELP\nLABEL notalabel\nENDTEXT\n"
        "LaBeL a\r junk after CR\n"
        "labelx b\n"  # not a keyword: must be followed by a blank
        "  KERNEL /k\n"
        "  APPEND " + "x" * 5000 + "\n"
    )
    cfg = parse_extlinux(text, HostDirFiles(tmp_path), CONF)
    assert [lb.label for lb in cfg.labels] == ["a"] and cfg.says == ["hello there"]
    assert cfg.labels[0].append == "x" * (4095 - len("  APPEND "))  # SYSLINUX reads 4095 bytes a line


TEXT = st.text(alphabet=st.sampled_from(list(" \t\n\r#^,=./-0123456789abcdefiklmnoprstuxy\0é")), max_size=300)
WORDS = st.lists(
    st.sampled_from(["label", "kernel", "linux", "initrd", "append", "default", "ui", "menu", "include",
                     "menu.c32", "hide", "begin", "end", "timeout", "prompt", "1", "ontimeout", "fdtdir",
                     "initrd=", ",", "x.c32", ".linux", "\n", "a", "b"]),
    max_size=60,
)  # fmt: skip


class MemFiles:
    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def read(self, path: str) -> str:
        if path not in self.files:
            raise NotFoundError(path)
        return self.files[path]

    def listdir(self, path: str) -> list[str]:
        raise NotFoundError(path)

    def exists(self, path: str) -> bool:
        return path in self.files


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT, words=WORDS)
def test_hostile_configs_never_crash(text: str, words: list[str]) -> None:
    for config in (text, " ".join(words)):
        files = MemFiles({"/boot/extlinux/a": config, "/boot/extlinux/b": text})
        try:
            menu = extlinux_menu(config, files, CONF, fdtfile="x.dtb")
            if menu.default is not None:
                assert 0 <= int(menu.default) < len(menu.entries)
        except PvbootError:
            pass


def test_ontimeout_without_a_default_item_and_empty_initrd(tmp_path: Path) -> None:
    text = "UI menu.c32\nTIMEOUT 10\nONTIMEOUT x\nMENU BEGIN sub\nLABEL x\nLINUX /x\nMENU END\n"
    assert default_boot(menu_of(tmp_path, text)).kernel == FileRef(None, "/x")
    empty = menu_of(tmp_path, "DEFAULT a\nLABEL a\nLINUX /a\nINITRD\n")  # SYSLINUX adds " initrd=": fails
    assert not default_boot(empty).pv_bootable
