"""Every case of the shared corpus boots what its README says real GRUB / SYSLINUX / systemd-boot boot.

Images are built with the real tools, laid out as the corpus README describes each case; every kernel
and initrd path the config names holds a marker naming its own path, so the test sees which file was
copied. Expected answers are the README's (checked against real boot loaders), never pvboot's output.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from diskbuild import Part, make_disk, marker_initrd, marker_kernel, put
from pvrun import boot

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
U = "5a1e0b2c-0000-4000-8000-00000000d0d0"
MID = "6c1d8e0c2f5a4b6e9d3a7b1c0e2f4a5b"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not CORPUS.is_dir(), reason="needs root and ../shared/corpus"
)

_LOADER = re.compile(r"^\s*(linux|linux16|linuxefi|multiboot2?|kernel)\s+(\S+)", re.M | re.I)
_INITRD = re.compile(r"^\s*(initrd|initrd16|initrdefi|module2?)\s+(.*)$", re.M | re.I)


def populate(tree: Path, config: str, strip: str = "") -> None:
    """A marker file at every kernel/initrd/module path the config names (minus a separate /boot)."""

    def fix(p: str) -> str:
        p = re.sub(r"^\([^)]*\)", "", p)
        return p[len(strip) :] if strip and p.startswith(strip + "/") else p

    for _, path in _LOADER.findall(config):
        if path.startswith(("/", "(")):
            put(tree, fix(path), marker_kernel(fix(path)))
    for command, rest in _INITRD.findall(config):
        words = rest.split()
        if command.lower().startswith("module"):  # a multiboot module: only its first word is a file
            words = [w for w in words if not w.startswith("--")][:1]
        for word in words:
            if word.startswith(("/", "(")) and not (tree / fix(word).lstrip("/")).exists():
                put(tree, fix(word), marker_initrd(fix(word)))


def debian_case(tmp: Path, variant: str) -> Path:
    src = CORPUS / "debian12-grub-mkconfig" / variant
    tree = tmp / "tree"
    cfg = (src / "grub.cfg").read_text()
    put(tree, "/boot/grub/grub.cfg", cfg.encode())
    if (src / "grubenv").exists():
        put(tree, "/boot/grub/grubenv", (src / "grubenv").read_bytes())
    populate(tree, cfg)
    return make_disk(tmp / "disk.img", [Part(tree, uuid=U)], "dos")


def tokens(text: str) -> list[str]:
    return text.split()


DEBIAN = {
    "default": (
        "/boot/vmlinuz-6.1.0-20-amd64",
        ["/boot/initrd.img-6.1.0-20-amd64"],
        f"root=UUID={U} ro quiet",
    ),
    "submenu-index": (
        "/boot/vmlinuz-6.1.0-10-amd64",
        ["/boot/initrd.img-6.1.0-10-amd64"],
        f"root=UUID={U} ro quiet",
    ),
    "saved-empty": (
        "/boot/vmlinuz-6.1.0-20-amd64",
        ["/boot/initrd.img-6.1.0-20-amd64"],
        f"root=UUID={U} ro quiet",
    ),
    "saved-id": (
        "/boot/vmlinuz-6.1.0-10-amd64",
        ["/boot/initrd.img-6.1.0-10-amd64"],
        f"root=UUID={U} ro single",
    ),
    "nosubmenu-cmdline": (
        "/boot/vmlinuz-6.1.0-10-amd64",
        ["/boot/initrd.img-6.1.0-10-amd64"],
        f"root=UUID={U} ro console=hvc0 earlyprintk=xen quiet splash",
    ),
    "xen-default": (
        "/boot/vmlinuz-6.1.0-20-amd64",
        ["/boot/initrd.img-6.1.0-20-amd64"],
        f"root=UUID={U} ro quiet",
    ),
}


def check(result, kernel: str, initrds: list[str], args: str) -> None:  # type: ignore[no-untyped-def]
    assert result.code == 0, result.stderr
    assert result.kernel == marker_kernel(kernel)
    assert (result.ramdisk or b"") == b"".join(marker_initrd(i) for i in initrds)
    assert tokens(result.answer.get("args", "")) == tokens(args)
    assert result.leftover == []


@pytest.mark.parametrize("variant", sorted(DEBIAN))
def test_debian12_update_grub(tmp_path: Path, variant: str) -> None:
    image = debian_case(tmp_path, variant)
    check(boot(image, tmp_path), *DEBIAN[variant])


def test_debian12_xen_title_default_is_refused(tmp_path: Path) -> None:
    """The default is the Xen dom0 entry: not a PV guest kernel, so pvboot fails and says why."""
    image = debian_case(tmp_path, "xen-title")
    result = boot(image, tmp_path)
    assert result.code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pvboot: ")
    assert "Xen hypervisor" in lines[0] and "multiboot" in lines[0]
    assert result.answer == {} and list((tmp_path / "out").iterdir()) == []


def test_uboot_update_extlinux(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    cfg = (CORPUS / "debian12-u-boot-update" / "uboot-default" / "extlinux.conf").read_text()
    put(tree, "/boot/extlinux/extlinux.conf", cfg.encode())
    populate(tree, cfg)
    image = make_disk(tmp_path / "disk.img", [Part(tree, uuid=U)], "dos")
    check(
        boot(image, tmp_path), "/boot/vmlinuz-6.1.0-20-amd64", ["/boot/initrd.img-6.1.0-20-amd64"], "ro quiet"
    )


def test_systemd_kernel_install_bls_on_esp(tmp_path: Path) -> None:
    """BLS entries on an ESP, no grub.cfg: systemd-boot's choice (newest version)."""
    esp = tmp_path / "esp"
    for conf in (CORPUS / "systemd-kernel-install-bls" / "loader" / "entries").iterdir():
        text = conf.read_text()
        put(esp, f"/loader/entries/{conf.name}", text.encode())
        populate(esp, text)
    image = make_disk(tmp_path / "disk.img", [Part(esp, fs="vfat", label="ESP")], "gpt")
    base = f"/boot/{MID}/6.1.0-20-amd64"
    check(
        boot(image, tmp_path),
        f"{base}/linux",
        [f"{base}/initrd.img-6.1.0-20-amd64"],
        f"root=UUID={U} ro quiet systemd.machine_id={MID}",
    )


