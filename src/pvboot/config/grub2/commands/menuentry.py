"""`menuentry` and `submenu` (commands/menuentry.c): an entry of the menu being built.

The entry keeps its body as text, with the arguments after the title as its positional parameters; it
runs only when chosen. `source` is what the console's editor shows: GRUB's `setparams` line, then the
body.
"""

from __future__ import annotations

from pvboot.config.grub2.context import CommandContext, fail
from pvboot.config.grub2.extcmd import Command, Run
from pvboot.config.grub2.options import Option, Parsed
from pvboot.config.grub2.words import quote_word
from pvboot.menu import Entry

OPTIONS = (
    Option("class", takes_value=True, repeatable=True),
    Option("users", takes_value=True),
    Option("hotkey", takes_value=True),
    Option("source", takes_value=True),
    Option("id", takes_value=True),
    Option("unrestricted"),
)


def _entry(submenu: bool) -> Run:
    def run(ctx: CommandContext, opts: Parsed, block: str | None) -> int:
        if not opts.args:
            return fail(ctx, "missing arguments")
        if block is None and not opts.has("source"):
            return fail(ctx, "no menuentry definition")
        title, extra = opts.args[0], opts.args[1:]
        body = block if block is not None else ""
        prefix = "setparams " + " ".join(quote_word(a) for a in opts.args) + "\n"
        unrestricted = None if opts.has("unrestricted") else ""
        users = opts.one("users") if opts.has("users") else unrestricted
        entry = Entry(
            title=title,
            id=opts.one("id") or "",
            classes=opts.all("class"),
            users=users,
            unrestricted=opts.has("unrestricted"),
            hotkey=opts.one("hotkey"),
            submenu=submenu,
            source=prefix + body,
            handle=(body, [title, *extra]),
        )
        ctx.add_entry(entry)
        return 0

    return run


COMMANDS = [
    Command("menuentry", _entry(submenu=False), OPTIONS, accept_dash=True),
    Command("submenu", _entry(submenu=True), OPTIONS, accept_dash=True),
]
