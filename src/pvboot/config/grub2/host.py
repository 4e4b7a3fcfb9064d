"""What the GRUB 2 interpreter needs from its host: files, `test`'s file operators, wildcards, a log.

pvboot's host is `GuestHost`, over the session's view of the guest's volumes; the script tests give
the interpreter files in a dict. Kept apart from interp.py so that the word expander can name the
protocol without importing the interpreter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pvboot.errors import GuestDataError

if TYPE_CHECKING:
    from pvboot.config.grub2.context import CommandContext


class ScriptHost(Protocol):
    def read_file(self, path: str) -> str:
        """Text of a file for `source`; raise pvboot.errors.NotFoundError if absent."""
        ...

    def file_test(self, op: str, path: str) -> bool:
        """`test` file operators: op is "-f", "-d", "-e" or "-s"; path as written in the script."""
        ...

    def glob(self, pattern: str) -> list[str]:
        """Wildcard expansion, sorted; [] if nothing matches (the word is then kept).

        `pattern` is in GRUB's escaped form: an unescaped '*' or '?' is a wildcard (only these two,
        as in GRUB's commands/wildcard.c), a backslash makes the next character literal. It starts with
        '/', '(' or '*' (a '*' or '(' first means device names are matched, as GRUB does)."""
        ...

    def log(self, message: str) -> None:
        """The decision trace: GRUB's error lines and echo output when no console is set."""
        ...


class GuestHost:
    """The interpreter's window onto the guest: files resolve against `$root` as GRUB's do."""

    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx

    def read_file(self, path: str) -> str:
        return self.ctx.read_text(path)

    def file_test(self, op: str, path: str) -> bool:
        """commands/test.c. `-s` opens the file (grub_file_open) and wants a non-zero size. `-e`, `-d`,
        `-f` look the last name up in its directory's listing (get_fileinfo): trailing slashes are
        dropped, a name without `/` is looked up in `/`, the directory part is resolved (symlinks
        followed) but the name is not: a symlink is a file for `-f`, never a directory, and need not
        point anywhere. A bare device is its root directory."""
        from pvboot.disk.fsapi import Kind

        ctx, view = self.ctx, self.ctx.view
        if op == "-s":
            try:
                ref = ctx.open_ref(path)
                return view.kind(ref) is Kind.FILE and view.size(ref) > 0
            except GuestDataError:
                return False
        ref = ctx.resolve(path)
        volume = view.find_volume(ref.volume) if ref.volume is not None else None
        if volume is None or not volume.has_filesystem():
            return False
        name = ref.path.rstrip("/")
        if not name:
            return op in ("-e", "-d")
        slash = name.rfind("/")
        directory, base = ("/", name) if slash < 0 else (name[: slash + 1], name[slash + 1 :])
        if not directory.startswith("/"):
            return False
        try:
            tree = volume.tree()
            if tree.lookup(directory).kind is not Kind.DIR:
                return False
            is_dir = tree.lookup(directory + base, follow=False).kind is Kind.DIR
        except GuestDataError:
            return False
        return {"-e": True, "-d": is_dir, "-f": not is_dir}.get(op, False)

    def glob(self, pattern: str) -> list[str]:
        ref = self.ctx.resolve(pattern)
        found = self.ctx.view.glob(ref)
        if pattern.startswith("("):
            return [f"({ref.volume}){p}" for p in found]
        return found

    def log(self, message: str) -> None:
        self.ctx.log(message)
