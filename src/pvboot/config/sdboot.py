"""systemd-boot 252's reading of BLS type #1 entries and loader.conf, ported from src/boot/efi/boot.c.

Where it differs from GRUB's blscfg (see bls.py): blank and value-less lines are skipped rather than
ending the file, a value wrapped in double quotes loses them, the last title/version/linux/... wins, every
`options` line is joined with a space and the result is the command line verbatim (no variables), paths
are relative to the partition root with '/' or '\\' separators, an entry whose `linux` (or `efi`) file does
not exist or whose `architecture` is not this machine's is dropped, ids are the lower-cased file names
(with .conf), and boot counting (`name+LEFT-DONE.conf`) sorts exhausted entries last.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pvboot.config.source import ConfigFiles, join
from pvboot.config.vercmp import cmp, efi_fnmatch, strverscmp_improved
from pvboot.errors import LimitError, NotFoundError
from pvboot.limits import SDBOOT_MAX_ENTRIES as MAX_ENTRIES
from pvboot.menu import CHAINLOADER, LINUX, BootSpec, Entry, FileRef, Menu

INT_MAX = 0x7FFFFFFF
TIMEOUT_TYPE_MAX = 0xFFFFFFFF
TIMEOUT_MENU_FORCE = 0xFFFFFFFF


def _key_values(text: str) -> list[tuple[str, str]]:
    """boot.c line_get_key_value with separators " \\t"."""
    pairs = []
    for line in re.split(r"[\r\n]", text.split("\0", 1)[0]):
        line = line.strip(" \t")
        if not line or line.startswith("#"):
            continue
        cut = next((k for k, c in enumerate(line) if c in " \t"), -1)
        if cut < 0:
            continue
        value = line[cut + 1 :].lstrip(" \t")
        if value.startswith('"') and line.endswith('"'):
            value = value[1:-1]
        pairs.append((line[:cut], value))
    return pairs


def parse_sdboot_text(text: str) -> list[tuple[str, str]]:
    """An entry file's (key, value) lines as systemd-boot reads them."""
    return _key_values(text)


def _ascii_lower(text: str) -> str:
    """strtolower16: A-Z only."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _path(value: str) -> str:
    """xstra_to_path: rooted at the partition, '/' and '\\' both separate, repeated ones collapse."""
    return re.sub(r"/+", "/", "/" + value.replace("\\", "/"))


def _number(text: str) -> tuple[int, str] | None:
    """parse_number16 with a tail: at least one digit, no 64-bit overflow."""
    digits = re.match(r"[0-9]+", text)
    if not digits or int(digits.group()) >= 1 << 64:
        return None
    return int(digits.group()), text[digits.end() :]


@dataclass
class SdBootEntry:
    """One type #1 entry as systemd-boot holds it."""

    filename: str
    id: str
    kind: str  # LINUX or CHAINLOADER (an `efi` entry)
    loader: str
    title: str | None = None
    sort_key: str | None = None
    version: str | None = None
    machine_id: str | None = None
    devicetree: str | None = None
    initrds: list[str] = field(default_factory=list)
    options: str | None = None
    tries_left: int = -1
    tries_done: int = -1
    title_show: str = ""


def _parse_tries(entry: SdBootEntry) -> None:
    """config_entry_parse_tries: "+LEFT[-DONE]" right before the ".conf" suffix."""
    plus = entry.filename.rfind("+")
    if plus < 0:
        return
    left = _number(entry.filename[plus + 1 :])
    if left is None or left[0] > INT_MAX:
        return
    tries_left, rest = left
    tries_done = 0
    if rest.startswith("-"):
        done = _number(rest[1:])
        if done is None or done[0] > INT_MAX:
            return
        tries_done, rest = done
    if rest != ".conf":
        return
    entry.tries_left, entry.tries_done = tries_left, tries_done


def _type1(files: ConfigFiles, filename: str, text: str, architecture: str) -> SdBootEntry | None:
    """config_entry_add_type1: None when systemd-boot would not list the entry."""
    fields: dict[str, str] = {}
    kind = loader = None
    initrds: list[str] = []
    options: str | None = None
    for key, value in _key_values(text):
        if key in ("title", "sort-key", "version", "machine-id"):
            fields[key] = value
        elif key == "linux":
            kind, loader = LINUX, _path(value)
        elif key == "efi":
            kind, loader = CHAINLOADER, _path(value)
        elif key == "architecture":
            if value != architecture:
                return None
        elif key == "devicetree":
            fields[key] = _path(value)
        elif key == "initrd":
            initrds.append(_path(value))
        elif key == "options":
            options = value if options is None else f"{options} {value}"
    if kind is None or loader is None or not files.exists(loader):
        return None
    entry = SdBootEntry(
        filename=filename,
        id=_ascii_lower(filename),
        kind=kind,
        loader=loader,
        title=fields.get("title"),
        sort_key=fields.get("sort-key"),
        version=fields.get("version"),
        machine_id=fields.get("machine-id"),
        devicetree=fields.get("devicetree"),
        initrds=initrds,
        options=options,
    )
    _parse_tries(entry)
    return entry


def _strcmp16(a: str | None, b: str | None) -> int:
    if a is None or b is None:
        return cmp(a is not None, b is not None)
    return cmp(a, b)


