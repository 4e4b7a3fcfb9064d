"""Boot Loader Specification entries (`loader/entries/*.conf`), read the two ways real loaders read them.

Fedora/RHEL GRUB's `blscfg` (grub-core/commands/blscfg.c in rhboot/grub2) and systemd-boot 252
(src/boot/efi/boot.c) disagree on parsing, ordering, the default and the command line, and pvboot must boot
what the guest's loader would, so each is ported from its source:

- blscfg: a line is split at its first space (else tab); a blank or value-less line ends the file; the
  *first* `linux`/`title`/`options`/`devicetree` counts; entries sort newest first by rpm version compare
  of the file names; `options` is expanded by blscfg itself (`$var` from GRUB's environment, falling back
  to `$default_kernelopts` when there is no options line or it expands to nothing) into a generated
  menu entry `linux ($root)<linux> <options>` that GRUB's script parser then splits into words.
- systemd-boot: blank lines and lines without a value are skipped; the *last* title/version/... counts;
  every `options` line is joined with a space and passed verbatim; entries whose `linux` file is missing
  or whose `architecture` differs are dropped; the order is sort-key, machine-id, version (newest first),
  then file name; the default is loader.conf's `default` glob, else the first entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pvboot.config.grub2.words import loader_cmdline, split_command
from pvboot.config.sdboot import (  # systemd-boot's reading, re-exported here
    SdBootEntry,
    parse_sdboot_text,
    systemd_boot_entries,
    systemd_boot_menu,
)
from pvboot.config.source import ConfigFiles, join
from pvboot.config.vercmp import blscfg_cmp
from pvboot.errors import GuestDataError, LimitError, NotFoundError
from pvboot.limits import BLSCFG_MAX_ENTRIES as MAX_ENTRIES
from pvboot.menu import LINUX, BootSpec, Entry, FileRef, grub_strtoul

__all__ = [
    "BlsEntry",
    "BlscfgMenuentry",
    "BlscfgState",
    "SdBootEntry",
    "blscfg_command",
    "blscfg_entries",
    "blscfg_entry",
    "blscfg_menuentry",
    "parse_blscfg_text",
    "parse_sdboot_text",
    "read_blscfg_dir",
    "systemd_boot_entries",
    "systemd_boot_menu",
]

GRUB_DEFAULT_DIR = "/loader/entries/"
GRUB_FALLBACK_DIR = "/boot/loader/entries/"


@dataclass
class BlsEntry:
    """One entry file as a loader parsed it: its name and its key/value lines in file order."""

    filename: str  # as listed, with its .conf
    keyvals: list[tuple[str, str]]

    @property
    def stem(self) -> str:
        return self.filename[:-5]

    def first(self, key: str) -> str | None:
        return next((v for k, v in self.keyvals if k == key), None)

    def last(self, key: str) -> str | None:
        return next((v for k, v in reversed(self.keyvals) if k == key), None)

    def every(self, key: str) -> list[str]:
        return [v for k, v in self.keyvals if k == key]


def _c_lines(text: str) -> list[str]:
    """grub_file_getline: '\\r' dropped everywhere, lines end at '\\n', a NUL ends the C string."""
    lines = text.replace("\r", "").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.split("\0", 1)[0] for line in lines]


def parse_blscfg_text(text: str) -> list[tuple[str, str]]:
    """blscfg.c read_entry's line loop."""
    pairs = []
    for line in _c_lines(text):
        line = line.lstrip(" \t")
        if line.startswith("#"):
            continue
        sep = line.find(" ")
        if sep < 0:
            sep = line.find("\t")
        if sep < 0 or sep + 1 == len(line):
            break  # GRUB stops reading the file here
        pairs.append((line[:sep], line[sep + 1 :].lstrip(" \t")))
    return pairs


def read_blscfg_dir(files: ConfigFiles, dirname: str) -> list[BlsEntry]:
    """The entry files of `dirname` in directory order, parsed as blscfg does; NotFoundError when the
    directory cannot be read (blscfg then tries its fallback directory)."""
    entries = []
    for name in files.listdir(dirname):
        if name.startswith(".") or len(name) <= 5 or not name.endswith(".conf"):
            continue
        try:
            text = files.read(join(dirname, name))
        except NotFoundError:
            continue  # grub_file_open failed: the file is skipped
        entries.append(BlsEntry(name, parse_blscfg_text(text)))
        if len(entries) > MAX_ENTRIES:
            raise LimitError(f"{dirname}: more than {MAX_ENTRIES} BLS entries")
    return entries


