"""`menuentry` and `submenu` (config/grub2/commands/menuentry.py)."""

from __future__ import annotations

from fakectx import FakeContext


def test_menuentry_options_and_source(ctx: FakeContext) -> None:
    script = "menuentry 'It''s' extra --class a --class b --id x --unknown -z { linux /vmlinuz }"
    assert ctx.run(script) == 0
    [entry] = ctx.entries
    assert (entry.title, entry.id, entry.classes) == ("Its", "x", ["a", "b"])
    assert entry.handle == (" linux /vmlinuz ", ["Its", "extra", "--unknown", "-z"])
    assert entry.source.startswith("setparams 'Its' 'extra' '--unknown' '-z'\n")
    assert entry.users == "" and not entry.submenu


def test_users_unrestricted_and_errors(ctx: FakeContext) -> None:
    ctx.run("submenu --unrestricted s { true }\nmenuentry --users=alice t { true }")
    assert [(e.submenu, e.users, e.unrestricted) for e in ctx.entries] == [
        (True, None, True),
        (False, "alice", False),
    ]
    assert ctx.run("menuentry { true }") == 1
    assert ctx.run("menuentry t") == 1
    assert ctx.run("menuentry --id") == 1
    assert ctx.logs[-3:] == [
        "error: missing arguments",
        "error: no menuentry definition",
        "error: missing mandatory option for `id'",
    ]