def _compare(a: SdBootEntry, b: SdBootEntry) -> int:
    """config_entry_compare."""
    r = cmp(a.tries_left == 0, b.tries_left == 0)
    if r:
        return r
    r = cmp(a.sort_key is None, b.sort_key is None)
    if r:
        return r
    if a.sort_key is not None and b.sort_key is not None:
        r = _strcmp16(a.sort_key, b.sort_key) or _strcmp16(a.machine_id, b.machine_id)
        r = r or -strverscmp_improved(a.version, b.version)
        if r:
            return r
    r = -strverscmp_improved(a.id, b.id)
    if r or a.tries_left < 0 or b.tries_left < 0:
        return r
    return -cmp(a.tries_left, b.tries_left) or cmp(a.tries_done, b.tries_done)


def _generate_titles(entries: list[SdBootEntry]) -> None:
    """config_title_generate: make shown titles unique with version, machine id, then file name."""
    unique = [True] * len(entries)
    for e in entries:
        e.title_show = e.title if e.title is not None else e.id

    def all_unique() -> bool:
        ok = True
        for i in range(len(entries)):
            for k in range(i + 1, len(entries)):
                if entries[i].title_show == entries[k].title_show:
                    ok = unique[i] = unique[k] = False
        return ok

    suffixes: tuple[Callable[[SdBootEntry], str | None], ...] = (
        lambda e: e.version,
        lambda e: e.machine_id[:8] if e.machine_id is not None else None,
        lambda e: e.id,
    )
    for suffix in suffixes:
        if all_unique():
            return
        for i, e in enumerate(entries):
            if unique[i]:
                continue
            unique[i] = True
            extra = suffix(e)
            if extra is not None:
                e.title_show = f"{e.title_show} ({extra})"


def systemd_boot_entries(
    files: ConfigFiles, entries_dir: str, architecture: str = "x64"
) -> list[SdBootEntry]:
    """The entries of `entries_dir` systemd-boot lists, in its menu order (`architecture` is its
    EFI_MACHINE_TYPE_NAME: x64, ia32, aa64, arm)."""
    entries = []
    for name in files.listdir(entries_dir):
        if name.startswith(".") or name.startswith("auto-") or not name.lower().endswith(".conf"):
            continue
        try:
            text = files.read(join(entries_dir, name))
        except NotFoundError:
            continue  # a directory, or unreadable: file_read failed
        entry = _type1(files, name, text, architecture)
        if entry is not None:
            entries.append(entry)
        if len(entries) > MAX_ENTRIES:
            raise LimitError(f"{entries_dir}: more than {MAX_ENTRIES} BLS entries")
    entries.sort(key=functools.cmp_to_key(_compare))
    _generate_titles(entries)
    return entries


def _loader_conf(text: str | None) -> tuple[int, str | None, str]:
    """config_defaults_load_from_file: (timeout seconds, default pattern, where it came from)."""
    timeout, pattern, origin = 0, None, ""
    for key, value in _key_values(text or ""):
        if key == "timeout":
            if value == "menu-force":
                timeout = TIMEOUT_MENU_FORCE
            elif value == "menu-hidden":
                timeout = 0
            elif value.isdigit() and value.isascii() and int(value) <= TIMEOUT_TYPE_MAX:
                timeout = int(value)
        elif key == "default":
            if value.startswith("@") and value.lower() != "@saved":
                continue  # "Unsupported special entry identifier"
            pattern, origin = _ascii_lower(value), f"loader.conf: default {value}"
    return timeout, pattern, origin


def systemd_boot_menu(
    files: ConfigFiles, entries_dir: str, loader_conf_text: str | None, architecture: str = "x64"
) -> Menu:
    """The menu systemd-boot shows for these entries and loader.conf, with the entry it boots by default
    (`default` glob against the ids, else the first; `@saved` needs EFI variables a guest disk does not
    have, so it also means the first)."""
    entries = systemd_boot_entries(files, entries_dir, architecture)
    timeout, pattern, origin = _loader_conf(loader_conf_text)
    index = 0
    if pattern is None:
        origin = "no loader.conf default: the first entry"
    elif pattern == "@saved":
        origin += " (the saved entry is an EFI variable, absent here: the first entry)"
    else:
        found = next((i for i, e in enumerate(entries) if efi_fnmatch(pattern, e.id)), None)
        index = found if found is not None else 0
        origin += "" if found is not None else " (matches no entry: the first)"
    menu_entries = [
        Entry(
            title=e.title_show,
            id=e.id,
            source=(e.options or ""),
            boot=BootSpec(
                kind=e.kind,
                kernel=FileRef(None, e.loader),
                initrds=[FileRef(None, p) for p in e.initrds] if e.kind == LINUX else [],
                args=(e.options or "") if e.kind == LINUX else "",
                devicetree=FileRef(None, e.devicetree) if e.devicetree else None,
                loader="linux" if e.kind == LINUX else "efi",
            ),
            handle=e,
        )
        for e in entries
    ]
    return Menu(
        entries=menu_entries,
        default=str(index) if entries else None,
        timeout=None if timeout == TIMEOUT_MENU_FORCE else timeout,
        timeout_style="hidden" if timeout == 0 else "menu",
        source=entries_dir,
        kind="bls",
        default_origin=origin,
    )
