"""Remembered kernel verdicts (kernel/verdicts.py, kernel/judge.py): a bzImage found bootable is not decoded
again on the next boot of the same bytes; nothing negative, nothing unverified and nothing outside the
cache file is ever kept or read. The file is shared by every guest, so no reader sees any of it, and
what is stored for some bytes is the verdict of a judge that read only those bytes (the parent's copy),
never what a reader said: a subverted reader (tests/subvert.py) can neither read an entry nor plant or
change one."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from kernel_samples import ElfSpec, bzimage_of, make_elf, newc

import pvrun
import subvert
from pvboot.kernel.verdicts import FILE_NAME, MAX_ENTRIES, VerdictCache

SRC = Path(__file__).resolve().parents[2] / "src"
GRUB_CFG = b"""set default=0
set timeout=0
menuentry 'Xen-capable' {
\tlinux /boot/vmlinuz-xen root=/dev/xvda1 ro
\tinitrd /boot/initrd.img
}
menuentry 'No Xen notes' {
\tlinux /boot/vmlinuz-plain root=/dev/xvda1 ro
}
"""
XEN_KERNEL = bzimage_of(make_elf(ElfSpec(pad=1 << 20)), "xz")
PLAIN_KERNEL = bzimage_of(make_elf(ElfSpec(notes=[])), "xz")
GOOD = {"format": "bzImage", "pv": True, "pvh": True, "bootable": True, "problems": [], "remembered": False}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (shutil.which("mkfs.ext4") and shutil.which("sfdisk")):
        pytest.skip("building images needs mkfs.ext4, sfdisk")
    from diskbuild import Part, make_disk, put

    work = tmp_path_factory.mktemp("verdicts")
    tree = work / "tree"
    put(tree, "/boot/grub/grub.cfg", GRUB_CFG)
    put(tree, "/boot/vmlinuz-xen", XEN_KERNEL)
    put(tree, "/boot/vmlinuz-plain", PLAIN_KERNEL)
    put(tree, "/boot/initrd.img", newc({"init": b"#!/bin/sh\n"}))
    return make_disk(work / "disk.img", [Part(tree)], "dos")


def boot_args(out: Path, *extra: str) -> list[str]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    return ["-q", "--output-format=json", f"--output-directory={out}", *extra]


def boot(disk: Path, cache: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = pvrun.command(*boot_args(out, *extra), str(disk))
    env = pvrun.environment({"PVBOOT_CACHE_DIR": cache})
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_a_bootable_bzimage_is_decoded_once(disk: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = boot(disk, str(cache), tmp_path / "out")
    assert first.returncode == 0, first.stderr
    info = json.loads(first.stdout)["kernel_info"]
    assert (info["format"], info["compression"], info["bootable"], info["remembered"]) == (
        "bzImage", "xz", True, False
    )  # fmt: skip
    stored = json.loads((cache / FILE_NAME).read_text())
    assert list(stored) == [digest(XEN_KERNEL)]  # keyed by the bytes' SHA-256, computed here
    assert oct((cache / FILE_NAME).stat().st_mode & 0o777) == "0o644"

    second = boot(disk, str(cache), tmp_path / "out", "--debug")
    assert second.returncode == 0, second.stderr
    doc = json.loads(second.stdout)
    assert doc["kernel_info"]["remembered"] is True
    assert "remembered from an earlier boot of the same bytes" in second.stderr
    assert {k: v for k, v in doc["kernel_info"].items() if k != "remembered"} == {
        k: v for k, v in info.items() if k != "remembered"
    }
    assert Path(doc["kernel"]).read_bytes() == XEN_KERNEL


def test_a_refused_kernel_is_never_remembered(disk: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for _ in range(2):
        proc = boot(disk, str(cache), tmp_path / "out", "--entry=1")
        assert proc.returncode != 0
        assert "without Xen ELF notes" in proc.stderr
    assert not (cache / FILE_NAME).exists()


def test_a_negative_verdict_planted_in_the_file_is_ignored(disk: Path, tmp_path: Path) -> None:
    """Only positive verdicts are read back: a planted refusal cannot stop a good kernel's boot."""
    cache = tmp_path / "cache"
    cache.mkdir()
    planted = {**GOOD, "bootable": False, "pv": False, "pvh": False, "problems": ["planted"]}
    (cache / FILE_NAME).write_text(json.dumps({digest(XEN_KERNEL): planted}))
    proc = boot(disk, str(cache), tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kernel_info"]["remembered"] is False


def test_off_and_broken_caches_change_nothing(disk: Path, tmp_path: Path) -> None:
    for cache in ("none", ""):
        proc = boot(disk, cache, tmp_path / "out")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["kernel_info"]["remembered"] is False
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / FILE_NAME).write_bytes(b"\x00{not json")
    proc = boot(disk, str(broken), tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kernel_info"]["remembered"] is False
    readonly = tmp_path / "file-not-dir"
    readonly.write_text("")
    proc = boot(disk, str(readonly), tmp_path / "out")  # cannot be created: the boot goes on
    assert proc.returncode == 0, proc.stderr


PLANTED = "6.6.6-planted"


def lying_reply(deferred: bool) -> dict[str, object]:
    """A subverted reader's boot reply: its kernel bytes written, and a verdict of its own making."""
    info = {**GOOD, "version": PLANTED, "pv": True, "pvh": True, "compression": "none"}
    return {
        "type": "extracted", "kernel_source": "/boot/vmlinuz-xen", "ramdisk_sources": [], "args": "ro",
        "title": "Xen-capable", "path": [0], "reasons": [], "warnings": [],
        "kernel_size": len(XEN_KERNEL), "kernel_info": info, "kernel_deferred": deferred,
    }  # fmt: skip


def lie(disk: Path, cache: Path, out: Path, kernel: Path, deferred: bool) -> subprocess.CompletedProcess[str]:
    attack = {"reply": lying_reply(deferred), "kernel": str(kernel)}
    _, proc = subvert.run(attack, *boot_args(out), str(disk), env={"PVBOOT_CACHE_DIR": str(cache)})
    return proc


def test_a_lying_reader_can_neither_plant_nor_change_a_verdict(disk: Path, tmp_path: Path) -> None:
    """It writes another guest's kernel (XEN_KERNEL) into its copy and claims a verdict on it: believed
    for its own answer when it does not defer (it could as well lie there), never stored; deferred,
    the parent judges the copy itself and stores that. An honest boot afterwards sees the judge's."""
    cache, out, kernel = tmp_path / "cache", tmp_path / "out", tmp_path / "kernel"
    kernel.write_bytes(XEN_KERNEL)
    proc = lie(disk, cache, out, kernel, deferred=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kernel_info"]["version"] == PLANTED
    assert not (cache / FILE_NAME).exists()

    proc = lie(disk, cache, out, kernel, deferred=True)
    assert proc.returncode == 0, proc.stderr
    judged = json.loads(proc.stdout)["kernel_info"]
    assert judged["version"] != PLANTED and judged["remembered"] is False
    stored = json.loads((cache / FILE_NAME).read_text())
    assert list(stored) == [digest(XEN_KERNEL)] and stored[digest(XEN_KERNEL)]["version"] == judged["version"]

    honest = boot(disk, str(cache), out)
    assert honest.returncode == 0, honest.stderr
    info = json.loads(honest.stdout)["kernel_info"]
    assert info["remembered"] is True and info["version"] == judged["version"]
    for deferred in (False, True):  # an entry that exists is never changed either
        assert lie(disk, cache, out, kernel, deferred).returncode == 0
        assert json.loads((cache / FILE_NAME).read_text()) == stored


def test_a_lying_reader_cannot_pass_off_a_kernel_that_cannot_boot(disk: Path, tmp_path: Path) -> None:
    cache, out, kernel = tmp_path / "cache", tmp_path / "out", tmp_path / "kernel"
    kernel.write_bytes(PLAIN_KERNEL.ljust(len(XEN_KERNEL), b"\0"))
    proc = lie(disk, cache, out, kernel, deferred=True)
    assert proc.returncode != 0
    assert "menu entry 'Xen-capable': kernel /boot/vmlinuz-xen cannot boot as a Xen guest" in proc.stderr
    assert not (cache / FILE_NAME).exists() and not list(out.iterdir())


@pytest.mark.parametrize("where", ["reader", "judge"])
def test_no_reader_and_no_judge_sees_the_verdicts(disk: Path, tmp_path: Path, where: str) -> None:
    """The file holds another guest's verdict (its kernel's version): neither the reader nor the judge
    (forked before the file is read) finds it in its memory, nor can open the file."""
    cache, out = tmp_path / "cache", tmp_path / "out"
    cache.mkdir()
    marker = "their-kernel-6.1.0-" + os.urandom(8).hex()
    (cache / FILE_NAME).write_text(json.dumps({digest(b"their kernel"): {**GOOD, "version": marker}}))
    attack = {"in": where, "scan": marker[::-1], "open": [str(cache / FILE_NAME)], "listdir": [str(cache)]}
    found, proc = subvert.run(attack, *boot_args(out), str(disk), env={"PVBOOT_CACHE_DIR": str(cache)})
    assert found == {"scan": "absent", str(cache / FILE_NAME): "EACCES", f"listdir {cache}": "EACCES"}, (
        found, proc.stderr
    )  # fmt: skip


def test_the_file_is_bounded_and_symlinks_are_not_followed(tmp_path: Path) -> None:
    cache = VerdictCache(str(tmp_path))
    for i in range(MAX_ENTRIES + 10):
        cache.remember(digest(str(i).encode()), dict(GOOD))
    kept = json.loads((tmp_path / FILE_NAME).read_text())
    assert len(kept) == MAX_ENTRIES
    assert digest(b"0") not in kept and digest(str(MAX_ENTRIES + 9).encode()) in kept  # oldest go first
    assert VerdictCache.load(str(tmp_path)).entries == kept

    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("precious")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / FILE_NAME).symlink_to(elsewhere)
    assert VerdictCache.load(str(linked)).entries == {}  # not read through the link
    VerdictCache(str(linked)).remember(digest(b"x"), dict(GOOD))
    assert elsewhere.read_text() == "precious"  # replaced the link, did not write through it
    assert not (linked / FILE_NAME).is_symlink()
