"""`load_env` and `save_env` (config/grub2/commands/loadenv.py)."""

from __future__ import annotations

from fakectx import FakeContext

BLOCK = "# GRUB Environment Block\nsaved_entry=2\nnext_entry=\n" + "#" * 40


def test_load_env_from_prefix_and_from_file(ctx: FakeContext) -> None:
    ctx.view.files["hd0,msdos1"]["/grubenv"] = BLOCK
    assert ctx.run("load_env") == 1 and ctx.logs[-1] == "error: variable `prefix' isn't set"
    ctx.variables["prefix"] = "(hd0,msdos1)"
    assert ctx.run("load_env saved_entry") == 0
    assert ctx.variables.get("saved_entry") == "2" and "next_entry" not in ctx.variables
    assert ctx.run("load_env -f /grubenv") == 0 and ctx.variables["next_entry"] == ""


def test_invalid_block_and_save_env(ctx: FakeContext) -> None:
    assert ctx.run("load_env --file=/initrd.img") == 1 and ctx.logs[-1] == "error: invalid environment block"
    assert ctx.run("save_env saved_entry") == 0 and "not written" in ctx.logs[-1]
