"""`search` and its short forms (config/grub2/commands/search.py)."""

from __future__ import annotations

from fakectx import FakeContext


def test_search_kinds_and_set(ctx: FakeContext) -> None:
    assert ctx.run("search --no-floppy --fs-uuid --set=found ab-cd") == 0
    assert ctx.variables["found"] == "hd0,msdos2"
    assert ctx.run("search -f -s /stamp") == 0 and ctx.variables["root"] == "hd0,msdos2"
    assert ctx.run("search.fs_label boot where") == 0 and ctx.variables["where"] == "hd0,msdos1"
    assert ctx.search_cache["fs-uuid"] == {"ab-cd": "hd0,msdos2"}


def test_search_failures(ctx: FakeContext) -> None:
    assert ctx.run("search --label nothing") == 1
    assert ctx.run("search /stamp") == 1
    assert ctx.run("search --file") == 1
    assert ctx.logs[-3:] == [
        "error: no such device: nothing",
        "error: unspecified search type",
        "error: one argument expected",
    ]


def test_hints_come_first_and_other_platforms_hints_are_skipped(ctx: FakeContext) -> None:
    ctx.run("search --file --set=r --hint-efi=x --hint hd0,msdos2 /stamp")
    assert ctx.variables["r"] == "hd0,msdos2"
