"""extlinux / syslinux / isolinux / pxelinux configs and U-Boot's extlinux.conf, read as SYSLINUX 6 does.

Parsing is com32/elflink/ldlinux/readconfig.c's (syslinux 6): a line is cut at its first CR and at 4095
characters; directives are case-insensitive and must be followed by a blank (so Debian u-boot-update's
lower-case `linux`/`initrd`/`append` are the same directives); state carries across INCLUDE as if the
files were concatenated; LABEL's KERNEL defaults to the label name; APPEND outside a label is the global
one, `APPEND -` is none. U-Boot's FDT/DEVICETREE, FDTDIR/DEVICETREEDIR and FDTOVERLAYS (boot/pxe_utils.c,
first one wins) are recorded too; SYSLINUX ignores them. Relative paths resolve against the config file's
directory, which SYSLINUX makes its working directory (and U-Boot its bootdir).

What boots (ldlinux.c, menumain.c): with `UI` or `DEFAULT menu.c32`/`vesamenu.c32` the menu module runs:
its default is DEFAULT's label when UI was given, else MENU DEFAULT, else the first entry; on timeout it
boots ONTIMEOUT if set (not with MENU HIDDEN). Without a menu module SYSLINUX runs DEFAULT at once
(PROMPT 0) or after the prompt's timeout (then ONTIMEOUT wins): a label boots as written (extra words on
the DEFAULT line are dropped), anything else is an implicit kernel command line. With neither DEFAULT nor
UI SYSLINUX stops at its prompt; pvboot leaves the default unset (U-Boot boots the first label).

The command line: SYSLINUX appends ` initrd=<INITRD>` itself and its Linux loader loads the files named
by the first `initrd=` in the line (comma-separated, so `APPEND initrd=a,b` loads a and b and the token
stays on the command line). pvboot passes the kernel the line without the ` initrd=` SYSLINUX added for
the INITRD directive, as U-Boot does (its bootargs are APPEND's text): `append ro quiet` + `initrd X` gives
args `ro quiet` and the initrd X. The `BOOT_IMAGE`-style kernel name SYSLINUX puts first is not included.
MENU BEGIN/END submenus are flattened into one list (hidden labels and synthetic default commands last).
"""

from __future__ import annotations

from dataclasses import dataclass

from pvboot.config.extlinux_parse import (
    KERNEL_TYPES,
    ExtlinuxConfig,
    Label,
    SubMenu,
    parse_extlinux,
    skip_blanks,
    word,
)
from pvboot.config.source import ConfigFiles, join
from pvboot.menu import CHAINLOADER, LINUX, NOTHING, OTHER, BootSpec, Entry, FileRef, Menu

_EXTENSIONS = ((".c32", "com32"), (".0", "pxe"), (".bs", "boot"), (".img", "fdimage"), (".bin", "boot"),
               (".bss", "bss"), (".com", "comboot"), (".cbt", "comboot"))  # fmt: skip
_MENU_MODULES = ("menu.c32", "vesamenu.c32")

Target = tuple[Label | None, str]  # a label and words added after its command line, or (None, a command)
Decision = tuple[Target | None, int | None, str, str]  # what boots, timeout, timeout style, why


@dataclass
class ExtlinuxEntryInfo:
    """What the menu needs besides the BootSpec."""

    label: Label | None
    hidden: bool = False  # MENU HIDE, or a command SYSLINUX runs that no menu shows
    command: str = ""  # SYSLINUX's command line for the entry (what [Tab] edits)
    passwd: str | None = None
    master_passwd: str | None = None
    fdtdir: str | None = None  # U-Boot: the device tree is $fdtfile (or soc-board.dtb) in here
    fdtoverlays: str | None = None


def kernel_type(kernel: str) -> str:
    """ldlinux.c parse_kernel_type: the image type a file name's extension implies."""
    return next((t for ext, t in _EXTENSIONS if kernel.endswith(ext)), "kernel")


def _split(cmdline: str) -> tuple[str, str]:
    kernel = word(cmdline)
    return kernel, cmdline[skip_blanks(cmdline, len(kernel)) :]


