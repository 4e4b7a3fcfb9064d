"""The Linux loaders (config/grub2/commands/linux.py): what `linux`/`initrd` record in the loader slot."""

from __future__ import annotations

from fakectx import FakeContext

from pvboot.menu import LINUX, NOTHING, BootSpec, FileRef


def test_linux_records_kernel_and_quoted_cmdline(ctx: FakeContext) -> None:
    ctx.recorder = spec = BootSpec()
    assert ctx.run("linux /vmlinuz root=/dev/xvda1 'a b' -h\ninitrd /initrd.img") == 0
    assert spec.kind == LINUX and spec.loader == "linux"
    assert spec.kernel == FileRef("hd0,msdos1", "/vmlinuz")
    assert spec.args == 'root=/dev/xvda1 "a b" -h'  # no option parsing: -h reaches the kernel
    assert spec.initrds == [FileRef("hd0,msdos1", "/initrd.img")]


def test_initrd_needs_its_own_module_and_a_failed_linux_keeps_the_slot(ctx: FakeContext) -> None:
    ctx.recorder = spec = BootSpec()
    assert ctx.run("initrd /initrd.img") == 1
    assert ctx.run("linux16 /vmlinuz\ninitrd /initrd.img") == 1  # linux16 loaded; `initrd` is linux's
    assert spec.errors[-1] == "you need to load the kernel first"
    assert ctx.run("linux /missing") == 1
    assert spec.kind == LINUX and spec.loader == "linux16"  # the kernel loaded before still boots
    assert ctx.run("initrd16 /initrd.img") == 0


def test_loaders_record_nothing_outside_entries(ctx: FakeContext) -> None:
    assert ctx.run("linux /vmlinuz") == 0 and ctx.recorder is None


def test_multiboot_empties_the_slot_even_when_it_fails(ctx: FakeContext) -> None:
    ctx.recorder = spec = BootSpec()
    ctx.run("linux /vmlinuz")
    assert ctx.run("multiboot /missing") == 1
    assert spec.kind == NOTHING and "linux" not in spec.loaded_modules
    assert ctx.run("module /initrd.img") == 1
