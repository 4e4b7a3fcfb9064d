"""The GRUB commands pvboot gives the interpreter: menus, loaders, search, grubenv, and dom0 no-ops.

Loader commands do not load anything: while a menu entry runs they record into a BootSpec what GRUB's
loader would have loaded (checking the files exist, as GRUB opens them), so the entry's commands decide
the kernel, initrds and command line exactly as GRUB's would. The BootSpec is GRUB's one loader slot
(commands/boot.c grub_loader_set/unset); beside it each loader module keeps its own state, as in
GRUB 2.06 for i386-pc:
- `linux` (and Fedora's `linuxefi`) and `linux16` are separate modules (loader/i386/linux.c,
  loader/i386/pc/linux.c), each with a `loaded` flag that its `initrd`/`initrd16` requires. A
  successful kernel load replaces the slot (the previous loader's unload hook clears its flag) and
  drops any initrd; a failed one clears only its module's flag: the kernel loaded before stays in the
  slot and still boots, but a following `initrd` fails. A failed `initrd` leaves the previous initrd.
- `multiboot`/`multiboot2` empty the slot first (grub_loader_unset) whether or not they succeed;
  `module`/`module2` need their own kernel loaded (its relocator).
- `boot` inside an entry boots at once when the slot is full, and otherwise fails and the entry goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pvboot.config.grub2.grubenv import parse_envblk
from pvboot.config.grub2.options import NONE, OPTIONAL, REQUIRED, Opt, OptionError, parse
from pvboot.disk.fsapi import Kind
from pvboot.errors import GuestDataError, LimitError
from pvboot.menu import CHAINLOADER, LINUX, MULTIBOOT, NOTHING, OTHER, BootSpec, Entry, FileRef

if TYPE_CHECKING:
    from pvboot.config.grub2.session import Grub2Session

MENUENTRY_OPTIONS = [
    Opt("class", value=REQUIRED, repeatable=True),
    Opt("users", value=REQUIRED),
    Opt("hotkey", value=REQUIRED),
    Opt("source", value=REQUIRED),
    Opt("id", value=REQUIRED),
    Opt("unrestricted"),
]
SEARCH_OPTIONS = [
    Opt("file", "f"),
    Opt("label", "l"),
    Opt("fs-uuid", "u"),
    Opt("set", "s", OPTIONAL),
    Opt("no-floppy", "n"),
    Opt("hint", "h", value=REQUIRED, repeatable=True),
    *(
        Opt(f"hint{s}", value=REQUIRED, repeatable=True)
        for s in ("-ieee1275", "-bios", "-baremetal", "-efi", "-arc")
    ),
]
# Commands that change only the screen, the firmware or modules: accepted and ignored in dom0.
IGNORED = [
    "insmod",
    "rmmod",
    "load_video",
    "terminal_output",
    "terminal_input",
    "terminal",
    "serial",
    "loadfont",
    "font",
    "background_image",
    "background_color",
    "play",
    "clear",
    "sleep",
    "gfxmode",
    "videoinfo",
    "set_gfxpayload",
    "cmostest",
    "cmosclean",
    "lsfonts",
    "tpm2_key_protector_init",
    "cryptomount",
    "lsmod",
    "loopback",
    "savedefault",
    "fwsetup",
]
LOADERS_OTHER = [
    "knetbsd",
    "kfreebsd",
    "kopenbsd",
    "xnu_kernel",
    "xnu_kernel64",
    "appleloader",
    "ntldr",
    "truecrypt",
    "freedos",
    "plan9",
]

Command = Callable[[object, list[str], str | None], int]


def quote_cmdline(args: list[str]) -> str:
    """The command line GRUB's `linux` builds (lib/cmdline.c): words with spaces in double quotes,
    backslash before backslash, quote and double quote."""
    out = []
    for word in args:
        text = "".join("\\" + ch if ch in "\\'\"" else ch for ch in word)
        out.append(f'"{text}"' if " " in word else text)
    return " ".join(out)


LINUX_MODULE = {"linux": "linux", "linuxefi": "linux", "initrd": "linux", "initrdefi": "linux",
                "linux16": "linux16", "initrd16": "linux16"}
MULTIBOOT_MODULE = {"multiboot": "multiboot", "module": "multiboot",
                    "multiboot2": "multiboot2", "module2": "multiboot2"}


class Commands:
    """The command implementations, bound to one session."""

    def __init__(self, session: Grub2Session) -> None:
        self.s = session
        # commands/search.c's cache, one per search kind: key -> the first device found for it
        self.search_cache: dict[str, dict[str, str]] = {"file": {}, "fs-uuid": {}, "label": {}}

    def install(self) -> None:
        reg = self.s.interp.register
        reg("menuentry", self._entry(submenu=False))
        reg("submenu", self._entry(submenu=True))
        for name in ("linux", "linux16", "linuxefi"):
            reg(name, self._linux(name))
        for name in ("initrd", "initrd16", "initrdefi"):
            reg(name, self._initrd(name))
        reg("devicetree", self._devicetree)
        for name in ("multiboot", "multiboot2"):
            reg(name, self._multiboot(name))
        for name in ("module", "module2"):
            reg(name, self._module(name))
        reg("chainloader", self._other(CHAINLOADER, "chainloader"))
        for name in LOADERS_OTHER:
            reg(name, self._other(OTHER, name))
        reg("boot", self._boot)
        reg("search", self._search)
        reg("search.file", self._search_short("file"))
        reg("search.fs_uuid", self._search_short("fs-uuid"))
        reg("search.fs_label", self._search_short("label"))
        reg("load_env", self._load_env)
        reg("save_env", self._save_env)
        reg("configfile", self._configfile)
        reg("probe", self._probe)
        for name in IGNORED:
            reg(name, self._ignored)
        reg("gettext", self._gettext)
        reg("keystatus", lambda _i, _a, _b: 1)  # no key is ever held down
        reg("cpuid", lambda _i, _a, _b: 0)  # a 64-bit CPU with long mode, as dom0's
        reg("read", lambda _i, _a, _b: 1)  # no console input while the config runs
        reg("blscfg", self._blscfg)

    # -- guarded execution: a failing command sets $? and the script goes on, as in GRUB
    def _fail(self, message: str) -> int:
        self.s.log(f"error: {message}")
        if self.s.recorder is not None:
            self.s.recorder.errors.append(message)
        return 1

    # -- menus
    def _entry(self, submenu: bool) -> Command:
        def run(_interp: object, args: list[str], block: str | None) -> int:
            try:
                opts = parse(args, MENUENTRY_OPTIONS, accept_dash=True)
            except OptionError as exc:
                return self._fail(str(exc))
            if not opts.args:
                return self._fail("missing arguments")
            if block is None and not opts.has("source"):
                return self._fail("no menuentry definition")
            title, extra = opts.args[0], opts.args[1:]
            body = block if block is not None else ""
            prefix = "setparams " + " ".join("'" + a.replace("'", "'\\''") + "'" for a in opts.args) + "\n"
            entry = Entry(
                title=title,
                id=opts.one("id") or "",
                classes=opts.all("class"),
                users=opts.one("users") if opts.has("users") else (None if opts.has("unrestricted") else ""),
                unrestricted=opts.has("unrestricted"),
                hotkey=opts.one("hotkey"),
                submenu=submenu,
                source=prefix + body,
                handle=(body, [title, *extra]),
            )
            self.s.add_entry(entry)
            return 0

        return run

    # -- loaders
    def _file(self, path: str, what: str) -> FileRef:
        """A loader's file as GRUB opens it: `(dev)/path` or `/path` on $root; must be a regular file."""
        ref = self.s.open_ref(path)
        kind = self.s.view.kind(ref)
        if kind is None and what == "kernel":
            alternative = self.s.view.fallback_for(ref)
            if alternative is not None:
                self.s.log(f"kernel {ref.display()} not found: {alternative.display()} loads instead")
                return alternative
        if kind is not Kind.FILE:
            raise GuestDataError(
                f"file `{ref.display()}' not found"
                if kind is None
                else f"{what} {ref.display()}: not a regular file"
            )
        return ref

    def _loading(self) -> BootSpec | None:
        """The loader slot of the running entry (None outside entries)."""
        return self.s.recorder

    def _unload(self, spec: BootSpec) -> None:
        """grub_loader_unset, or the old loader's unload hook in grub_loader_set: the slot is emptied."""
        if spec.kind == LINUX:
            spec.loaded_modules.discard(LINUX_MODULE.get(spec.loader, "linux"))
        elif spec.kind == MULTIBOOT:
            spec.loaded_modules.discard(MULTIBOOT_MODULE.get(spec.loader, "multiboot"))
        spec.kind, spec.loader, spec.kernel, spec.args = NOTHING, "", None, ""
        spec.initrds, spec.devicetree, spec.modules = [], None, []

    def _linux(self, name: str) -> Command:
        module = LINUX_MODULE[name]

        def run(_interp: object, args: list[str], _block: str | None) -> int:
            spec = self._loading()
            if spec is None:
                return 0
            spec.loaded_modules.discard(module)  # the `fail:` path; set again below on success
            if not args:
                return self._fail("filename expected")
            try:
                kernel = self._file(args[0], "kernel")
            except GuestDataError as exc:
                return self._fail(str(exc))
            self._unload(spec)
            spec.kind, spec.loader, spec.kernel = LINUX, name, kernel
            spec.args = quote_cmdline(args[1:])
            spec.loaded_modules.add(module)
            return 0

        return run

    def _initrd(self, name: str) -> Command:
        module = LINUX_MODULE[name]

        def run(_interp: object, args: list[str], _block: str | None) -> int:
            spec = self._loading()
            if spec is None:
                return 0
            files = [a for a in args if not a.startswith("--")]
            if not files:
                return self._fail("filename expected")
            if module not in spec.loaded_modules:
                return self._fail("you need to load the kernel first")
            try:
                initrds = [self._file(f, "initrd") for f in files]
            except GuestDataError as exc:
                return self._fail(str(exc))  # the initrd loaded before stays
            spec.initrds = initrds
            return 0

        return run

    def _devicetree(self, _interp: object, args: list[str], _block: str | None) -> int:
        spec = self._loading()
        if spec is None:
            return 0
        if not args:
            return self._fail("filename expected")
        try:
            spec.devicetree = self._file(args[0], "devicetree")
        except GuestDataError as exc:
            return self._fail(str(exc))
        return 0

    def _multiboot(self, name: str) -> Command:
        def run(_interp: object, args: list[str], _block: str | None) -> int:
            spec = self._loading()
            if spec is None:
                return 0
            self._unload(spec)
            files = [a for a in args if not a.startswith("--")]
            if not files:
                return self._fail("filename expected")
            try:
                spec.kernel = self._file(files[0], "kernel")
            except GuestDataError as exc:
                return self._fail(str(exc))
            spec.kind, spec.loader, spec.args = MULTIBOOT, name, " ".join(files[1:])
            spec.loaded_modules.add(MULTIBOOT_MODULE[name])
            return 0

        return run

    def _module(self, name: str) -> Command:
        def run(_interp: object, args: list[str], _block: str | None) -> int:
            spec = self._loading()
            if spec is None:
                return 0
            if MULTIBOOT_MODULE[name] not in spec.loaded_modules:
                return self._fail("you need to load the multiboot kernel first")
            spec.modules.append(" ".join(a for a in args if not a.startswith("--")))
            return 0

        return run

    def _other(self, kind: str, name: str) -> Command:
        def run(_interp: object, args: list[str], _block: str | None) -> int:
            spec = self._loading()
            if spec is not None:
                self._unload(spec)
                spec.kind, spec.loader = kind, name
                spec.args = " ".join(args)
            return 0

        return run

    def _boot(self, _interp: object, _args: list[str], _block: str | None) -> int:
        spec = self._loading()
        if spec is None:
            return 0
        if spec.kind == NOTHING:
            return self._fail("you need to load the kernel first")
        raise BootNow()

    # -- devices
    def _search(self, _interp: object, args: list[str], _block: str | None) -> int:
        try:
            opts = parse(args, SEARCH_OPTIONS, accept_dash=True)
        except OptionError as exc:
            return self._fail(str(exc))
        var = (opts.one("set") or "root") if opts.has("set") else None
        rest = list(opts.args)
        while rest and rest[0].startswith("--hint-"):  # hints for other platforms (search_wrap.c)
            rest.pop(0)
        if rest:
            key = rest[0]
        elif opts.one("set"):
            key, var = str(opts.one("set")), "root"
        else:
            return self._fail("one argument expected")
        how = (
            "label"
            if opts.has("label")
            else "fs-uuid"
            if opts.has("fs-uuid")
            else "file"
            if opts.has("file")
            else None
        )
        if how is None:
            return self._fail("unspecified search type")
        hints = opts.all("hint") + opts.all("hint-bios") + opts.all("hint-baremetal")
        return self._do_search(how, key, var, hints)

    def _search_short(self, how: str) -> Command:
        def run(_interp: object, args: list[str], _block: str | None) -> int:
            if not args:
                return self._fail("one argument expected")
            return self._do_search(how, args[0], args[1] if len(args) > 1 else None, args[2:])

        return run

    def _search_order(self, hints: list[str]) -> list[str]:
        """The devices commands/search.c tries, in order: each hint (one trailing comma stripped; with
        the comma, the hint disk's partitions follow, first to last), then grub_device_iterate
        (kern/device.c): a disk, then its partitions from last to first (they are collected by
        prepending to a list). Logical volumes come after the disks (not checked against GRUB)."""
        view = self.s.view
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

    def _do_search(self, how: str, key: str, var: str | None, hints: list[str]) -> int:
        cache = self.search_cache[how]
        ckey = key.lower() if how == "fs-uuid" else key  # fs-uuid keys compare case-insensitively
        cached = cache.get(ckey)
        order = self._search_order(hints)
        if cached is not None:  # tried first; dropped when it no longer matches
            if self._matches(how, key, cached):
                order.insert(0, cached)
            else:
                del cache[ckey]
        for name in order:
            if self._matches(how, key, name):
                self.s.log(f"search --{how} {key}: found ({name})")
                cache.setdefault(ckey, name)
                if var:
                    self.s.interp.set(var, name)
                return 0
        return self._fail(f"no such device: {key}")

    def _matches(self, how: str, key: str, name: str) -> bool:
        view = self.s.view
        try:
            if how == "file":  # grub_file_open of `(name)key`: a regular file
                return key.startswith("/") and view.kind(FileRef(name, key)) is Kind.FILE
            if how == "fs-uuid":
                uuid = view.fs_uuid(name)
                return uuid is not None and uuid.lower() == key.lower()
            return view.fs_label(name) == key
        except GuestDataError:
            return False

    def _probe(self, _interp: object, args: list[str], _block: str | None) -> int:
        spec = [
            Opt("set", "s", REQUIRED),
            Opt("driver", "d"),
            Opt("partmap", "p"),
            Opt("fs", "f"),
            Opt("fs-uuid", "u"),
            Opt("label", "l"),
            Opt("part-uuid", value=NONE),
        ]
        try:
            opts = parse(args, spec)
        except OptionError as exc:
            return self._fail(str(exc))
        if not opts.args:
            return self._fail("device name required")
        name = opts.args[0].strip("()")
        view = self.s.view
        value = (
            view.fs_type(name)
            if opts.has("fs")
            else view.fs_uuid(name)
            if opts.has("fs-uuid")
            else (view.fs_label(name) if opts.has("label") else None)
        )
        if value is None:
            return self._fail(f"cannot probe ({name})")
        if opts.has("set"):
            self.s.interp.set(str(opts.one("set")), value)
        else:
            self.s.log(value)
        return 0

    # -- files
    def _load_env(self, _interp: object, args: list[str], _block: str | None) -> int:
        try:
            opts = parse(args, [Opt("file", "f", REQUIRED), Opt("skip-sig", "s")])
        except OptionError as exc:
            return self._fail(str(exc))
        path = opts.one("file")
        if path is None:
            prefix = self.s.interp.get("prefix")
            if prefix is None:
                return self._fail("variable `prefix' isn't set")
            path = prefix + "/grubenv"
        try:
            text = self.s.read_text(path)
        except GuestDataError as exc:
            return self._fail(str(exc))
        values = parse_envblk(text)
        if values is None:
            return self._fail("invalid environment block")
        wanted = set(opts.args)
        for name, value in values.items():
            if not wanted or name in wanted:
                self.s.interp.set(name, value)
        self.s.log(f"load_env {path}: {', '.join(f'{k}={v}' for k, v in values.items()) or 'empty'}")
        return 0

    def _save_env(self, _interp: object, args: list[str], _block: str | None) -> int:
        self.s.log(f"save_env {' '.join(args)}: not written (pvboot reads the guest disk read-only)")
        return 0

    def _configfile(self, _interp: object, args: list[str], _block: str | None) -> int:
        if not args:
            return self._fail("filename expected")
        try:
            self.s.configfile(args[0])
        except LimitError:
            raise
        except GuestDataError as exc:
            return self._fail(str(exc))
        return 0

    def _blscfg(self, _interp: object, args: list[str], _block: str | None) -> int:
        try:
            self.s.blscfg(args)
        except GuestDataError as exc:
            return self._fail(str(exc))
        return 0

    def _ignored(self, _interp: object, _args: list[str], _block: str | None) -> int:
        return 0

    def _gettext(self, _interp: object, args: list[str], _block: str | None) -> int:
        self.s.log(" ".join(args))
        return 0


class BootNow(BaseException):
    """`boot` inside a running menu entry: the entry is complete. Not an Exception, so no handler in the
    interpreter mistakes it for a command failure."""