# (config file, path of grub.cfg on its filesystem, boot fs uuid, label, separate /boot)
XEN_EXAMPLES = {
    "debian-wheezy-hvm.grub2": ("boot/grub/grub.cfg", "f395d5a0-4612-4872-806c-33cd37c152f0", "dos", False),
    "fedora-16-with-xen.grub2": ("grub2/grub.cfg", "f14ea58a-c2b3-4348-8091-3ab733a2f49e", "gpt", True),
    "fedora-19.grub2": ("grub2/grub.cfg", "5001334f-de37-4b0b-bd2b-c1cea036f293", "dos", True),
    "rhel-7-beta.grub2": ("grub2/grub.cfg", "89ffef78-82b3-457c-bc57-42cccc373851", "dos", True),
    "ubuntu-14.04-lts.grub2": ("grub/grub.cfg", "86ba9198-4319-4809-908d-6dbe6938b19a", "dos", True),
}
XEN_EXPECTED = {
    "debian-wheezy-hvm.grub2": ("/boot/vmlinuz-3.2.0-4-amd64", "/boot/initrd.img-3.2.0-4-amd64"),
    "fedora-16-with-xen.grub2": (
        "/vmlinuz-3.1.0-0.rc9.git0.0.fc16.x86_64",
        "/initramfs-3.1.0-0.rc9.git0.0.fc16.x86_64.img",
    ),
    "fedora-19.grub2": ("/vmlinuz-3.9.6-301.fc19.i686.PAE", "/initramfs-3.9.6-301.fc19.i686.PAE.img"),
    "rhel-7-beta.grub2": ("/vmlinuz-3.10.0-54.0.1.el7.x86_64", "/initramfs-3.10.0-54.0.1.el7.x86_64.img"),
    "ubuntu-14.04-lts.grub2": ("/vmlinuz-3.13.0-44-generic", "/initrd.img-3.13.0-44-generic"),
}


def _entry_args(config: str, kernel: str) -> str:
    """The README's 'the entry's args': the words after the kernel on its first `linux` line."""
    for line in config.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("linux", "linux16") and words[1] == kernel:
            return " ".join(words[2:])
    raise AssertionError(f"no linux line for {kernel}")


@pytest.mark.parametrize("name", sorted(XEN_EXAMPLES))
def test_pygrub_examples(tmp_path: Path, name: str) -> None:
    cfg_path, uuid, label, separate = XEN_EXAMPLES[name]
    config = (CORPUS / "xen-examples" / name).read_text()
    boot_tree = tmp_path / "boot"
    put(boot_tree, cfg_path, config.encode())
    populate(boot_tree, config)
    if separate:
        root_tree = tmp_path / "root"
        (root_tree / "boot").mkdir(parents=True)
        parts = [Part(boot_tree, uuid=uuid), Part(root_tree)]
    else:
        parts = [Part(boot_tree, uuid=uuid)]
    image = make_disk(tmp_path / "disk.img", parts, label)
    kernel, initrd = XEN_EXPECTED[name]
    expected_args = (
        "root=/dev/mapper/BoxenSys00-root ro biosdevname=0 quiet"
        if name.startswith("ubuntu")
        else (f"root=UUID={uuid} ro" if name.startswith("debian") else _entry_args(config, kernel))
    )
    check(boot(image, tmp_path), kernel, [initrd], expected_args)


def test_alpine_extlinux_separate_boot(tmp_path: Path) -> None:
    config = (CORPUS / "xen-examples" / "alpine-linux-2.3.2.extlinux").read_text()
    boot_tree = tmp_path / "boot"
    put(boot_tree, "/extlinux.conf", config.encode())
    put(boot_tree, "/vmlinuz-3.0.10-grsec", marker_kernel("/vmlinuz-3.0.10-grsec"))
    put(boot_tree, "/initramfs-3.0.10-grsec", marker_initrd("/initramfs-3.0.10-grsec"))
    root_tree = tmp_path / "root"
    (root_tree / "boot").mkdir(parents=True)
    image = make_disk(tmp_path / "disk.img", [Part(boot_tree), Part(root_tree)], "dos")
    check(
        boot(image, tmp_path),
        "/vmlinuz-3.0.10-grsec",
        ["/initramfs-3.0.10-grsec"],
        "initrd=initramfs-3.0.10-grsec root=UUID=a97ffe64-430f-4fd3-830e-4736d9a27af0 "
        "modules=sd-mod,usb-storage,ext4 quiet",
    )