def _initrds(args: str) -> list[str] | None:
    """kernel.c: the files after the first "initrd=", split at ',' up to a space; None when absent."""
    at = args.find("initrd=")
    if at < 0:
        return None
    names, pos = [], at + 7
    while True:
        end = pos
        while end < len(args) and args[end] not in " ,":
            end += 1
        names.append(args[pos:end])
        if end < len(args) and args[end] == ",":
            pos = end + 1
            continue
        return names


def boot_command(text: str, initrd_suffix: str, extra: str, cwd: str) -> BootSpec:
    """The BootSpec of SYSLINUX command line `text + initrd_suffix + extra`; args leave out the suffix."""
    full, shown = text + initrd_suffix + extra, text + extra
    ktype = None
    kernel, rest = _split(full)
    if kernel.startswith(".") and kernel[1:] in KERNEL_TYPES[1:]:  # ".linux vmlinuz ..." (execute.c)
        ktype, full, shown = kernel[1:], rest, _split(shown)[1]
    kernel, args = _split(full)
    shown_args = _split(shown)[1].rstrip()
    ktype = ktype or kernel_type(kernel)
    ref = FileRef(None, join(cwd, kernel)) if kernel else None
    if ktype in ("kernel", "linux"):
        if ref is None:
            return BootSpec(loader="linux", errors=["the command names no kernel"])
        names = _initrds(args) or []
        if any(not n for n in names):
            return BootSpec(loader="linux", errors=["SYSLINUX cannot load an initrd with an empty name"])
        return BootSpec(
            kind=LINUX, kernel=ref, initrds=[FileRef(None, join(cwd, n)) for n in names], args=shown_args,
            loader="linux",
        )  # fmt: skip
    if ktype == "localboot":
        return BootSpec(kind=CHAINLOADER, loader="localboot", args=args)
    if ktype in ("boot", "bss", "pxe"):
        return BootSpec(kind=CHAINLOADER, kernel=ref, loader=ktype, args=args)
    return BootSpec(kind=OTHER if ref else NOTHING, kernel=ref, loader=ktype, args=args)


def _devicetree(label: Label, cwd: str, fdtfile: str | None) -> FileRef | None:
    """U-Boot label_boot: FDT, else FDTDIR + $fdtfile (the caller's `fdtfile`, when it knows one)."""
    if label.fdt is not None:
        return FileRef(None, join(cwd, label.fdt))
    if label.fdtdir is not None and fdtfile:
        d = label.fdtdir
        slash = "./" if not d else ("" if d.endswith("/") else "/")
        return FileRef(None, join(cwd, d + slash + fdtfile))
    return None


def _entry(cfg: ExtlinuxConfig, label: Label | None, extra: str, hidden: bool, fdtfile: str | None) -> Entry:
    if label is None:
        text, suffix, title = extra, "", extra
        extra = ""
    else:
        (text, suffix), title = label.command(), (label.menulabel or label.label)
        title = title if not extra else f"{label.label}{extra}"
    spec = boot_command(text, suffix, extra, cfg.cwd)
    if label is not None and spec.kind == LINUX:
        spec.devicetree = _devicetree(label, cfg.cwd, fdtfile)
    menulabel = label.menulabel if label is not None else None
    caret = menulabel.find("^") if menulabel else -1
    hotkey = menulabel[caret + 1] if menulabel and 0 <= caret < len(menulabel) - 1 else None
    info = ExtlinuxEntryInfo(
        label=label, hidden=hidden, command=text + suffix + extra, master_passwd=cfg.master_passwd,
        passwd=label.passwd if label else None, fdtdir=label.fdtdir if label else None,
        fdtoverlays=label.fdtoverlays if label else None,
    )  # fmt: skip
    return Entry(
        title=title.replace("^", ""),
        id=label.label if label is not None and not extra else "",
        hotkey=hotkey,
        source=info.command,
        boot=spec,
        handle=info,
    )


def _unlabel(cfg: ExtlinuxConfig, command: str) -> Target:
    label = cfg.find_label(command)
    return (label, command[len(word(command)) :]) if label is not None else (None, command)


