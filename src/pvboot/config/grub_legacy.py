"""GRUB legacy menu.lst / grub.conf, read as GRUB 2.06 reads it (`legacy_configfile`).

Ported from grub-core/lib/legacy_parse.c (the line translation) and grub-core/commands/legacycfg.c (the
menu and the legacy_kernel/legacy_initrd commands); where pygrub disagrees, GRUB 2 wins:
- Lines before the first `title` are global; every line after a `title` belongs to that entry. Command
  names are case-sensitive and end at a space or '='.
- `(hdN,P)` partitions count from 0 in legacy and from 1 in GRUB 2: `(hd0,0)` is `hd0,msdos1`,
  `(hd0,0,a)` is `hd0,msdos1,bsd1`, `(nd)` is `tftp`. A path without a device is on `root`, else on
  the config's own volume (FileRef volume None).
- `kernel [--type=T] [--no-mem-option] FILE ARGS`: the arguments are the words after FILE, each passed as
  one word, then joined by GRUB's linux loader (quotes and backslashes escaped, lib/cmdline.c).
- GRUB 2 decides Linux or multiboot by trying to load the file; the reader cannot look inside it, so an
  entry with `module` lines is taken as multiboot (a Xen dom0 entry) unless `--type=linux` says otherwise
  (`LegacyEntryInfo.guessed` marks it). After a Linux kernel, `initrd` and `module` both load the initrd
  (the last one wins); after a multiboot kernel both load modules.
- `default saved` is GRUB 2's `load_env` + `saved_entry` (pass `env`); when that is empty the legacy
  `default` file beside the config (what GRUB 0.97's `savedefault`/grub-set-default write) is read.
- `hiddenmenu` becomes `if sleep -i $timeout; then timeout=0; else timeout=-1; fi`: a hidden wait of
  `timeout` seconds (read in base 10 by sleep), then the default boots; without a timeout sleep fails
  and the menu is shown and waits. `password` (global or in an
  entry), `lock` and `savedefault` are recorded in `LegacyEntryInfo` for the menu; a global password
  with a FILE adds GRUB 2's "Superuser menu" entry at the end.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pvboot.config.grub2.words import loader_cmdline
from pvboot.config.source import ConfigFiles, dirname, join
from pvboot.errors import GuestDataError, LimitError
from pvboot.limits import LEGACY_MAX_ENTRIES as MAX_ENTRIES
from pvboot.menu import CHAINLOADER, LINUX, MULTIBOOT, OTHER, BootSpec, Entry, FileRef, Menu, grub_strtoul

_SPACE = " \t\n\r\f\v"
_BSD_TYPES = {"--type=netbsd": "knetbsd", "--type=freebsd": "kfreebsd", "--type=openbsd": "kopenbsd"}
_KERNEL_OPTIONS = {"--type=linux", "--type=biglinux", "--type=multiboot", "--no-mem-option", *_BSD_TYPES}


@dataclass(frozen=True)
class LegacyPassword:
    """A `password [--md5] PASSWD [FILE]` line."""

    password: str  # as written: an MD5-crypt hash when md5
    md5: bool
    option: str  # the option word as written ("--md5", ...), "" when none
    configfile: FileRef | None = None  # GRUB legacy loads it after the right password


@dataclass
class LegacyEntryInfo:
    """What GRUB's menu needs besides the BootSpec: the entry's lines and its access rules."""

    lines: list[str] = field(default_factory=list)
    password: LegacyPassword | None = None  # `password` inside the entry: asked before it boots
    lock: bool = False  # `lock`: the global password is needed to boot it
    savedefault: bool = False
    menu_password: LegacyPassword | None = None  # the global one (GRUB 2: superusers=legacy)
    guessed: bool = False  # Linux/multiboot guessed from `module` lines, not from the kernel file


def _words(text: str) -> list[str]:
    """Words as legacy_parse.c splits them: at grub_isspace (ASCII) only."""
    return [w for w in re.split(r"[ \t\n\r\f\v]+", text) if w]


def translate_device(device: str) -> str:
    """A legacy device name (without parentheses) as GRUB 2 names it: hd0,0 -> hd0,msdos1."""
    if device == "nd":
        return "tftp"
    disk, comma, rest = device.partition(",")
    if not comma:
        return device
    match = re.match(r"([0-9]*)(?:,([a-z]))?", rest)
    part = int(match.group(1)) if match and match.group(1) else 0
    name = f"{disk},msdos{part + 1}"
    if match and match.group(2):
        name += f",bsd{ord(match.group(2)) - ord('a') + 1}"
    return name


def split_file(word: str, root: str | None) -> FileRef:
    """legacy_parse.c adjust_file, then GRUB 2's `(dev)/path` against `root`."""
    if word.startswith("("):
        close = word.find(")")
        if close > 0:
            return FileRef(translate_device(word[1:close]), word[close + 1 :])
    return FileRef(root, word)


