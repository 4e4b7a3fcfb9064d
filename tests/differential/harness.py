"""Disk images for differential cases, and the comparison of pvboot's answer with real GRUB's.

Every partition of a case's disk holds marker files at a fixed set of kernel/initrd names (`STANDARD`,
plus the symbolic links of `SYMLINKS` on ext4), each naming its own partition and path, so whichever
file GRUB or pvboot picks is identified by its marker line (GRUB's `cat`, pvboot's copy; kernels are
stub Xen ELF images around the marker, since pvboot checks kernels). Names outside that set do not
exist: configs use them to make a loader command fail.

pvboot runs as libxl runs it (tests/pvrun.py boot, kernel check on); GRUB's answer comes from
grub_emu.GrubEmu. `compare` is the one assertion every differential test makes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from diskbuild import Part, make_disk, put
from pvrun import Result, boot

from .grub_emu import GrubAnswer, GrubEmu, identities, identity

UUIDS = (
    "5a1e0b2c-0000-4000-8000-00000000d0d1",
    "5a1e0b2c-0000-4000-8000-00000000d0d2",
    "5a1e0b2c-0000-4000-8000-00000000d0d3",
)
LABELS = ("PVB-ONE", "PVB-TWO", "PVB-THREE")
# Every partition holds these (as markers); with a separate /boot the names without /boot matter.
STANDARD = [f"{d}/{k}-{n}" for d in ("/boot", "") for k in ("vmlinuz", "initrd") for n in (1, 2, 3)]
STANDARD += ["/boot/xen.gz", "/xen.gz", "/boot/sub dir/vmlinuz-4", "/boot/vmlinuz-1.old"]
# Symbolic links as Debian keeps them (ext4 only; vfat has none): relative, absolute, dangling.
SYMLINKS = {
    "/vmlinuz": "boot/vmlinuz-2",
    "/boot/vmlinuz": "vmlinuz-3",
    "/initrd.img": "/boot/initrd-2",
    "/boot/initrd.img": "../initrd-1",
    "/boot/vmlinuz-dangling": "vmlinuz-9",
}


def marker(part: int, path: str) -> bytes:
    """The identity of the file at `path` on partition `part` (1-based; 0 = an unpartitioned disk)."""
    return f"PVBOOT-DIFF p{part}:{path}\n".encode()


def contents(part: int, path: str) -> bytes:
    """The file itself: Linux kernel names get a stub Xen ELF around the marker (pvboot checks
    kernels), other files are the bare marker."""
    from pvboot.kernel.stub import stub_kernel

    text = marker(part, path)
    return stub_kernel(text) if "vmlinuz" in path else text


@dataclass
class Layout:
    """A disk: its label ("dos", "gpt", or "none" for a bare filesystem) and its partitions' identities."""

    label: str = "dos"
    parts: int = 1
    grub_part: int = 1  # which partition holds grub.cfg
    grub_dir: str = "/boot/grub"
    fat: tuple[int, ...] = ()  # partitions made vfat instead of ext4

    def uuid(self, part: int) -> str:
        if part in self.fat:
            return f"1234-ABC{part}"
        return UUIDS[part - 1]


LAYOUTS = {
    "mbr1": Layout(),
    "mbr2": Layout(parts=2, grub_dir="/grub"),  # separate /boot on (hd0,msdos1), root on msdos2
    "gpt2": Layout(label="gpt", parts=2, grub_dir="/grub"),
    "gpt3": Layout(label="gpt", parts=3, grub_part=2),
    "mbr3": Layout(parts=3),
    "bare": Layout(label="none"),
    "mbr-fat": Layout(parts=2, fat=(1,), grub_dir="/grub"),
}


@dataclass
class Case:
    """A named differential case: a grub.cfg, the disk it sits on, and extra files (grubenv, sourced
    configs). `extra` keys are (partition, path)."""

    name: str
    config: str
    layout: str = "mbr1"
    env: dict[str, str] | None = None  # grubenv beside grub.cfg
    extra: dict[tuple[int, str], str] = field(default_factory=dict)
    why: str = ""  # what the case exercises (and, for regressions, the bug it pinned down)

    def __str__(self) -> str:
        return self.name


def envblk(values: dict[str, str]) -> bytes:
    """A 1024-byte GRUB environment block (lib/envblk.c format)."""
    body = "# GRUB Environment Block\n"
    for name, value in values.items():
        escaped = value.replace("\\", "\\\\").replace("\n", "\\\n")
        body += f"{name}={escaped}\n"
    data = body.encode()
    assert len(data) <= 1024
    return data + b"#" * (1024 - len(data))


def build(case: Case, work: Path) -> Path:
    """The case's disk image, built from trees with mkfs (no mounts)."""
    layout = LAYOUTS[case.layout]
    work.mkdir(parents=True, exist_ok=True)
    parts = []
    count = 1 if layout.label == "none" else layout.parts
    for index in range(1, count + 1):
        tree = work / f"tree{index}"
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir()
        tag = 0 if layout.label == "none" else index
        for path in STANDARD:
            put(tree, path, contents(tag, path))
        if index not in layout.fat:
            for link, target in SYMLINKS.items():
                (tree / link.lstrip("/")).symlink_to(target)
        if index == layout.grub_part:
            put(tree, f"{layout.grub_dir}/grub.cfg", case.config.encode())
            if case.env is not None:
                put(tree, f"{layout.grub_dir}/grubenv", envblk(case.env))
        for (part, path), text in case.extra.items():
            if part == index:
                put(tree, path, text.encode())
        fs = "vfat" if index in layout.fat else "ext4"
        parts.append(Part(tree, fs=fs, uuid=layout.uuid(index), label=LABELS[index - 1]))
    image = work / "disk.img"
    image.unlink(missing_ok=True)
    return make_disk(image, parts, layout.label)


def describe(result: Result) -> str:
    if result.code != 0:
        return f"pvboot fails: {result.stderr.strip()}"
    kernel, initrds = identity(result.kernel or b""), identities(result.ramdisk or b"")
    return f"pvboot boots {kernel!r} initrds={initrds!r} args={result.answer.get('args', '')!r}"


def compare(emu: GrubEmu, image: Path, work: Path, config: str = "") -> GrubAnswer:
    """Assert that pvboot boots what GRUB boots (or fails where GRUB boots no Linux kernel)."""
    result = boot(image, work / "pvboot")
    grub = emu.run(image)
    context = f"\n--- grub.cfg ---\n{config}\n--- GRUB: {grub.summary()}\n--- {describe(result)}"
    assert grub.outcome not in ("timeout", "crash"), (
        f"grub-emu gave no answer ({grub.outcome}){context}\n--- log ---\n{grub.log[-4000:]}"
    )
    if grub.outcome == "linux":
        assert result.code == 0, f"GRUB boots a kernel, pvboot does not{context}"
        assert identity(result.kernel or b"") == grub.kernel, f"kernel differs{context}"
        assert identities(result.ramdisk or b"") == grub.initrds, f"initrds differ{context}"
        args = result.answer.get("args", "")
        assert args.split() == grub.args.split(), f"command line differs{context}"
        assert args == grub.args, f"command line differs in spacing{context}"
        assert result.leftover == []
    else:
        assert result.code != 0, f"GRUB boots no Linux kernel ({grub.outcome}), pvboot does{context}"
        assert result.answer == {} and result.leftover == []
        if grub.outcome == "multiboot":
            assert "multiboot" in result.stderr, context
    return grub
