"""pvboot on real images holding real kernels: the JSON it prints matches docs/schema/, the kernel stage's
checks in-process (check_boot_files on a real guest filesystem) and, once wired into boot.py/reader.py
(`--no-kernel-check` exists), end to end: what boots, what is refused and how the refusal reads."""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from kernel_samples import ElfSpec, bzimage_of, make_elf, newc

import pvrun
from pvboot.disk.volumes import GuestDisk
from pvboot.extract import GuestFile
from pvboot.kernel import DtbError, KernelNotBootable, check_boot_files, clean_reply_fields
from pvboot.limits import Limits

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
SCHEMAS = ROOT / "docs" / "schema"
CORPUS = ROOT.parent / "shared" / "corpus"
UUID = "5a1e0b2c-0000-4000-8000-00000000d0d0"

jsonschema = pytest.importorskip("jsonschema", reason="validating against docs/schema needs jsonschema")
pytestmark = pytest.mark.skipif(
    not (shutil.which("mkfs.ext4") and shutil.which("sfdisk")),
    reason="building images needs mkfs.ext4, sfdisk",
)


def schema(name: str) -> jsonschema.Draft202012Validator:
    doc = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


def validate(doc: dict, name: str) -> None:
    errors = sorted(schema(name).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def pvboot(*args: str) -> subprocess.CompletedProcess[str]:
    """pvboot in a bare environment, its output as text."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PVBOOT_RUN_LOG": "none", "PVBOOT_CACHE_DIR": "none"}
    return subprocess.run(
        pvrun.command(*args), capture_output=True, text=True, env=pvrun.environment(env, inherit=False),
        timeout=300, check=False,
    )  # fmt: skip


def wired() -> bool:
    return "--no-kernel-check" in pvboot("--help").stdout


needs_wiring = pytest.mark.skipif("not wired()", reason="the kernel stage is not wired into pvboot yet")

GRUB_CFG = (CORPUS / "debian12-grub-mkconfig" / "default" / "grub.cfg") if CORPUS.is_dir() else None
INITRD = gzip.compress(newc({"init": b"#!/bin/sh\n"}), mtime=0)
EXTLINUX = """default l0
menu title U-Boot menu
timeout 50

label l0
\tmenu label Debian GNU/Linux 12 (bookworm) {version}
\tlinux /boot/vmlinuz-{version}
\tinitrd /boot/initrd.img-{version}
\tfdt /usr/lib/linux-image-{version}/{dtb}
\tappend ro quiet

label l1
\tmenu label Debian GNU/Linux 12 (bookworm) {version} (corrupt device tree)
\tlinux /boot/vmlinuz-{version}
\tinitrd /boot/initrd.img-{version}
\tfdt /boot/broken.dtb
\tappend ro quiet
"""


def _put(tree: Path, path: str, data: bytes) -> None:
    target = tree / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


@pytest.fixture(scope="module")
def x86_disk(amd64_kernel, tmp_path_factory) -> Path:
    """Debian 12's update-grub grub.cfg; its 6.1.0-20 is the real Debian kernel, 6.1.0-10 a bzImage
    without Xen support; /boot/true is /bin/true."""
    if GRUB_CFG is None:
        pytest.skip("needs ../shared/corpus")
    from diskbuild import Part, make_disk

    work = tmp_path_factory.mktemp("x86-disk")
    tree = work / "tree"
    _put(tree, "/boot/grub/grub.cfg", GRUB_CFG.read_bytes())
    _put(tree, "/boot/vmlinuz-6.1.0-20-amd64", amd64_kernel.image.read_bytes())
    _put(tree, "/boot/vmlinuz-6.1.0-10-amd64", bzimage_of(make_elf(ElfSpec(notes=[])), "gzip"))
    _put(tree, "/boot/initrd.img-6.1.0-20-amd64", INITRD)
    _put(tree, "/boot/initrd.img-6.1.0-10-amd64", INITRD)
    _put(tree, "/boot/true", Path(shutil.which("true") or "/bin/true").read_bytes())
    return make_disk(work / "disk.img", [Part(tree, uuid=UUID)], "dos")


@pytest.fixture(scope="module")
def arm_disk(arm64_kernel, tmp_path_factory) -> tuple[Path, Path]:
    """u-boot-update's extlinux.conf with `fdt`: l0 a real DTB, l1 a corrupt one. Returns (disk, dtb)."""
    from diskbuild import Part, make_disk

    work = tmp_path_factory.mktemp("arm-disk")
    tree = work / "tree"
    version = arm64_kernel.version
    dtb = next(p for p in arm64_kernel.dtbs if p.parent.name == "arm")
    conf = EXTLINUX.format(version=version, dtb=f"{dtb.parent.name}/{dtb.name}")
    _put(tree, "/boot/extlinux/extlinux.conf", conf.encode())
    _put(tree, f"/boot/vmlinuz-{version}", arm64_kernel.image.read_bytes())
    _put(tree, f"/boot/initrd.img-{version}", INITRD)
    _put(tree, f"/usr/lib/linux-image-{version}/{dtb.parent.name}/{dtb.name}", dtb.read_bytes())
    broken = bytearray(dtb.read_bytes())
    struct.pack_into(">I", broken, 4, len(broken) * 2)  # totalsize beyond the file
    _put(tree, "/boot/broken.dtb", bytes(broken))
    return make_disk(work / "disk.img", [Part(tree, uuid=UUID)], "dos"), dtb


# --- the JSON pvboot prints today ------------------------------------------------------------------


def test_list_json_matches_schema(x86_disk):
    proc = pvboot("-l", "--output-format=json", str(x86_disk))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    validate(doc, "list")
    assert doc["menu"]["entries"][0]["title"] == "Debian GNU/Linux"
    assert doc["volumes"][0]["uuid"] == UUID


def test_list_json_names_the_device_tree(arm_disk):
    disk, dtb = arm_disk
    proc = pvboot("-l", "--output-format=json", str(disk))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    validate(doc, "list")
    boot = doc["menu"]["entries"][0]["boot"]
    assert boot["devicetree"]["path"].endswith(f"/{dtb.parent.name}/{dtb.name}")


def test_boot_json_matches_schema(x86_disk, amd64_kernel, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = pvboot("-q", "--output-format=json", f"--output-directory={out}", str(x86_disk))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    validate(doc, "boot-answer")
    assert Path(doc["kernel"]).read_bytes() == amd64_kernel.image.read_bytes()
    assert doc["entry"] == {"title": "Debian GNU/Linux", "path": [0]}
    for extra in (["-n"], ["-n", "--kernel=/boot/vmlinuz-6.1.0-20-amd64"]):
        proc = pvboot("-q", "--output-format=json", *extra, str(x86_disk))
        assert proc.returncode == 0, proc.stderr
        validate(json.loads(proc.stdout), "boot-answer")


def test_debug_names_the_config_and_the_entry(x86_disk):
    proc = pvboot("-q", "-n", "--debug", str(x86_disk))
    assert proc.returncode == 0, proc.stderr
    assert "(hd0,msdos1)/boot/grub/grub.cfg" in proc.stderr
    assert "chose 'Debian GNU/Linux'" in proc.stderr


def test_proposed_fields_match_schema(arm_disk, arm64_kernel):
    """What check_boot_files reports, through the parent's clean_reply_fields, fits the proposed schema."""
    disk, dtb = arm_disk
    tree = GuestDisk(str(disk), Limits()).volume("hd0,msdos1").tree()
    version = arm64_kernel.version
    dtb_path = f"/usr/lib/linux-image-{version}/{dtb.parent.name}/{dtb.name}"
    check = check_boot_files(
        GuestFile(tree, f"/boot/vmlinuz-{version}"),
        [GuestFile(tree, f"/boot/initrd.img-{version}")],
        GuestFile(tree, dtb_path),
        Limits(),
        entry="l0",
    )
    fields = clean_reply_fields(check.reply_fields())
    answer = {
        "kernel": "/var/lib/xen/bootloader.7.d/boot_kernel.abc123",
        "ramdisk": "/var/lib/xen/bootloader.7.d/boot_ramdisk.abc123",
        "args": "ro quiet",
        "kernel_source": f"(hd0,msdos1)/boot/vmlinuz-{version}",
        "ramdisk_sources": [f"(hd0,msdos1)/boot/initrd.img-{version}"],
        "entry": {"title": "Debian", "path": [0]},
        "devicetree": "/var/lib/xen/bootloader.7.d/boot_devicetree.abc123",
        "schema_version": 1,
        **fields,
    }
    validate(answer, "boot-answer")
    assert fields["kernel_info"]["arch"] == "arm64" and fields["devicetree_info"]["compatible"]
    assert fields["devicetree_source"] == f"(hd0,msdos1){dtb_path}"
    assert check.devicetree_data == dtb.read_bytes()


def test_check_boot_files_on_a_guest_filesystem(x86_disk):
    tree = GuestDisk(str(x86_disk), Limits()).volume("hd0,msdos1").tree()
    good = check_boot_files(
        GuestFile(tree, "/boot/vmlinuz-6.1.0-20-amd64"), [GuestFile(tree, "/boot/true")], None, Limits()
    )
    assert good.kernel is not None and good.kernel.pv and good.kernel.pvh
    assert len(good.warnings) == 1
    assert good.warnings[0].startswith("initrd (hd0,msdos1)/boot/true: not a cpio archive")
    for path in ("/boot/vmlinuz-6.1.0-10-amd64", "/boot/true"):
        with pytest.raises(KernelNotBootable) as err:
            check_boot_files(GuestFile(tree, path), [], None, Limits(), entry="Some entry")
        message = str(err.value)
        assert message.startswith(
            f"menu entry 'Some entry': kernel (hd0,msdos1){path} cannot boot as a Xen guest"
        )
        assert "Xen ELF notes" in message and "--no-kernel-check" in message
    unchecked = check_boot_files(GuestFile(tree, "/boot/true"), [], None, Limits(), check=False)
    assert unchecked.kernel is None


def test_check_boot_files_refuses_a_corrupt_device_tree(arm_disk):
    disk, _dtb = arm_disk
    tree = GuestDisk(str(disk), Limits()).volume("hd0,msdos1").tree()
    kernel = next(p.name for p in (disk.parent / "tree" / "boot").glob("vmlinuz-*"))
    with pytest.raises(DtbError, match=r"device tree \(hd0,msdos1\)/boot/broken.dtb: truncated"):
        check_boot_files(
            GuestFile(tree, f"/boot/{kernel}"), [], GuestFile(tree, "/boot/broken.dtb"), Limits()
        )


# --- end to end, once wired ------------------------------------------------------------------------


@needs_wiring
def test_debian_kernel_boots_and_json_reports_it(x86_disk, tmp_path):
    proc = pvboot("-q", "--output-format=json", f"--output-directory={tmp_path}", str(x86_disk))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    validate(doc, "boot-answer")
    assert (
        doc["kernel_info"]["pv"] and doc["kernel_info"]["pvh"] and doc["kernel_info"]["format"] == "bzImage"
    )


@needs_wiring
@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--kernel=/boot/vmlinuz-6.1.0-10-amd64"], ["/boot/vmlinuz-6.1.0-10-amd64", "Xen ELF notes"]),
        (["--kernel=/boot/true"], ["/boot/true", "Xen ELF notes"]),
        (
            ["--entry=Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-10-amd64"],
            ["Debian GNU/Linux, with Linux 6.1.0-10-amd64", "/boot/vmlinuz-6.1.0-10-amd64", "Xen ELF notes"],
        ),
    ],
)
def test_unbootable_kernels_are_refused_before_libxl(x86_disk, tmp_path, args, names):
    out = tmp_path / "out"
    out.mkdir()
    proc = pvboot("-q", *args, "--output-format=simple0", f"--output-directory={out}", str(x86_disk))
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1
    for name in names:
        assert name in proc.stderr
    assert list(out.iterdir()) == []
    bypass = pvboot("-q", *args, "--no-kernel-check", "--output-format=simple0", f"--output-directory={out}",
                    str(x86_disk))  # fmt: skip
    assert bypass.returncode == 0, bypass.stderr


@needs_wiring
def test_extlinux_fdt_yields_the_device_tree(arm_disk, tmp_path):
    disk, dtb = arm_disk
    proc = pvboot("-q", "--output-format=json", f"--output-directory={tmp_path}", str(disk))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    validate(doc, "boot-answer")
    assert Path(doc["devicetree"]).read_bytes() == dtb.read_bytes()
    assert Path(doc["devicetree"]).name.startswith("boot_devicetree.")
    assert doc["devicetree_source"].endswith(dtb.name)
    assert doc["devicetree_info"]["compatible"]


@needs_wiring
def test_corrupt_device_tree_is_refused(arm_disk, tmp_path):
    disk, _dtb = arm_disk
    proc = pvboot("-q", "--entry=l1", "--output-format=json", f"--output-directory={tmp_path}", str(disk))
    assert proc.returncode != 0
    assert "device tree (hd0,msdos1)/boot/broken.dtb" in proc.stderr
    assert list(tmp_path.iterdir()) == []
