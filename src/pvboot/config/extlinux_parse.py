"""The extlinux/syslinux config parser: SYSLINUX 6's readconfig.c plus U-Boot's device-tree keywords.

See extlinux.py for the rules and their sources; this module only reads the files into an
`ExtlinuxConfig`, as SYSLINUX's parse_configs does, without deciding what boots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvboot.config.source import ConfigFiles, dirname, join
from pvboot.errors import LimitError, NotFoundError
from pvboot.limits import EXTLINUX_MAX_INCLUDE_DEPTH as MAX_INCLUDE_DEPTH
from pvboot.limits import EXTLINUX_MAX_INCLUDES as MAX_INCLUDES
from pvboot.limits import EXTLINUX_MAX_LABELS as MAX_LABELS
from pvboot.limits import EXTLINUX_MAX_LINE as MAX_LINE

KERNEL_TYPES = (
    "none",
    "localboot",
    "kernel",
    "linux",
    "boot",
    "bss",
    "pxe",
    "fdimage",
    "comboot",
    "com32",
    "config",
)
_UBOOT = {
    "fdt": "fdt",
    "devicetree": "fdt",
    "fdtdir": "fdtdir",
    "devicetreedir": "fdtdir",
    "fdtoverlays": "fdtoverlays",
}


def _space(c: str) -> bool:
    return c <= " "  # my_isspace; '' is the end of the line


def skip_blanks(s: str, i: int) -> int:
    while i < len(s) and _space(s[i]):
        i += 1
    return i


def _looking_at(s: str, i: int, kwd: str) -> int | None:
    """readconfig.c looking_at: the keyword (case bit ignored) then a blank or the end; the index after it."""
    if any(i + k >= len(s) or (ord(s[i + k]) ^ ord(c)) & ~0x20 for k, c in enumerate(kwd)):
        return None
    end = i + len(kwd)
    return end if end >= len(s) or _space(s[end]) else None


def _atoi(text: str) -> int:
    digits = text.lstrip(" \t\n\v\f\r")
    sign = -1 if digits[:1] == "-" else 1
    digits = digits[1:] if digits[:1] in "+-" and digits else digits
    n = 0
    for c in digits:
        if not "0" <= c <= "9":
            break
        n = n * 10 + ord(c) - 48
    return sign * n


def word(s: str) -> str:
    end = 0
    while end < len(s) and not _space(s[end]):
        end += 1
    return s[:end]


@dataclass
class Label:
    """One LABEL block with everything SYSLINUX and U-Boot keep for it."""

    label: str
    kernel: str  # the KERNEL/LINUX/... line's text (file and extra words), else the label name
    ktype: str = "kernel"
    append: str | None = None
    initrd: str | None = None
    menulabel: str | None = None
    passwd: str | None = None
    hide: bool = False
    menudefault: bool = False
    disabled: bool = False
    fdt: str | None = None
    fdtdir: str | None = None
    fdtoverlays: str | None = None
    global_append: str | None = None  # the global APPEND in force when the label ended

    def command(self) -> tuple[str, str]:
        """record(): the command line SYSLINUX builds, split as (text, the ` initrd=` it appends)."""
        a = self.append if self.append is not None else self.global_append
        if a is None or a == "-":
            a = ""
        s = " " if a else ""
        text = f"{self.kernel}{s}{a}" if self.ktype == "kernel" else f".{self.ktype} {self.kernel}{s}{a}"
        return text, f" initrd={self.initrd}" if self.initrd is not None else ""


@dataclass
class SubMenu:
    title: str
    items: list[Label | SubMenu] = field(default_factory=list)
    default: int | None = None  # MENU DEFAULT's position


@dataclass
class ExtlinuxConfig:
    """Everything read from the config and its includes."""

    path: str
    root: SubMenu = field(default_factory=lambda: SubMenu(""))
    hidden: list[Label] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)  # every bootable label, in order (find_label)
    default: str | None = None
    ui: str | None = None
    prompt: int = 0
    timeout: int = 0  # tenths of a second
    totaltimeout: int = 0
    ontimeout: str | None = None
    implicit: int = 1
    menu_hidden: bool = False
    master_passwd: str | None = None
    says: list[str] = field(default_factory=list)

    @property
    def cwd(self) -> str:
        return dirname(self.path)

    def find_label(self, command: str) -> Label | None:
        name = word(command)
        return next((lb for lb in self.labels if lb.label == name), None)


class _Parser:
    def __init__(self, files: ConfigFiles, cfg: ExtlinuxConfig) -> None:
        self.files, self.cfg = files, cfg
        self.ld: Label | None = None
        self.append: str | None = None
        self.stack: list[SubMenu] = [cfg.root]
        self.includes = 0

    def record(self) -> None:
        ld, self.ld = self.ld, None
        if ld is None:
            return
        ld.global_append = self.append
        if ld.disabled:
            return
        if len(self.cfg.labels) >= MAX_LABELS:
            raise LimitError(f"{self.cfg.path}: more than {MAX_LABELS} labels")
        self.cfg.labels.append(ld)
        if ld.hide:
            self.cfg.hidden.append(ld)
            return
        menu = self.stack[-1]
        menu.items.append(ld)
        if ld.menudefault:
            menu.default = len(menu.items) - 1

    def include(self, rest: str, depth: int, tag: str = "") -> None:
        path = join(self.cfg.cwd, word(rest))
        self.includes += 1
        if depth >= MAX_INCLUDE_DEPTH or self.includes > MAX_INCLUDES:
            raise LimitError(
                f"{path}: INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} or more than {MAX_INCLUDES}"
            )
        try:
            text = self.files.read(path)
        except NotFoundError:
            return  # SYSLINUX skips a missing include
        if tag:
            self.record()
            self.begin(tag)
        self.parse(text, depth + 1)
        if tag:
            self.record()
            self.end()

    def begin(self, tag: str) -> None:
        sub = SubMenu(tag)
        self.stack[-1].items.append(sub)
        self.stack.append(sub)

    def end(self) -> None:
        if len(self.stack) > 1:
            self.stack.pop()

    def parse(self, text: str, depth: int = 0) -> None:
        lines = []
        for raw in text.split("\n"):  # fgets into 4096 bytes, then cut at the first CR (and NUL)
            for k in range(0, max(len(raw), 1), MAX_LINE):
                lines.append(raw[k : k + MAX_LINE].split("\0", 1)[0].split("\r", 1)[0])
        it = iter(lines)
        for line in it:
            p = skip_blanks(line, 0)
            if (q := _looking_at(line, p, "menu")) is not None:
                self.menu_line(line, skip_blanks(line, q), depth)
            elif _looking_at(line, p, "text") is not None:
                for more in it:
                    if _looking_at(more, skip_blanks(more, 0), "endtext") is not None:
                        break
            else:
                self.line(line, p, depth)

    def menu_line(self, line: str, p: int, depth: int) -> None:
        def rest(kwd: str) -> str:
            return line[skip_blanks(line, p + len(kwd)) :]

        ld, menu = self.ld, self.stack[-1]
        if _looking_at(line, p, "label") is not None:
            if ld is not None:
                ld.menulabel = rest("label")
            elif len(self.stack) > 1:
                menu.title = rest("label")
        elif _looking_at(line, p, "title") is not None:
            menu.title = rest("title")
        elif _looking_at(line, p, "default") is not None:
            if ld is not None:
                ld.menudefault = True
            elif len(self.stack) > 1:
                parent = self.stack[-2]
                parent.default = len(parent.items) - 1
        elif _looking_at(line, p, "hide") is not None and ld is not None:
            ld.hide = True
        elif _looking_at(line, p, "passwd") is not None and ld is not None:
            ld.passwd = rest("passwd")
        elif (q := _looking_at(line, p, "master")) is not None:
            if _looking_at(line, skip_blanks(line, q), "passwd") is not None:
                self.cfg.master_passwd = line[skip_blanks(line, skip_blanks(line, q) + 6) :]
        elif (q := _looking_at(line, p, "include")) is not None:
            rest_text = line[skip_blanks(line, q) :]
            self.include(
                rest_text, depth, line[skip_blanks(line, skip_blanks(line, q) + len(word(rest_text))) :]
            )
        elif _looking_at(line, p, "hidden") is not None:
            self.cfg.menu_hidden = True
        elif _looking_at(line, p, "separator") is not None:
            self.record()
        elif any(
            _looking_at(line, p, k) is not None for k in ("disable", "disabled", "quit", "goto", "exit")
        ):
            if ld is not None:
                ld.disabled = True  # not a kernel: a separator, a menu jump or an exit
        elif _looking_at(line, p, "begin") is not None:
            self.record()
            self.begin(rest("begin"))
        elif _looking_at(line, p, "end") is not None:
            self.record()
            self.end()

    def line(self, line: str, p: int, depth: int) -> None:
        cfg, ld = self.cfg, self.ld

        def rest(q: int) -> str:
            return line[skip_blanks(line, q) :]

        if (q := _looking_at(line, p, "include")) is not None:
            self.include(rest(q), depth)
        elif (q := _looking_at(line, p, "append")) is not None:
            if ld is not None:
                ld.append = rest(q)
            else:
                self.append = rest(q)
        elif (q := _looking_at(line, p, "initrd")) is not None:
            if ld is not None:
                ld.initrd = rest(q)
        elif (q := _looking_at(line, p, "label")) is not None:
            self.record()
            name = word(rest(q))
            self.ld = Label(name, name)
        elif (kt := next((t for t in KERNEL_TYPES if _looking_at(line, p, t) is not None), None)) is not None:
            if ld is not None:
                ld.kernel, ld.ktype = rest(p + len(kt)), kt
        elif (q := _looking_at(line, p, "timeout")) is not None:
            cfg.timeout = _atoi(line[q:])
        elif (q := _looking_at(line, p, "totaltimeout")) is not None:
            cfg.totaltimeout = _atoi(line[q:])
        elif (q := _looking_at(line, p, "ontimeout")) is not None:
            cfg.ontimeout = rest(q)
        elif (q := _looking_at(line, p, "default")) is not None:
            cfg.default = rest(q)
        elif (q := _looking_at(line, p, "ui")) is not None:
            cfg.ui = rest(q)
        elif (q := _looking_at(line, p, "implicit")) is not None:
            cfg.implicit = _atoi(line[q:])
        elif (q := _looking_at(line, p, "prompt")) is not None:
            cfg.prompt = _atoi(line[q:])
        elif (q := _looking_at(line, p, "say")) is not None:
            cfg.says.append(line[q + 1 :])
        elif (kw := next((k for k in _UBOOT if _looking_at(line, p, k) is not None), None)) is not None:
            attr = _UBOOT[kw]
            if ld is not None and getattr(ld, attr) is None:
                setattr(ld, attr, rest(p + len(kw)))


def parse_extlinux(text: str, files: ConfigFiles, config_path: str) -> ExtlinuxConfig:
    """The config at `config_path` (text given) with its includes, as SYSLINUX's parse_configs."""
    cfg = ExtlinuxConfig(config_path)
    parser = _Parser(files, cfg)
    parser.parse(text)
    parser.record()
    return cfg