def _parse_password(text: str) -> tuple[str, str, str | None]:
    """(option, password, file) by legacy_parse's TYPE_OPTION/VERBATIM/FILE walk."""
    words = _words(text)
    option = words.pop(0) if words and words[0].startswith("--") and len(words[0]) >= 2 else ""
    password = words[0] if words else ""
    return option, password, words[1] if len(words) > 1 else None


def _command(line: str) -> tuple[str, str]:
    """The command name (up to a space or '=') and its argument text (after spaces and '=')."""
    name = re.match(r"[^ \t\n\r\f\v=]*", line)
    assert name is not None
    rest = line[name.end() :].lstrip(_SPACE + "=")
    return name.group(), rest


def _c_lines(text: str) -> list[str]:
    lines = text.replace("\r", "").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.split("\0", 1)[0] for line in lines]


@dataclass
class _Raw:
    title: str
    lines: list[str] = field(default_factory=list)


def _run_entry(raw: _Raw, root: str | None, menu_password: LegacyPassword | None) -> Entry:
    """The entry's lines in order, as legacy_kernel/legacy_initrd and friends would load them."""
    info = LegacyEntryInfo(lines=raw.lines, menu_password=menu_password)
    spec = BootSpec()
    has_modules = any(_command(line)[0] in ("module", "modulenounzip") for line in raw.lines)
    kernel_type: str | None = None
    for line in raw.lines:
        name, rest = _command(line)
        words = _words(rest)
        if name in ("root", "rootnoverify") and words:
            root = translate_device(words[0][1:-1]) if re.fullmatch(r"\(.*\)", words[0]) else words[0]
        elif name == "kernel":
            options: list[str] = []
            while words and words[0] in _KERNEL_OPTIONS and len(options) < 2:
                options.append(words.pop(0))
            if not words:
                spec.errors.append("kernel: filename expected")
                continue
            types = [o for o in options if o.startswith("--type=")]
            explicit = types[-1] if types else None
            if explicit in ("--type=linux", "--type=biglinux") or (explicit is None and not has_modules):
                kernel_type, loader = LINUX, "linux16"
            elif explicit == "--type=multiboot" or explicit is None:
                kernel_type, loader = MULTIBOOT, "multiboot"
            else:
                kernel_type, loader = OTHER, _BSD_TYPES[explicit]
            info.guessed = explicit is None
            kernel = split_file(words[0], root)
            if not kernel.path.startswith("/"):  # GRUB 2: "invalid file name", the entry loads nothing
                spec.errors.append(f"kernel: invalid file name `{words[0]}'")
                kernel_type = None
                continue
            spec = BootSpec(kernel_type, kernel, loader=loader, errors=spec.errors)
            spec.args = loader_cmdline(words[1:]) if kernel_type == LINUX else " ".join(words[1:])
        elif name in ("initrd", "module", "modulenounzip") and words:
            if kernel_type == LINUX and not split_file(words[0], root).path.startswith("/"):
                spec.errors.append(f"{name}: invalid file name `{words[0]}'")
            elif kernel_type == LINUX:
                spec.initrds = [split_file(words[0], root)]
            elif kernel_type == MULTIBOOT:
                spec.modules.append(" ".join([split_file(words[0], root).display(), *words[1:]]))
            else:
                spec.errors.append(f"{name}: you need to load the kernel first")
        elif name == "chainloader" and words:
            path = words[1] if words[0] == "--force" and len(words) > 1 else words[0]
            kernel_type = CHAINLOADER
            spec = BootSpec(CHAINLOADER, split_file(path, root), loader="chainloader", errors=spec.errors)
        elif name == "password":
            option, password, file = _parse_password(rest)
            configfile = split_file(file, root) if file else None
            info.password = LegacyPassword(password, option == "--md5", option, configfile)
        elif name == "lock":
            info.lock = True
        elif name == "savedefault":
            info.savedefault = True
    return Entry(title=raw.title, source="\n".join(raw.lines), boot=spec, handle=info)


