"""One grub.cfg run as GRUB runs it: the config at the top level, then submenus and entries on demand.

GRUB executes the whole config first (building the menu), then resolves `default` against the menu;
choosing a submenu opens a new environment context and runs the submenu's body, with `default` set to
the rest of a `a>b` path; choosing an entry runs its body with the variables of that moment, `chosen`
set to the entry's id path and `default` to the rest of the path (normal/menu.c
grub_menu_execute_entry). Entries are run from a snapshot of the interpreter, so listing the whole menu
has no side effects. `boot_default` is GRUB's autoboot (grub_menu_execute_with_fallback): the default,
then the `fallback` entries, all in one run, so what a failed entry set is seen by the next one; a
submenu autoboots its own default with its own `fallback`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from pvboot.config.grub2.auth import AuthConfig
from pvboot.config.grub2.commands import install as install_commands
from pvboot.config.grub2.commands.search import new_cache
from pvboot.config.grub2.console import CommandResult, ConsoleState
from pvboot.config.grub2.host import GuestHost
from pvboot.config.grub2.interp import Interpreter, ScriptLimits
from pvboot.config.grub2.loader import BootNow
from pvboot.config.grub2.numbers import strtoull, to_int
from pvboot.config.guestview import GuestView
from pvboot.errors import GuestDataError, LimitError, NotFoundError
from pvboot.limits import GRUB_MAX_CONSOLE_OUTPUT, GRUB_MAX_MENU_ENTRIES, Limits
from pvboot.menu import NOTHING, BootSpec, Choice, Entry, FileRef, Menu, entry_number, path_rest

if TYPE_CHECKING:
    from pvboot.config.bls import BlscfgState
    from pvboot.config.source import ConfigFiles

# Variables GRUB's normal mode sets before it reads grub.cfg (normal/main.c features, kern/main.c).
FEATURES = [
    "feature_chainloader_bpb",
    "feature_ntldr",
    "feature_platform_search_hint",
    "feature_default_font_path",
    "feature_all_video_module",
    "feature_menuentry_id",
    "feature_menuentry_options",
    "feature_200_final",
    "feature_nativedisk_cmd",
    "feature_timeout_style",
]


class NestedMenu(BaseException):
    """`configfile` produced a menu: GRUB shows it at once, so the outer config stops there."""


class Grub2Session:
    """A grub.cfg on the guest, run by the interpreter against the guest's volumes; the commands'
    `CommandContext` (context.py)."""

    def __init__(
        self, view: GuestView, volume: str, path: str, limits: Limits, log: Callable[[str], None]
    ) -> None:
        self.view = view
        self.volume = volume
        self.path = path
        self.limits = limits
        self._log = log
        self.interp = Interpreter(GuestHost(self), ScriptLimits())
        self.recorder: BootSpec | None = None
        self.menus: list[list[Entry]] = [[]]
        self.auth = AuthConfig()
        self.search_cache = new_cache()
        self._saved_search_cache: dict[str, dict[str, str]] = {}
        install_commands(self.interp.register, self)
        self._snapshot: object | None = None
        self.bls_state: BlscfgState | None = None
        self.default_origin = ""
        self._console: ConsoleState | None = None
        self.top: list[Entry] = []

    def log(self, message: str) -> None:
        where = f"{self.interp.current_file}:{self.interp.current_line}" if self.interp.current_file else ""
        self._log(f"{where}: {message}" if where else message)

    # -- variables and output, for the commands
    def get(self, name: str) -> str | None:
        return self.interp.get(name)

    def set(self, name: str, value: str) -> None:
        self.interp.set(name, value)

    def write(self, text: str) -> None:
        self.interp.write(text)

    # -- files, with GRUB's path rules
    def resolve(self, path: str) -> FileRef:
        return self.view.split(path, self.interp.get("root"))

    def open_ref(self, path: str) -> FileRef:
        """A file as grub_file_open names it: `(dev)/path`, or `/path` on $root; the path must start
        with `/` (fs/fshelp.c: "invalid file name")."""
        ref = self.resolve(path)
        if not ref.path.startswith("/"):
            raise NotFoundError(f"invalid file name `{ref.path}'")
        return ref

    def read_text(self, path: str) -> str:
        return self.view.read_text(self.open_ref(path), self.limits.max_config_size)

    def config_files(self, volume: str) -> ConfigFiles:
        from pvboot.config.guestview import VolumeFiles

        return VolumeFiles(self.view, volume, self.limits)

    # -- running the config
    def load(self) -> None:
        """Run grub.cfg at the top level, as GRUB's normal mode does; keeps the resulting state."""
        directory = self.path.rsplit("/", 1)[0] or "/"
        self.interp.add_write_hook("root", _write_root)
        self.interp.set("root", self.volume)
        self.interp.set("prefix", f"({self.volume}){directory}")
        self.interp.set("cmdpath", f"({self.volume})")
        for name, value in (("grub_cpu", "i386"), ("grub_platform", "pc"), ("pager", "")):
            self.interp.set(name, value)
        for name in FEATURES:
            self.interp.set(name, "y")
            self.interp.export(name)
        for name in ("root", "prefix", "grub_cpu", "grub_platform"):
            self.interp.export(name)
        self.interp.on_set = self._note_set
        if self.path:
            # Read first, so an absent or unreadable config is an error here (execute_file ignores it).
            self.view.read_text(FileRef(self.volume, self.path), self.limits.max_config_size)
            with contextlib.suppress(NestedMenu):
                self.interp.execute_file(f"({self.volume}){self.path}")
        self.interp.on_set = None
        self.top = self.menus[-1]
        self._snapshot = self.interp.snapshot()
        self._saved_search_cache = {k: dict(v) for k, v in self.search_cache.items()}

    def add_entry(self, entry: Entry) -> None:
        menu = self.menus[-1]
        if len(menu) >= GRUB_MAX_MENU_ENTRIES:
            raise LimitError(f"grub.cfg: more than {GRUB_MAX_MENU_ENTRIES} menu entries")
        menu.append(entry)

    def _note_set(self, name: str, value: str) -> None:
        if name == "default":
            self.default_origin = f"{self.interp.current_file}:{self.interp.current_line}: default={value!r}"
            self._log(f"{self.default_origin}")

    def configfile(self, path: str) -> None:
        """GRUB's configfile: a new context and a new menu; if it has entries, that menu is shown now."""
        self.read_text(path)  # absent or unreadable: the command fails
        self.interp.context_open()
        self.menus.append([])
        self.interp.execute_file(path)
        if self.menus[-1]:
            self.menus[0] = self.menus.pop()
            raise NestedMenu()
        self.menus.pop()
        self.interp.context_close()

    def blscfg(self, args: list[str]) -> None:
        from pvboot.config.grub2.commands.blscfg import run_blscfg

        run_blscfg(self, args)

    # -- menus and entries
    def _entry_variables(self, entry: Entry, chosen: str | None, default: str | None) -> None:
        """What grub_menu_execute_entry sets before an entry's body runs: `chosen` (exported), the
        entry's id appended to the outer `chosen` with `>` doubled; `default`, the rest of an `a>b`."""
        ident = (entry.id or entry.title).replace(">", ">>")
        self.interp.set("chosen", ident if chosen is None else f"{chosen}>{ident}")
        self.interp.export("chosen")
        rest = path_rest(default)
        if rest is not None:
            self.interp.set("default", rest)
        else:
            self.interp.unset("default")

    def _enter_submenu(self, entry: Entry) -> list[Entry]:
        chosen, default = self.interp.get("chosen"), self.interp.get("default")
        self.interp.context_open()
        self._entry_variables(entry, chosen, default)
        self.menus.append([])
        body, args = entry.handle
        self.interp.run_new_scope(body, args)
        return self.menus.pop()

    def _run_entry(self, entry: Entry) -> BootSpec:
        self._entry_variables(entry, self.interp.get("chosen"), self.interp.get("default"))
        spec = BootSpec()
        self.recorder = spec
        body, args = entry.handle
        try:
            self.interp.run_new_scope(body, args)
        except BootNow:
            pass
        finally:
            self.recorder = None
        return spec

    def _restore(self) -> None:
        assert self._snapshot is not None
        self.interp.restore(self._snapshot)
        self.search_cache = {k: dict(v) for k, v in self._saved_search_cache.items()}
        self.menus = [self.top]
        self.recorder = None

    def walk(self, path: list[int]) -> tuple[list[Entry], BootSpec | None]:
        """The entries along `path` and, when it ends at an entry, what that entry loads."""
        self._restore()
        try:
            entries, chain = self.top, []
            for index in path:
                if not 0 <= index < len(entries):
                    raise NotFoundError(f"menu entry {'>'.join(map(str, path))}: no such entry")
                entry = entries[index]
                chain.append(entry)
                if entry.submenu:
                    entries = self._enter_submenu(entry)
                else:
                    return chain, self._run_entry(entry)
            return chain, None
        finally:
            self._restore()

    def children(self, path: list[int]) -> list[Entry]:
        """The entries of the submenu at `path`, as GRUB builds them when it is entered."""
        self._restore()
        try:
            entries = self.top
            for index in path:
                entries = self._enter_submenu(entries[index])
            return entries
        finally:
            self._restore()

    def choose(self, spec: str | None) -> Choice:
        """GRUB's choice: `default` (or `spec`, from --entry) resolved per level by id, title or number,
        an invalid default meaning entry 0; `a>b` walks into submenus."""
        self._restore()
        choice = Choice([], [])
        origin = "default" if spec is None else "--entry"
        try:
            if spec is not None:
                self.interp.set("default", spec)
            entries = self.top
            while True:
                if not entries:
                    raise GuestDataError(f"({self.volume}){self.path}: the menu has no entries")
                value = self.interp.get("default")
                index = entry_number(entries, value, fedora=self.bls_state is not None)
                if 0 <= index < len(entries):
                    where = f" (set at {self.default_origin})" if spec is None and not choice.path else ""
                    choice.reasons.append(f"{origin}={value!r} names entry {index}{where}")
                elif spec is not None:
                    raise NotFoundError(f"--entry={spec}: no such menu entry")
                else:
                    why = "is not set" if value is None else f"={value!r} names no entry"
                    choice.reasons.append(f"{origin} {why}: entry 0")
                    index = 0
                choice.path.append(index)
                choice.titles.append(entries[index].title)
                if not entries[index].submenu:
                    return choice
                entries = self._enter_submenu(entries[index])
        finally:
            self._restore()

    def run(self, path: list[int]) -> BootSpec:
        """What the entry at `path` loads."""
        spec = self.walk(path)[1]
        if spec is None:
            raise NotFoundError(f"menu entry {'>'.join(map(str, path))} is a submenu")
        return spec

    def fallbacks(self) -> list[int]:
        """GRUB 2.06's fallback list: top-level entry numbers, tried in order when the default fails."""
        self._restore()
        found: list[int] = []
        value = self.interp.get("fallback")
        while True:
            number, value = _first_entry_number(value)
            if number < 0:
                return found
            found.append(number)

    def boot_default(self) -> tuple[Choice, BootSpec]:
        """What GRUB boots by itself: the default entry, then the `fallback` entries (normal/menu.c
        grub_menu_execute_with_fallback), in one run. GRUB stops at the first entry that leaves a
        loader set (a Linux kernel or not: a Xen entry is booted, not skipped)."""
        self._restore()
        choice = Choice([], [])
        try:
            if not self.top:
                raise GuestDataError(f"({self.volume}){self.path}: the menu has no entries")
            return choice, self._autoboot(self.top, [], [], choice)
        finally:
            self._restore()

    def _autoboot(self, entries: list[Entry], path: list[int], titles: list[str], choice: Choice) -> BootSpec:
        """run_menu's default (invalid: entry 0), executed with the fallbacks of this menu's context."""
        value = self.interp.get("default")
        index = entry_number(entries, value, fedora=self.bls_state is not None)
        where = f" (set at {self.default_origin})" if not path and self.default_origin else ""
        if 0 <= index < len(entries):
            choice.reasons.append(f"default={value!r} names entry {index}{where}")
        else:
            why = "is not set" if value is None else f"={value!r} names no entry"
            choice.reasons.append(f"default {why}: entry 0")
            index = 0
        spec = self._execute(entries, index, path, titles, choice)
        while spec.kind == NOTHING:
            # get_and_remove_first_entry_number: the list is consumed as it is used
            number, rest = _first_entry_number(self.interp.get("fallback"))
            if rest is None:
                self.interp.unset("fallback")
            else:
                self.interp.set("fallback", rest)
            if number < 0:
                break
            failed = " > ".join(choice.titles) or "?"
            if number >= len(entries):  # GRUB 2.06 would go on with a NULL entry: undefined
                choice.reasons.append(f"fallback entry {number} does not exist")
                break
            why = spec.why_not_bootable()
            choice.reasons.append(f"entry '{failed}' failed ({why}): fallback entry {number}")
            spec = self._execute(entries, number, path, titles, choice)
        return spec

    def _execute(
        self, entries: list[Entry], index: int, path: list[int], titles: list[str], choice: Choice
    ) -> BootSpec:
        """grub_menu_execute_entry: a submenu is entered and autoboots; an entry's body runs."""
        entry = entries[index]
        here, names = [*path, index], [*titles, entry.title]
        chosen, default = self.interp.get("chosen"), self.interp.get("default")
        choice.path, choice.titles = here, names
        if entry.submenu:
            children = self._enter_submenu(entry)
            spec = self._autoboot(children, here, names, choice) if children else BootSpec()
            self.interp.context_close()
        else:
            spec = self._run_entry(entry)
        for name, old in (("chosen", chosen), ("default", default)):
            if old is None:
                self.interp.unset(name)
            else:
                self.interp.set(name, old)
        self.interp.unset("timeout")
        return spec

    def _get_saved(self, name: str) -> str | None:
        self._restore()
        return self.interp.get(name)

    # -- the console: an edited entry, the command line (console.py has the answers' types)
    def run_edited(self, path: list[int], source: str) -> BootSpec:
        """Run `source` (the editor's text) as the body of the entry at `path` would run."""
        self._restore()
        try:
            entries = self.top
            for index in path[:-1]:
                entries = self._enter_submenu(entries[index])
            title = entries[path[-1]].title if path and 0 <= path[-1] < len(entries) else ""
            spec = BootSpec()
            self.recorder = spec
            self.menus.append([])  # a menuentry in the edited text does not join the real menu
            with contextlib.suppress(BootNow):
                self.interp.run_new_scope(source, [title], filename="<edited entry>")
            return spec
        finally:
            self.recorder = None
            self._restore()

    def command(self, line: str) -> CommandResult:
        """One line typed at GRUB's command line; the environment it changes persists to the next line."""
        if self._console is None:
            self._console = ConsoleState()
        state = self._console
        if not state.started:
            self._restore()
            state.started = True
        out: list[str] = []
        size = [0]

        def collect(text: str) -> None:
            if size[0] < GRUB_MAX_CONSOLE_OUTPUT:
                out.append(text[: GRUB_MAX_CONSOLE_OUTPUT - size[0]])
                size[0] += len(text)

        self.interp.console = collect
        self.recorder = state.spec
        self.menus.append([])  # menuentry typed at the command line stays out of the real menu
        booting = False
        try:
            status = self.interp.run_source(line, "<command line>")
        except BootNow:
            status, booting = 0, True
        finally:
            self.interp.console = None
            self.recorder = None
            self.menus.pop()
        errors = state.spec.errors
        if errors:
            collect("".join(f"error: {e}.\n" for e in errors))
            state.spec.errors = []
        return CommandResult("".join(out), status, state.spec if booting else None)

    def menu(self) -> Menu:
        """The whole menu, each entry's BootSpec from a speculative run (for -l and the console)."""
        self._restore()
        timeout = self.interp.get("timeout")
        menu = Menu(
            entries=self._fill(self.top, []),
            default=self._get_saved("default"),
            fallback=self._get_saved("fallback"),
            timeout=_int_or_none(timeout),
            timeout_style=self._get_saved("timeout_style") or "menu",
            source=f"({self.volume}){self.path}",
            kind="grub2",
            default_origin=self.default_origin,
            superusers=self._get_saved("superusers"),
            passwords=self.auth.to_json(),
        )
        return menu

    def _fill(self, entries: list[Entry], path: list[int]) -> list[Entry]:
        for index, entry in enumerate(entries):
            if entry.submenu:
                entry.children = self._fill(self.children([*path, index]), [*path, index])
            else:
                entry.boot = self.walk([*path, index])[1]
        return entries


def _first_entry_number(value: str | None) -> tuple[int, str | None]:
    """menu.c get_and_remove_first_entry_number on `value`: (number or -1, what remains of the list,
    None when GRUB unsets the variable). grub_strtoul is i386-pc's: 32 bits, then cast to int."""
    if value is None:
        return -1, None
    number, end, err = strtoull(value, 0)
    if err or number > 0xFFFFFFFF:
        return -1, None
    rest = value[end:].lstrip(" \t\n\r")
    return to_int(number), rest


def _write_root(value: str) -> str:
    """kern/main.c grub_env_write_root: `set root=(hd0,1)` stores `hd0,1`."""
    if len(value) >= 2 and value[0] == "(" and value[-1] == ")":
        return value[1:-1]
    return value


def _int_or_none(value: str | None) -> int | None:
    if value is None or not value.strip().lstrip("-").isdigit():
        return None
    number = int(value)
    return None if number < 0 else number
