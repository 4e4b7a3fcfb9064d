"""The menu model every config reader produces, and GRUB's rules for which entry boots.

An `Entry` is what the admin sees (title, id, class, submenu children) plus, once its commands have run,
a `BootSpec`: what GRUB's loaders would load. Default selection follows grub-core/normal/menu.c: an entry
is named by id, by title, or by index; `a>b` walks into submenus; an invalid default falls back to 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pvboot.config.grub2.numbers import strtoul

# BootSpec.kind values
LINUX = "linux"  # linux/linux16/linuxefi (+ initrd): a PV/PVH guest kernel
MULTIBOOT = "multiboot"  # multiboot/multiboot2 + module: a Xen dom0 or other multiboot kernel
CHAINLOADER = "chainloader"
OTHER = "other"  # knetbsd, kfreebsd, appleloader...
NOTHING = "nothing"  # the entry loads no kernel


@dataclass
class FileRef:
    """A file named by a config: the volume it resolves on (GRUB device name) and its path there; or a
    byte range of that file (`span`: offset, length), for a loader that boots a part of a file (a
    Unified Kernel Image's .linux, .initrd and .cmdline sections), with the name the range goes by."""

    volume: str | None
    path: str
    span: tuple[int, int] | None = None
    span_name: str = ""

    def display(self) -> str:
        where = f"({self.volume}){self.path}" if self.volume else self.path
        if self.span is None:
            return where
        offset, length = self.span
        return f"{where}:{self.span_name or 'bytes'}[{offset}+{length}]"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"volume": self.volume, "path": self.path}
        if self.span is not None:
            doc.update(offset=self.span[0], length=self.span[1], section=self.span_name or None)
        return doc


@dataclass
class BootSpec:
    """What an entry loads once its commands have run."""

    kind: str = NOTHING
    kernel: FileRef | None = None
    initrds: list[FileRef] = field(default_factory=list)
    args: str = ""
    devicetree: FileRef | None = None
    loader: str = ""  # the command that loaded the kernel (linux, linux16, multiboot2, ...)
    modules: list[str] = field(default_factory=list)  # multiboot modules, for messages
    errors: list[str] = field(default_factory=list)  # what went wrong while the entry ran
    # GRUB 2 loader modules holding a kernel ("linux", "linux16", "multiboot", "multiboot2"): their own
    # `loaded` state beside this slot (see config/grub2/loader.py); not part of the answer
    loaded_modules: set[str] = field(default_factory=set, compare=False, repr=False)

    @property
    def pv_bootable(self) -> bool:
        return self.kind == LINUX and self.kernel is not None

    def why_not_bootable(self) -> str:
        if self.kind == MULTIBOOT:
            name = self.kernel.display() if self.kernel else "?"
            return f"it loads a {self.loader or 'multiboot'} kernel ({name}), e.g. Xen itself"
        if self.kind == CHAINLOADER:
            return "it chainloads another boot loader"
        if self.kind == OTHER:
            return f"it uses the {self.loader} loader, which is not a Linux PV kernel"
        if self.errors:  # the last error, and the one that made it (a missing kernel file)
            first = self.errors[0]
            return self.errors[-1] if len(self.errors) == 1 else f"{first}; then: {self.errors[-1]}"
        return "it loads no kernel"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "loader": self.loader,
            "kernel": self.kernel.to_json() if self.kernel else None,
            "initrds": [i.to_json() for i in self.initrds],
            "args": self.args,
            "devicetree": self.devicetree.to_json() if self.devicetree else None,
            "errors": list(self.errors),
        }


@dataclass
class Entry:
    """One menu line: a bootable entry or a submenu."""

    title: str
    id: str = ""  # GRUB's --id; empty when none (GRUB then matches the title only)
    classes: list[str] = field(default_factory=list)
    users: str | None = None
    unrestricted: bool = False
    hotkey: str | None = None
    submenu: bool = False
    children: list[Entry] = field(default_factory=list)
    source: str = ""  # the entry's commands, as the editor shows them
    boot: BootSpec | None = None
    handle: Any = None  # reader-private data needed to run the entry later (not serialised)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "title": self.title,
            "id": self.id,
            "classes": self.classes,
            "users": self.users,
            "unrestricted": self.unrestricted,
            "hotkey": self.hotkey,
            "source": self.source,
        }
        if self.submenu:
            doc["submenu"] = [child.to_json() for child in self.children]
        elif self.boot is not None:
            doc["boot"] = self.boot.to_json()
            doc["pv_bootable"] = self.boot.pv_bootable
        return doc