def blscfg_expand(value: str | None, env: Mapping[str, str]) -> str | None:
    """blscfg.c expand_val, quirks included: each expanded `$var` is followed by a space, an unset one
    vanishes, a one-character trailing field is dropped, and None comes back when nothing was kept."""
    if value is None:
        return None
    buf: str | None = None
    start = end = 0
    is_var = False

    def append(buf: str | None, is_var: bool, s: int, e: int) -> str | None:
        text = value[s : e + 1] if e >= s else ""
        if not is_var:
            return (buf or "") + text
        got = env.get(text)
        return buf if got is None else (buf or "") + got + " "

    for i, c in enumerate(value):
        if c == "$" and value[end] != "\\":
            if start != end:
                buf = append(buf, is_var, start, end)
                if buf is None:
                    return None
            is_var = True
            start = i + 1
        elif is_var and not (c.isascii() and c.isalnum()) and c != "_":
            buf = append(buf, True, start, end)
            is_var = False
            start = i + 1 if c == " " else i
        end = i
    if start != end:
        buf = append(buf, is_var, start, end)
    return buf


def _prefix(path: str) -> str:
    """The directory part of a path up to its last '/', as blscfg computes it (the whole string when
    there is no '/')."""
    cut = path.rfind("/")
    return path[: cut + 1] if cut >= 0 else path


@dataclass
class BlscfgMenuentry:
    """What blscfg.c create_entry hands to grub_normal_add_menu_entry."""

    title: str
    extra_args: list[str]  # grub_arg lines: the entry's positional parameters after the title
    classes: list[str]
    id: str
    users: str | None
    hotkey: str | None
    source: str
    linux: str
    options: str | None
    initrds: list[str]  # early_initrd files (with their prefix) first, then the entry's
    devicetree: str | None


def blscfg_menuentry(entry: BlsEntry, env: Mapping[str, str]) -> BlscfgMenuentry | None:
    """The menu entry blscfg generates for `entry` with GRUB's environment `env`; None without `linux`."""
    clinux = entry.first("linux")
    if clinux is None:
        return None
    ident = entry.stem
    dot = ident.find(".conf")
    if dot >= 0 and dot + 5 != len(ident):
        raise LimitError(f"BLS entry {entry.filename}: GRUB's blscfg loops forever on this file name")
    if dot >= 0:
        ident = ident[:dot]
    title = entry.first("title")
    options = blscfg_expand(entry.first("options"), env)
    if options is None:
        options = blscfg_expand(env.get("default_kernelopts"), env)
    initrds = entry.every("initrd")
    devicetree = blscfg_expand(entry.first("devicetree"), env)
    dt_prefix = ""
    if devicetree is None:
        devicetree = blscfg_expand(env.get("devicetree"), env)
        dt_prefix = _prefix(clinux)
    files = list(initrds)
    early = env.get("early_initrd")
    if early is not None:
        base = _prefix(initrds[0] if initrds else clinux)
        files = [base + name for name in early.split(" ")] + files
    src = "savedefault\n" if env.get("save_default") == "true" else ""
    src += "load_video\nset gfxpayload=keep\ninsmod gzio\n"
    src += f"linux ($root){clinux}{'' if options is None else ' ' + options}\n"
    if files:
        src += "initrd" + "".join(f" ($root){f}" for f in files) + "\n"
    if devicetree is not None:
        devicetree = dt_prefix + devicetree
        src += f"devicetree ($root){devicetree}\n"
    return BlscfgMenuentry(
        title=title if title is not None else clinux,
        extra_args=entry.every("grub_arg"),
        classes=entry.every("grub_class"),
        id=ident,
        users=blscfg_expand(entry.first("grub_users"), env),
        hotkey=entry.first("grub_hotkey"),
        source=src,
        linux=clinux,
        options=options,
        initrds=files,
        devicetree=devicetree,
    )


def blscfg_boot(me: BlscfgMenuentry, env: Mapping[str, str]) -> BootSpec:
    """What GRUB loads when the generated entry runs: its lines split by GRUB's script rules, the
    kernel command line joined by GRUB's linux loader. Paths are on `$root` (FileRef volume None)."""
    spec = BootSpec(loader="linux")
    try:
        words = split_command(me.linux + ("" if me.options is None else " " + me.options), env)
        initrds = split_command(" ".join(me.initrds), env)
        dt_words = split_command(me.devicetree, env) if me.devicetree is not None else []
    except GuestDataError as exc:
        spec.errors.append(str(exc))
        return spec
    if not words or not words[0].startswith("/"):
        spec.errors.append(f"GRUB cannot open the kernel {words[0] if words else ''!r}: invalid file name")
        return spec
    spec.kind, spec.kernel, spec.args = LINUX, FileRef(None, words[0]), loader_cmdline(words[1:])
    bad = [w for w in initrds if not w.startswith("/")]
    if bad:
        spec.errors.append(f"GRUB cannot open the initrd {bad[0]!r}: invalid file name")
    else:
        spec.initrds = [FileRef(None, w) for w in initrds]
    if dt_words:
        spec.devicetree = FileRef(None, dt_words[0])
    return spec