def _saved_default(files: ConfigFiles, config_path: str, env: Mapping[str, str] | None) -> tuple[str, str]:
    saved = (env or {}).get("saved_entry", "")
    if saved:
        return saved, f"default saved: grubenv saved_entry={saved}"
    path = join(dirname(config_path), "default")
    try:
        text = files.read(path)
    except GuestDataError:
        return "", "default saved: no saved entry (entry 0)"
    number = re.match(r"\s*([0-9]+)", text)
    value = number.group(1) if number else "0"
    return value, f"default saved: {path} says {value}"


def grub_legacy_menu(
    text: str, files: ConfigFiles, config_path: str, env: Mapping[str, str] | None = None
) -> Menu:
    """The menu of a GRUB legacy config; `env` is GRUB 2's grubenv, for `default saved`."""
    globals_: dict[str, str] = {}
    root: str | None = None
    hidden = False
    menu_password: LegacyPassword | None = None
    raws: list[_Raw] = []
    for line in _c_lines(text):
        line = line.lstrip(_SPACE)
        if not line or line.startswith("#"):
            continue
        name, rest = _command(line)
        if name == "title":
            raws.append(_Raw(rest.rstrip(_SPACE)))
            if len(raws) > MAX_ENTRIES:
                raise LimitError(f"{config_path}: more than {MAX_ENTRIES} entries")
        elif raws:
            raws[-1].lines.append(line)
        elif name in ("default", "fallback"):
            globals_[name] = rest.rstrip(_SPACE)
        elif name == "timeout":
            number = re.match(r"0x[0-9a-fA-F]*|0[0-7]*|[0-9]*", rest)
            globals_["timeout"] = number.group() if number and number.group() else "0"
        elif name == "hiddenmenu":
            hidden = True
        elif name in ("root", "rootnoverify") and _words(rest):
            word = _words(rest)[0]
            root = translate_device(word[1:-1]) if re.fullmatch(r"\(.*\)", word) else word
        elif name == "password":
            option, password, file = _parse_password(rest)
            menu_password = LegacyPassword(
                password, option == "--md5", option, split_file(file, root) if file else None
            )
    entries = [_run_entry(raw, root, menu_password) for raw in raws]
    for k, entry in enumerate(entries):  # legacycfg.c adds all but the last entry with users "legacy"
        entry.users = "legacy" if k < len(entries) - 1 else None
        entry.unrestricted = entry.users is None
    if menu_password is not None and menu_password.configfile is not None:
        entries.append(
            Entry(
                title="Superuser menu",
                users="legacy",
                source=f"configfile '{menu_password.configfile.display()}'",
                boot=BootSpec(kind=OTHER, loader="configfile"),
                handle=LegacyEntryInfo(menu_password=menu_password),
            )
        )
    default = globals_.get("default")
    origin = f"default {default}" if default is not None else ""
    if default == "saved":
        default, origin = _saved_default(files, config_path, env)
    timeout_text = globals_.get("timeout")
    timeout = grub_strtoul(timeout_text) if timeout_text is not None else None
    if hidden and timeout_text is None:
        hidden = False  # `sleep -i` without an argument fails: timeout=-1, the menu waits
    elif hidden and timeout_text is not None:
        digits = re.match(r"[0-9]*", timeout_text)
        timeout = int(digits.group()) if digits and digits.group() else 0  # sleep reads base 10
    return Menu(
        entries=entries,
        default=default,
        fallback=globals_.get("fallback"),
        timeout=timeout,
        timeout_style="hidden" if hidden else "menu",
        source=config_path,
        kind="grub-legacy",
        default_origin=origin,
    )


__all__ = ["LegacyEntryInfo", "LegacyPassword", "grub_legacy_menu", "split_file", "translate_device"]