def _prompted(cfg: ExtlinuxConfig, target: Target, secs: int | None, origin: str) -> Decision:
    """No menu module: PROMPT 0 boots at once; at the prompt a timeout boots ONTIMEOUT, else DEFAULT."""
    if not cfg.prompt:
        return target, 0, "hidden", origin + " (PROMPT 0: booted at once)"
    if secs is not None and cfg.ontimeout:
        return _unlabel(cfg, cfg.ontimeout), secs, "menu", f"ONTIMEOUT {cfg.ontimeout}"
    return target, secs, "menu", origin


def decide(cfg: ExtlinuxConfig) -> Decision:
    """(what boots when nobody types, timeout seconds or None to wait, timeout style, why)."""
    tenths = cfg.timeout if cfg.timeout > 0 else cfg.totaltimeout
    secs = (tenths + 9) // 10 if tenths > 0 else None
    command = cfg.ui if cfg.ui is not None else cfg.default
    if command is None:
        return None, None, "menu", "no DEFAULT or UI: SYSLINUX waits at its boot: prompt"
    origin = f"UI {command}" if cfg.ui is not None else f"DEFAULT {command}"
    label = cfg.find_label(command) if cfg.ui is None else None
    if label is not None:  # load_kernel: a label boots as written, extra words are dropped
        return _prompted(cfg, (label, ""), secs, origin)
    module = word(command)
    if module.endswith(".c32") and module.rsplit("/", 1)[-1].lower() in _MENU_MODULES:
        return _menu_mode(cfg, secs, origin)
    if not module.endswith(".c32") and not cfg.implicit:
        return None, None, "menu", origin + ": not a label, and IMPLICIT 0 forbids a kernel name"
    return _prompted(cfg, (None, command), secs, origin)


def _menu_mode(cfg: ExtlinuxConfig, secs: int | None, origin: str) -> Decision:
    """menu.c32: DEFAULT's label counts only with UI; else MENU DEFAULT, else the first entry."""
    target: Target | None = None
    label = cfg.find_label(cfg.default) if cfg.ui is not None and cfg.default else None
    if label is not None and not label.hide:
        target, origin = (label, ""), f"{origin}, DEFAULT {cfg.default}"
    elif cfg.root.items:
        item = cfg.root.items[cfg.root.default or 0]
        if isinstance(item, Label):
            how = "MENU DEFAULT" if cfg.root.default is not None else "the first entry"
            target, origin = (item, ""), f"{origin}: {how} ({item.label})"
    if cfg.menu_hidden:
        return target, secs, "hidden", origin + ", MENU HIDDEN"
    if secs is not None and cfg.ontimeout and cfg.root.items:
        return _unlabel(cfg, cfg.ontimeout), secs, "menu", f"{origin}; ONTIMEOUT {cfg.ontimeout}"
    return target, secs, "menu", origin


def extlinux_menu(text: str, files: ConfigFiles, config_path: str, fdtfile: str | None = None) -> Menu:
    """The menu of an extlinux/syslinux config (text given, read from `config_path`); `fdtfile` is
    U-Boot's $fdtfile for FDTDIR, when known."""
    cfg = parse_extlinux(text, files, config_path)
    entries: list[Entry] = []
    where: dict[int, int] = {}

    def add(label: Label | None, extra: str, hidden: bool) -> int:
        entries.append(_entry(cfg, label, extra, hidden, fdtfile))
        return len(entries) - 1

    def walk(items: list[Label | SubMenu]) -> None:
        for item in items:
            if isinstance(item, Label):
                where[id(item)] = add(item, "", False)
            else:
                walk(item.items)

    walk(cfg.root.items)
    for label in cfg.hidden:
        where[id(label)] = add(label, "", True)
    target, timeout, style, origin = decide(cfg)
    default = None
    if target is not None:
        chosen, extra = target
        index = where[id(chosen)] if chosen is not None and not extra else add(chosen, extra, True)
        default = str(index)
    return Menu(
        entries=entries,
        default=default,
        timeout=timeout,
        timeout_style=style,
        source=config_path,
        kind="extlinux",
        default_origin=origin,
    )


__all__ = [
    "ExtlinuxConfig",
    "ExtlinuxEntryInfo",
    "Label",
    "boot_command",
    "decide",
    "extlinux_menu",
    "parse_extlinux",
]