def blscfg_entry(entry: BlsEntry, env: Mapping[str, str]) -> Entry | None:
    """`entry` as a pvboot menu Entry with its BootSpec filled in; None when blscfg skips it."""
    me = blscfg_menuentry(entry, env)
    if me is None:
        return None
    return Entry(
        title=me.title,
        id=me.id,
        classes=me.classes,
        users=me.users,
        unrestricted=me.users is None,  # grub_normal_add_menu_entry restricts only entries with users
        hotkey=me.hotkey,
        source=me.source,
        boot=blscfg_boot(me, env),
        handle=entry,
    )


@dataclass
class BlscfgState:
    """blscfg.c keeps one static entry list across `blscfg` calls: new files are inserted in order (an
    entry comparing equal to a listed one is dropped) and each entry is shown at most once."""

    entries: list[BlsEntry] = field(default_factory=list)
    shown: list[bool] = field(default_factory=list)

    def add(self, entry: BlsEntry) -> None:
        """bls_add_entry: before the first listed entry it is newer than."""
        for k, listed in enumerate(self.entries):
            rc = blscfg_cmp(entry.stem, listed.stem)
            if rc == 0:
                return
            if rc == 1:
                self.entries.insert(k, entry)
                self.shown.insert(k, False)
                return
        if len(self.entries) >= MAX_ENTRIES:
            raise LimitError(f"more than {MAX_ENTRIES} BLS entries")
        self.entries.append(entry)
        self.shown.append(False)

    def load(self, files: ConfigFiles, path: str | None, env: Mapping[str, str]) -> None:
        """bls_load_entries: `path` is blscfg's "(dev)dir" or "(dev)file.conf" argument (files must
        already be that device's) or None for $blsdir, else /loader/entries/, else /boot/loader/entries/."""
        if path is not None:
            rest = path[path.find(")") + 1 :] if ")" in path else None
            if rest is None:
                raise GuestDataError(f"blscfg {path}: Filepath isn't correct")
            if path.endswith(".conf"):
                name = rest.rstrip("/").rsplit("/", 1)[-1]
                self.add(BlsEntry(name, parse_blscfg_text(files.read(rest))))
                return
            dirs = [rest]
        else:
            dirs = [env.get("blsdir", GRUB_DEFAULT_DIR), GRUB_FALLBACK_DIR]
        for dirname in dirs:
            try:
                found = read_blscfg_dir(files, dirname)
            except NotFoundError:
                continue
            for entry in found:
                self.add(entry)
            return

    def select(
        self, show_default: bool, show_non_default: bool, entry_id: str | None, default: str | None
    ) -> list[BlsEntry]:
        """bls_create_entries: the not yet shown entries this call adds, in list order (marked shown)."""
        picked: list[BlsEntry] = []
        for idx, entry in enumerate(self.entries):
            if self.shown[idx]:
                continue
            is_default = _is_default_entry(default, entry, idx)
            if (
                (show_default and is_default)
                or (show_non_default and not is_default)
                or (entry_id is not None and entry_id == entry.stem)
            ):
                picked.append(entry)
                self.shown[idx] = True
        return picked


def _is_default_entry(default: str | None, entry: BlsEntry, idx: int) -> bool:
    if default is None:
        return False
    if default == entry.stem or default == entry.first("title"):
        return True
    text = default.lstrip(" \t\n\r\f\v")
    negative = text.startswith("-")
    number = grub_strtoul(text[1:] if negative else text)
    if number is None:
        return False
    return (-number if negative else number) == idx


def blscfg_command(
    state: BlscfgState, files: ConfigFiles, args: Sequence[str], env: Mapping[str, str]
) -> list[Entry]:
    """GRUB's `blscfg [default | non-default | ID | (dev)path]`: the menu entries this call adds."""
    show_default = show_non_default = True
    entry_id = path = None
    if len(args) == 1:
        if args[0] == "default":
            show_non_default = False
        elif args[0] == "non-default":
            show_default = False
        elif args[0].startswith("("):
            path = args[0]
        else:
            entry_id, show_default, show_non_default = args[0], False, False
    state.load(files, path, env)
    picked = state.select(show_default, show_non_default, entry_id, env.get("default"))
    return [e for e in (blscfg_entry(b, env) for b in picked) if e is not None]


def blscfg_entries(files: ConfigFiles, entries_dir: str, env: Mapping[str, str]) -> list[Entry]:
    """Every entry of `entries_dir` as Fedora/RHEL GRUB's `blscfg` lists them, newest first."""
    state = BlscfgState()
    for entry in read_blscfg_dir(files, entries_dir):
        state.add(entry)
    picked = state.select(True, True, None, None)
    return [e for e in (blscfg_entry(b, env) for b in picked) if e is not None]
