"""`search` (commands/search.c, search_wrap.c) and `search.file`/`search.fs_uuid`/`search.fs_label`
(commands/search_file.c, search_uuid.c, search_label.c): the first device holding a file, a UUID or a
label, stored in a variable (`root` for `--set` without a name).

GRUB keeps a cache per search kind (key -> the first device found for it), tried first and dropped when
it no longer matches; it lives in the context (`search_cache`) so that every run of an entry starts
from the cache the config left.
"""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext, fail
from pvboot.config.grub2.extcmd import Command, Run
from pvboot.config.grub2.options import Option, Parsed
from pvboot.disk.fsapi import Kind
from pvboot.errors import GuestDataError
from pvboot.menu import FileRef

KINDS = ("file", "fs-uuid", "label")
OPTIONS = (
    Option("file", "f"),
    Option("label", "l"),
    Option("fs-uuid", "u"),
    Option("set", "s", takes_value=True, optional=True),
    Option("no-floppy", "n"),
    Option("hint", "h", takes_value=True, repeatable=True),
    *(
        Option(f"hint{s}", takes_value=True, repeatable=True)
        for s in ("-ieee1275", "-bios", "-baremetal", "-efi", "-arc")
    ),
)


def new_cache() -> dict[str, dict[str, str]]:
    """An empty search cache, one table per kind."""
    return {kind: {} for kind in KINDS}


def search(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    var = (opts.one("set") or "root") if opts.has("set") else None
    rest = list(opts.args)
    while rest and rest[0].startswith("--hint-"):  # hints for other platforms (search_wrap.c)
        rest.pop(0)
    if rest:
        key = rest[0]
    elif opts.one("set"):
        key, var = str(opts.one("set")), "root"
    else:
        return fail(ctx, "one argument expected")
    how = next((kind for kind in ("label", "fs-uuid", "file") if opts.has(kind)), None)
    if how is None:
        return fail(ctx, "unspecified search type")
    hints = opts.all("hint") + opts.all("hint-bios") + opts.all("hint-baremetal")
    return _search(ctx, how, key, var, hints)


def _short(how: str) -> Run:
    def run(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
        args = opts.args
        if not args:
            return fail(ctx, "one argument expected")
        return _search(ctx, how, args[0], args[1] if len(args) > 1 else None, args[2:])

    return run


def search_order(ctx: CommandContext, hints: list[str]) -> list[str]:
    """The devices commands/search.c tries, in order: each hint (one trailing comma stripped; with
    the comma, the hint disk's partitions follow, first to last), then grub_device_iterate
    (kern/device.c): a disk, then its partitions from last to first (they are collected by
    prepending to a list). Logical volumes come after the disks (not checked against GRUB)."""
    view = ctx.view
    names = view.volume_names()
    order: list[str] = []
    for hint in hints:
        name = hint[:-1] if hint.endswith(",") else hint
        volume = view.find_volume(name)
        if volume is not None:
            order.append(volume.name)
        if hint.endswith(","):
            order += [n for n in names if n.startswith(name.strip("()") + ",")]
    disks = [n for n in names if n.startswith("hd")]  # the guest disk: hd0 or its partitions
    order += [n for n in disks if "," not in n] + [n for n in reversed(disks) if "," in n]
    order += [n for n in names if not n.startswith("hd")]
    return order


def _search(ctx: CommandContext, how: str, key: str, var: str | None, hints: list[str]) -> int:
    cache = ctx.search_cache[how]
    ckey = key.lower() if how == "fs-uuid" else key  # fs-uuid keys compare case-insensitively
    cached = cache.get(ckey)
    order = search_order(ctx, hints)
    if cached is not None:  # tried first; dropped when it no longer matches
        if _matches(ctx, how, key, cached):
            order.insert(0, cached)
        else:
            del cache[ckey]
    for name in order:
        if _matches(ctx, how, key, name):
            ctx.log(f"search --{how} {key}: found ({name})")
            cache.setdefault(ckey, name)
            if var:
                ctx.set(var, name)
            return 0
    return fail(ctx, f"no such device: {key}")


def _matches(ctx: CommandContext, how: str, key: str, name: str) -> bool:
    view = ctx.view
    try:
        if how == "file":  # grub_file_open of `(name)key`: a regular file
            return key.startswith("/") and view.kind(FileRef(name, key)) is Kind.FILE
        if how == "fs-uuid":
            uuid = view.fs_uuid(name)
            return uuid is not None and uuid.lower() == key.lower()
        return view.fs_label(name) == key
    except GuestDataError:
        return False


COMMANDS = [
    Command("search", search, OPTIONS, accept_dash=True),
    Command("search.file", _short("file")),
    Command("search.fs_uuid", _short("fs-uuid")),
    Command("search.fs_label", _short("label")),
]