@dataclass
class Menu:
    """A whole menu with its default as the config set it."""

    entries: list[Entry]
    default: str | None = None  # the raw value of GRUB's `default` (or the reader's equivalent)
    fallback: str | None = None
    timeout: int | None = None  # seconds; None = no timeout (wait), as GRUB's unset/-1
    timeout_style: str = "menu"
    source: str = ""  # "(hd0,msdos1)/boot/grub/grub.cfg"
    kind: str = ""  # grub2, bls, extlinux, grub-legacy
    default_origin: str = ""  # where the default was set, for --debug ("line 12: set default=...")
    superusers: str | None = None  # GRUB's `superusers`: when set, editing and locked entries need a password
    passwords: dict[str, list[str]] = field(
        default_factory=dict
    )  # user -> [kind, secret] (plain, pbkdf2, md5crypt)


@dataclass
class Choice:
    """A path through the menu (an index per level), the titles along it, and why it was chosen."""

    path: list[int]
    titles: list[str]
    reasons: list[str] = field(default_factory=list)


def grub_strtoul(text: str) -> int | None:
    """GRUB 2.06's grub_strtoul(text, NULL, 0) cast to int: a leading number (0x hex, 0 octal) or None
    when there is none; trailing text is ignored, overflow of 32 bits (i386-pc's long) gives -1."""
    return strtoul(text)[0]


def menuentry_eq(name: str, spec: str) -> bool:
    """GRUB's menuentry_eq: `spec` up to its first lone '>' equals `name` ('>>' is a literal '>')."""
    i = j = 0
    while True:
        lone = j < len(spec) and spec[j] == ">" and spec[j + 1 : j + 2] != ">"
        if lone:
            return i == len(name)
        if j < len(spec) and spec[j] == ">":
            j += 1
        a = name[i] if i < len(name) else ""
        b = spec[j] if j < len(spec) else ""
        if a != b:
            return False
        if a == "":
            return True
        i += 1
        j += 1


def entry_number(entries: list[Entry], value: str | None, fedora: bool = False) -> int:
    """GRUB 2.06's get_entry_number: the index `value` names, or -1 (the caller then takes 0).

    `fedora`: the Fedora/RHEL GRUB that has `blscfg` (rhboot's get_entry_number_helper): ids first,
    then titles, and a number only when nothing follows it, so a BLS id such as `3f2a…-6.1.0` (a
    machine-id starting with a digit) names its entry instead of entry 3."""
    if value is None:
        return -1
    if fedora:
        return _fedora_entry_number(entries, value)
    number = grub_strtoul(value)
    if number is not None:
        return number
    for index, entry in enumerate(entries):
        # An entry without --id has its title as id (commands/menuentry.c: `id ? : menu_title`).
        if menuentry_eq(entry.title, value) or menuentry_eq(entry.id or entry.title, value):
            return index
    return -1


_WHOLE_NUMBER = re.compile(r"[ \t\n\r\f\v]*(0x[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _fedora_entry_number(entries: list[Entry], value: str) -> int:
    word = value.split(None, 1)[0] if value.strip() else ""
    for index, entry in enumerate(entries):
        if entry.id and menuentry_eq(entry.id, value[: value.find(word) + len(word)] if word else value):
            return index
    for index, entry in enumerate(entries):
        if menuentry_eq(entry.title, value):
            return index
    if _WHOLE_NUMBER.fullmatch(value):
        number = grub_strtoul(value)
        return -1 if number is None else number
    return -1


def path_rest(value: str | None) -> str | None:
    """What GRUB sets `default` to inside a submenu: the text after the first lone '>', else unset."""
    if not value:
        return None
    j = 0
    while j < len(value):
        if value[j] == ">":
            if value[j + 1 : j + 2] == ">":
                j += 2
                continue
            return value[j + 1 :] or None
        j += 1
    return None
