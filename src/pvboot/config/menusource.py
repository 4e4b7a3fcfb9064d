"""A loaded boot menu, whatever wrote it: list it, choose an entry as its boot loader would, run it.

GRUB 2 configs are programs (`grub2.session.Grub2Session`); BLS, extlinux and GRUB legacy menus are
data (`FlatMenu`). Both answer the same three questions, so the rest of pvboot does not care which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pvboot.config.grub2.words import quote_word
from pvboot.errors import GuestDataError, NotFoundError
from pvboot.menu import NOTHING, BootSpec, Choice, Menu, entry_number

if TYPE_CHECKING:
    from pvboot.config.grub2.console import CommandResult
    from pvboot.config.grub2.session import Grub2Session


class MenuSource(Protocol):
    def menu(self) -> Menu: ...

    def choose(self, spec: str | None) -> Choice:
        """The entry `spec` names (GRUB's forms: index, id, title, `a>b`), or the default for None."""
        ...

    def run(self, path: list[int]) -> BootSpec: ...

    def fallbacks(self) -> list[int]: ...

    def boot_default(self) -> tuple[Choice, BootSpec]:
        """What the boot loader boots by itself: the default entry, or a fallback when it fails."""
        ...

    def run_edited(self, path: list[int], source: str) -> BootSpec:
        """What the entry at `path` boots with its commands replaced by `source` (the console editor)."""
        ...

    def command(self, line: str) -> CommandResult:
        """One line at the console's GRUB command line."""
        ...


def grub_commands(spec: BootSpec) -> str:
    """An entry as the GRUB 2 commands that boot it: what the console's editor shows for menus that
    are data (GRUB 2 likewise shows its translation of menu.lst and syslinux entries)."""
    assert spec.kernel is not None
    kernel = quote_word(spec.kernel.display())
    lines = [" ".join(["linux", kernel, *(quote_word(w) for w in spec.args.split())])]
    if spec.initrds:
        lines.append(" ".join(["initrd", *(quote_word(ref.display()) for ref in spec.initrds)]))
    if spec.devicetree is not None:
        lines.append(f"devicetree {quote_word(spec.devicetree.display())}")
    return "\n".join(lines) + "\n"


class FlatMenu:
    """A menu whose entries are data: a single level, BootSpecs known up front."""

    def __init__(self, menu: Menu, scratch: Callable[[], Grub2Session]) -> None:
        self._menu = menu
        self._scratch = scratch  # a GRUB 2 session on the config's volume, for edited entries and `c`
        self._session: Grub2Session | None = None

    def _grub(self) -> Grub2Session:
        if self._session is None:
            self._session = self._scratch()
        return self._session

    def run_edited(self, path: list[int], source: str) -> BootSpec:
        """An edited entry runs as GRUB commands (as GRUB 2 runs translated legacy/syslinux entries)."""
        self.run(path)  # the entry must exist
        return self._grub().run_edited([], source)

    def command(self, line: str) -> CommandResult:
        return self._grub().command(line)

    def menu(self) -> Menu:
        for entry in self._menu.entries:
            if entry.boot is not None and entry.boot.pv_bootable:
                entry.source = grub_commands(entry.boot)
        return self._menu

    def choose(self, spec: str | None) -> Choice:
        entries = self._menu.entries
        if not entries:
            raise GuestDataError(f"{self._menu.source}: the menu has no entries")
        value = self._menu.default if spec is None else spec
        index = entry_number(entries, value)
        origin = "default" if spec is None else "--entry"
        if 0 <= index < len(entries):
            reason = f"{origin}={value!r} names entry {index}"
        elif spec is not None:
            raise NotFoundError(f"--entry={spec}: no such menu entry")
        else:
            reason = f"{origin} {'is not set' if value is None else f'={value!r} names no entry'}: entry 0"
            index = 0
        if self._menu.default_origin and spec is None:
            reason += f" ({self._menu.default_origin})"
        return Choice([index], [entries[index].title], [reason])

    def run(self, path: list[int]) -> BootSpec:
        if len(path) != 1 or not 0 <= path[0] < len(self._menu.entries):
            raise NotFoundError(f"menu entry {'>'.join(map(str, path))}: no such entry")
        return self._menu.entries[path[0]].boot or BootSpec()

    def fallbacks(self) -> list[int]:
        value = self._menu.fallback or ""
        return [int(w) for w in value.split() if w.isdigit()]

    def boot_default(self) -> tuple[Choice, BootSpec]:
        """The default; when it loads nothing, the first fallback entry that boots a PV kernel."""
        choice = self.choose(None)
        spec = self.run(choice.path)
        if spec.kind == NOTHING:
            for index in self.fallbacks():
                candidate = self.run([index])
                if candidate.pv_bootable:
                    reason = f"default entry failed ({spec.why_not_bootable()}): fallback entry {index}"
                    title = self._menu.entries[index].title
                    return Choice([index], [title], [*choice.reasons, reason]), candidate
        return choice, spec
