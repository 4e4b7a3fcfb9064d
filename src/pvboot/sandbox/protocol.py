"""The parent↔reader protocol: every request, every reply, their wire form, and the parent's checks.

The wire is what `sandbox/channel.py` frames: one JSON object per message, `{"op": ...}` for a request,
`{"type": ...}` for a reply (`{"type": "error", "message": ...}` for a failure, raised by
`Child.request`). The reader builds the typed replies below and sends `reply.to_json()`; the root
parent turns what it receives into the typed reply with `validate_reply` (through `Reader`), which
raises GuestDataError or LimitError for anything else. Everything the reader says is guest-controlled
(a subverted reader replies what it likes), so these are all the checks on it, in one place:

- before decoding (`decode_reply`; the length header, 4 MiB for `menu` and 1 MiB for any other reply
  (`Limits.reply_bounds`), is checked by the channel before the payload is read): the payload is ASCII,
  holds at most `max_reply_items` values nested at most `max_reply_depth` deep, and is a JSON object;
- the reply's `type` is the one its request expects (an unknown request is refused on both sides);
- every field has its type: strings are `str` (names, paths and kinds of volumes and configs at most
  64 Ki characters; guest text such as titles, commands and command output is bounded only by the
  reply's size, and sanitised where it is shown), sizes, offsets and counts
  are non-negative integers (not booleans), flags booleans, lists lists, objects objects; a list holds
  at most `MAX_LIST` items (the volumes, configs, a BLS directory's files, a path);
- strings that reach libxl's answer (kernel and ramdisk paths, the entry's command line, /xenkernel's
  volume and paths) are printable: no NUL, newline, control or format character (XSA-198);
- titles and reasons are never refused but sanitised (non-printable characters become `?`, at most
  1024 characters, at most `MAX_REASONS` reasons); an entry path that is not a list of integers is
  dropped; the kernel verdict and device-tree facts are type-checked and made printable
  (`kernel.files.clean_reply_fields`, the judge's verdict too);
- a config's digests are 64 lowercase hex digits (SHA-256), its sizes non-negative integers;
- the menu's entries are objects with a string title, a list submenu or a `boot` object whose kernel
  and initrds are `{volume, path}` references, nested at most `MAX_MENU_DEPTH` deep;
- the sizes the reader reports equal the copies' real sizes (`fstat`), an empty kernel is refused,
  and every path in the answer is a file the parent itself created in the output directory and still
  that very file (`lstat` against `fstat` of the parent's fd): `copy_size`, `created_file`.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from pvboot.errors import GuestDataError, LimitError
from pvboot.kernel.files import clean_reply_fields
from pvboot.limits import PROTOCOL_MAX_MENU_DEPTH as MAX_MENU_DEPTH
from pvboot.limits import ReplyBounds

if TYPE_CHECKING:
    from pvboot.outfiles import OutputFiles

JsonObject = dict[str, Any]

MAX_REPLY_STRING = 64 * 1024  # characters: far above any real command line, path or title
MAX_TITLE = 1024  # characters of a sanitised title or reason
MAX_REASONS = 32  # why-lines of a boot reply kept for the JSON answer
MAX_LIST = 100_000  # items of any list in a reply (each item is a value counted by the bounds too)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_WHO = "the reading process"

# -- requests (parent → reader) ---------------------------------------------------------------------


@dataclass(frozen=True)
class InspectRequest:
    """The disk's volumes and boot configs; `facts`: with sizes and SHA-256 (--report)."""

    facts: bool = False
    op = "inspect"

    def to_json(self) -> JsonObject:
        return {"op": self.op, "facts": True} if self.facts else {"op": self.op}


@dataclass(frozen=True)
class XenkernelRequest:
    """Where XenServer's `/xenkernel` is, if anywhere."""

    op = "xenkernel"

    def to_json(self) -> JsonObject:
        return {"op": self.op}


@dataclass(frozen=True)
class MenuRequest:
    """The menu, its default and why."""

    op = "menu"

    def to_json(self) -> JsonObject:
        return {"op": self.op}


@dataclass(frozen=True)
class IsconfigRequest:
    """`--isconfig`: what the host config file given as the image boots."""

    op = "isconfig"

    def to_json(self) -> JsonObject:
        return {"op": self.op}


@dataclass(frozen=True)
class CommandRequest:
    """One line of the console's GRUB command line."""

    line: str
    op = "command"

    def to_json(self) -> JsonObject:
        return {"op": self.op, "line": self.line}


@dataclass(frozen=True)
class ExtractRequest:
    """Copy named files (--kernel/--ramdisk, /xenkernel) without a menu."""

    kernel: str
    initrds: list[str] = field(default_factory=list)
    volume: str | None = None
    op = "extract"

    def to_json(self) -> JsonObject:
        doc: JsonObject = {"op": self.op, "kernel": self.kernel, "initrds": list(self.initrds)}
        if self.volume:
            doc["volume"] = self.volume
        return doc


@dataclass(frozen=True)
class BootEntryRequest:
    """Choose an entry, check it and copy its files: the default (all None), `entry` (--entry or a
    title rule's choice, with its `reason`), `path` (the console's pick; with `source`, edited), or
    `console` (what the console's command line loaded)."""

    entry: str | None = None
    reason: str | None = None
    path: list[int] | None = None
    source: str | None = None
    console: bool = False
    op = "boot"

    def to_json(self) -> JsonObject:
        if self.console:
            return {"op": self.op, "console": True}
        if self.path is not None:
            doc: JsonObject = {"op": self.op, "path": list(self.path)}
            if self.source is not None:
                doc["source"] = self.source
            return doc
        doc = {"op": self.op, "entry": self.entry}
        if self.reason:
            doc["reason"] = self.reason
        return doc


Request = (
    InspectRequest
    | XenkernelRequest
    | MenuRequest
    | IsconfigRequest
    | CommandRequest
    | ExtractRequest
    | BootEntryRequest
)


def decode_request(doc: JsonObject) -> Request:
    """A request as the reader receives it (from its own parent: malformed means a bug, still refused)."""
    op = doc.get("op")
    if op == "inspect":
        return InspectRequest(bool(doc.get("facts")))
    if op == "xenkernel":
        return XenkernelRequest()
    if op == "menu":
        return MenuRequest()
    if op == "isconfig":
        return IsconfigRequest()
    if op == "command":
        return CommandRequest(str(doc.get("line", "")))
    if op == "extract":
        volume = doc.get("volume")
        return ExtractRequest(
            str(doc["kernel"]), [str(p) for p in doc.get("initrds", [])], str(volume) if volume else None
        )
    if op == "boot":
        path = doc.get("path")
        source, reason = doc.get("source"), doc.get("reason")
        return BootEntryRequest(
            entry=doc.get("entry"),
            reason=str(reason) if reason else None,
            path=None if path is None else [int(i) for i in path],
            source=None if source is None else str(source),
            console=bool(doc.get("console")),
        )
    raise GuestDataError(f"unknown request {op!r}")


# -- replies (reader → parent) ----------------------------------------------------------------------


@dataclass(frozen=True)
class InspectReply:
    """The disk's volumes ({name, offset, size, fstype[, uuid, label][, error]}) and boot configs
    ({kind, volume, path}, with --report {size, sha256[, sha256_of_first]} or {files: {name: facts}}),
    checked, in their wire form (the listing and the report print them as they are)."""

    volumes: list[JsonObject] = field(default_factory=list)
    configs: list[JsonObject] = field(default_factory=list)
    type = "inspect"

    def to_json(self) -> JsonObject:
        return {"type": self.type, "volumes": self.volumes, "configs": self.configs}


@dataclass(frozen=True)
class XenKernel:
    """XenServer's `/xenkernel` (and `/xeninitrd`) on a volume."""

    volume: str
    kernel: str
    initrd: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"volume": self.volume, "kernel": self.kernel, "initrd": self.initrd}


@dataclass(frozen=True)
class XenkernelReply:
    found: XenKernel | None
    type = "xenkernel"

    def to_json(self) -> JsonObject:
        return {"type": self.type, "found": self.found.to_json() if self.found else None}


@dataclass(frozen=True)
class IsconfigReply:
    """What a host config file boots (for the terminal: cleaned by the parent when printed)."""

    kind: str = ""
    title: str = ""
    kernel: str | None = None
    initrds: list[str] = field(default_factory=list)
    args: str = ""
    bootable: bool = False
    why: str = ""
    type = "isconfig"

    def to_json(self) -> JsonObject:
        return {
            "type": self.type,
            "kind": self.kind,
            "title": self.title,
            "kernel": self.kernel,
            "initrds": list(self.initrds),
            "args": self.args,
            "bootable": self.bootable,
            "why": self.why,
        }


@dataclass(frozen=True)
class DefaultChoice:
    """The entry the boot loader would take, as a `1>2` path, its titles and why."""

    path: list[int] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> JsonObject:
        return {"path": list(self.path), "titles": list(self.titles), "reasons": list(self.reasons)}


@dataclass(frozen=True)
class MenuReply:
    """The menu as the guest's boot loader shows it. `entries` are `menu.Entry.to_json()` documents
    (checked: see `_entries`), which the listing prints and the console draws as they are; `passwords`
    and `entry_auth` are the console's (never printed: `listing.without_secrets`)."""

    source: str = ""
    kind: str = ""
    config: JsonObject | None = None
    timeout: int | None = None
    timeout_style: str | None = None
    entries: list[JsonObject] = field(default_factory=list)
    superusers: str | None = None
    passwords: JsonObject = field(default_factory=dict)
    default: DefaultChoice = field(default_factory=DefaultChoice)
    entry_auth: JsonObject | None = None  # GRUB legacy's per-entry `password`/`lock` (config/legacyauth.py)
    type = "menu"

    def to_json(self) -> JsonObject:
        doc: JsonObject = {
            "type": self.type,
            "config": self.config,
            "source": self.source,
            "kind": self.kind,
            "timeout": self.timeout,
            "timeout_style": self.timeout_style,
            "entries": self.entries,
            "superusers": self.superusers,
            "passwords": self.passwords,
            "default": self.default.to_json(),
        }
        if self.entry_auth is not None:
            doc["entry_auth"] = self.entry_auth
        return doc


@dataclass(frozen=True)
class CommandReply:
    """One command line's output and status; `boot`: it armed a boot (`BootEntryRequest(console=True)`)."""

    output: str = ""
    status: int = 0
    boot: bool = False
    type = "command"

    def to_json(self) -> JsonObject:
        return {"type": self.type, "output": self.output, "status": self.status, "boot": self.boot}


@dataclass(frozen=True)
class BootReply:
    """The files copied for a boot (or an extract): their guest paths, the sizes written, the entry
    chosen (`title` None for an extract) and the kernel stage's verdict (`kernel.files`)."""

    kernel_source: str = ""
    ramdisk_sources: list[str] = field(default_factory=list)
    kernel_size: int | None = None
    ramdisk_size: int | None = None
    devicetree_size: int | None = None
    args: str = ""
    title: str | None = None
    path: list[int] | None = None
    reasons: list[str] = field(default_factory=list)
    kernel_deferred: bool = False  # copied unjudged: the parent settles the verdict (kernel/judge.py)
    kernel_info: JsonObject | None = None
    warnings: list[str] = field(default_factory=list)
    devicetree_source: str | None = None
    devicetree_info: JsonObject | None = None
    type = "extracted"

    def to_json(self) -> JsonObject:
        doc: JsonObject = {
            "type": self.type,
            "kernel_source": self.kernel_source,
            "ramdisk_sources": list(self.ramdisk_sources),
            "args": self.args,
            "reasons": list(self.reasons),
            "kernel_deferred": self.kernel_deferred,
            "kernel_info": self.kernel_info,
            "warnings": list(self.warnings),
            "devicetree_source": self.devicetree_source,
            "devicetree_info": self.devicetree_info,
        }
        for key in ("kernel_size", "ramdisk_size", "devicetree_size"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        if self.title is not None:
            doc.update(title=self.title, path=self.path)
        return doc

    def kernel_fields(self) -> JsonObject:
        """The kernel stage's fields for the JSON answer (already checked)."""
        return {
            "kernel_info": self.kernel_info,
            "warnings": list(self.warnings),
            "devicetree_source": self.devicetree_source,
            "devicetree_info": self.devicetree_info,
        }


@dataclass(frozen=True)
class ErrorReply:
    """The reader's one-line reason for failing a request."""

    message: str
    type = "error"

    def to_json(self) -> JsonObject:
        return {"type": self.type, "message": self.message}


Reply = InspectReply | XenkernelReply | IsconfigReply | MenuReply | CommandReply | BootReply | ErrorReply

# -- the parent's checks ----------------------------------------------------------------------------


def decode_reply(payload: bytes, bounds: ReplyBounds) -> JsonObject:
    """`payload` decoded, after checking (without decoding) that it holds at most `bounds.items` values
    nested at most `bounds.depth` deep. The reader writes ASCII (ensure_ascii), so anything else is
    malformed, and the scan below sees every structural byte as what it is."""
    if not payload.isascii():
        raise GuestDataError("malformed reply from the process reading the guest disk (not ASCII)")
    skeleton = _STRING.sub(b'""', payload)
    items = skeleton.count(b",") + skeleton.count(b"[") + skeleton.count(b"{")
    if items > bounds.items:
        raise LimitError(
            f"a reply from the process reading the guest disk holds about {items} values, more than the "
            f"limit of {bounds.items}"
        )
    brackets = skeleton.translate(None, _NOT_BRACKET)
    if len(brackets) > bounds.depth:  # (fewer brackets cannot nest deeper)
        depth = max(itertools.accumulate(map(_DELTA.__getitem__, brackets)), default=0)
        if depth > bounds.depth:
            raise LimitError(
                f"a reply from the process reading the guest disk nests {depth} levels deep, more than "
                f"the limit of {bounds.depth}"
            )
    del skeleton, brackets
    try:
        message = json.loads(payload.decode("ascii"))
    except (ValueError, RecursionError):
        raise GuestDataError("malformed reply from the process reading the guest disk") from None
    except MemoryError:
        raise LimitError(
            "a reply from the process reading the guest disk needs more memory than pvboot's limit"
        ) from None
    if not isinstance(message, dict):
        raise GuestDataError("malformed reply from the process reading the guest disk (not an object)")
    return message


# A JSON string (possessive: linear, no backtracking), replaced by "" before counting
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA = [0] * 256
_DELTA[ord("[")] = _DELTA[ord("{")] = 1
_DELTA[ord("]")] = _DELTA[ord("}")] = -1


def printable(value: object, what: str) -> str:
    """Refuse guest strings a libxl answer must not carry (XSA-198): anything but a str of sane length
    without NUL, newlines, control or format characters (str.isprintable)."""
    if not isinstance(value, str):
        raise GuestDataError(f"{what} is not a string: refused")
    if len(value) > MAX_REPLY_STRING:
        raise GuestDataError(f"{what} is {len(value)} characters long: refused")
    if any(not ch.isprintable() for ch in value):
        raise GuestDataError(f"{what} contains control characters: refused")
    return value


def sanitised(value: object, limit: int = MAX_TITLE) -> str:
    """A guest title made safe for any terminal: non-printable characters become '?'."""
    text = value if isinstance(value, str) else ""
    return "".join(ch if ch.isprintable() else "?" for ch in text[:limit])


def _malformed(what: str) -> GuestDataError:
    return GuestDataError(f"{_WHO} reported a malformed {what}")


def _text(value: object, what: str, limit: int | None = MAX_REPLY_STRING) -> str:
    """A string; `limit` None: guest text (titles, commands, output) bounded only by the reply's size."""
    if not isinstance(value, str) or (limit is not None and len(value) > limit):
        raise _malformed(what)
    return value


def _optional_text(value: object, what: str, limit: int | None = MAX_REPLY_STRING) -> str | None:
    return None if value is None else _text(value, what, limit)


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise GuestDataError(f"{_WHO} reported no valid {what}")
    return value


def _optional_count(doc: JsonObject, key: str) -> int | None:
    return None if doc.get(key) is None else _count(doc[key], key)


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise _malformed(what)
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise _malformed(what)
    return value


def _object(value: object, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise _malformed(what)
    return value


def _texts(value: object, what: str, limit: int | None = MAX_REPLY_STRING) -> list[str]:
    return [_text(item, what, limit) for item in _list(value, what)]


def _digest(value: object, what: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise _malformed(f"{what} (not a SHA-256 digest)")
    return value


def _volume(doc: object) -> JsonObject:
    vol = _object(doc, "volume")
    _text(vol.get("name"), "volume name")
    _count(vol.get("offset"), "volume offset")
    _count(vol.get("size"), "volume size")
    for key in ("fstype", "uuid", "label"):
        _optional_text(vol.get(key), f"volume {key}")
    _optional_text(vol.get("error"), "volume error", None)
    return vol


def _facts(doc: JsonObject, what: str) -> None:
    """A config file's --report facts: size, SHA-256, and how much was hashed when capped."""
    _count(doc.get("size"), f"{what} size")
    _digest(doc.get("sha256"), f"{what} digest")
    if doc.get("sha256_of_first") is not None:
        _count(doc["sha256_of_first"], f"{what} hashed size")


def _config(doc: object) -> JsonObject:
    cfg = _object(doc, "boot config")
    for key in ("kind", "volume", "path"):
        _text(cfg.get(key), f"boot config {key}")
    if "size" in cfg:
        _facts(cfg, "boot config")
    if "files" in cfg:
        files = _object(cfg["files"], "boot config files")
        if len(files) > MAX_LIST:
            raise _malformed("boot config files")
        for name, facts in files.items():
            _text(name, "boot config file name")
            _facts(_object(facts, "boot config file"), "boot config file")
    return cfg


def _inspect(doc: JsonObject) -> InspectReply:
    return InspectReply(
        [_volume(v) for v in _list(doc.get("volumes", []), "volume list")],
        [_config(c) for c in _list(doc.get("configs", []), "boot config list")],
    )


def _xenkernel(doc: JsonObject) -> XenkernelReply:
    found = doc.get("found")
    if found is None:
        return XenkernelReply(None)
    if not isinstance(found, dict):
        raise GuestDataError(f"{_WHO} reported a malformed /xenkernel")
    initrd = found.get("initrd")
    return XenkernelReply(
        XenKernel(
            printable(found.get("volume"), "the /xenkernel volume"),
            printable(found.get("kernel"), "the /xenkernel path"),
            None if initrd is None else printable(initrd, "the /xeninitrd path"),
        )
    )


def _isconfig(doc: JsonObject) -> IsconfigReply:
    return IsconfigReply(
        kind=_text(doc.get("kind", ""), "config kind"),
        title=_text(doc.get("title", ""), "title", None),
        kernel=_optional_text(doc.get("kernel"), "kernel path", None),
        initrds=_texts(doc.get("initrds", []), "initrd path", None),
        args=_text(doc.get("args", ""), "command line", None),
        bootable=bool(doc.get("bootable")),
        why=_text(doc.get("why", ""), "reason", None),
    )


def _file_ref(value: object) -> None:
    ref = _object(value, "file reference")
    _optional_text(ref.get("volume"), "file reference volume", None)
    _text(ref.get("path"), "file reference path", None)


def _entries(value: object, depth: int = 0) -> list[JsonObject]:
    """Menu entries: the fields the parent reads have their types, submenus are bounded in depth."""
    if depth > MAX_MENU_DEPTH:
        raise LimitError(f"the menu nests more than {MAX_MENU_DEPTH} submenus deep")
    entries = [_object(e, "menu entry") for e in _list(value, "menu entry list")]
    for entry in entries:
        _text(entry.get("title"), "menu entry title", None)
        for key in ("id", "source", "users", "hotkey"):
            _optional_text(entry.get(key), f"menu entry {key}", None)
        if entry.get("submenu") is not None:
            _entries(entry["submenu"], depth + 1)
        if entry.get("boot") is not None:
            boot = _object(entry["boot"], "menu entry's boot")
            for key in ("kind", "loader", "args"):
                _optional_text(boot.get(key), f"menu entry's {key}", None)
            for key in ("kernel", "devicetree"):
                if boot.get(key) is not None:
                    _file_ref(boot[key])
            for ref in _list(boot.get("initrds", []), "menu entry's initrds"):
                _file_ref(ref)
            _texts(boot.get("errors", []), "menu entry's errors", None)
    return entries


def _path(value: object, what: str) -> list[int]:
    path = _list(value, what)
    if not all(type(i) is int and i >= 0 for i in path):
        raise _malformed(what)
    return path


def _menu(doc: JsonObject) -> MenuReply:
    default = _object(doc.get("default") or {}, "default entry")
    timeout = doc.get("timeout")
    if timeout is not None and (type(timeout) is not int):
        raise _malformed("menu timeout")
    config = doc.get("config")
    passwords = _object(doc.get("passwords") or {}, "password list")
    for user in passwords:
        _text(user, "user name")
    entry_auth = doc.get("entry_auth")
    return MenuReply(
        source=_text(doc.get("source", ""), "menu source", None),
        kind=_text(doc.get("kind", ""), "menu kind"),
        config=None if config is None else _config(config),
        timeout=timeout,
        timeout_style=_optional_text(doc.get("timeout_style"), "timeout style"),
        entries=_entries(doc.get("entries", [])),
        superusers=_optional_text(doc.get("superusers"), "superusers", None),
        passwords=passwords,
        default=DefaultChoice(
            _path(default.get("path", []), "default entry path"),
            _texts(default.get("titles", []), "default entry title", None),
            _texts(default.get("reasons", []), "default entry reason", None),
        ),
        entry_auth=None if entry_auth is None else _object(entry_auth, "entry access list"),
    )


def _command(doc: JsonObject) -> CommandReply:
    status = doc.get("status", 0)
    if type(status) is not int:
        raise _malformed("command status")
    return CommandReply(
        _text(doc.get("output", ""), "command output", None),
        status,
        _flag(doc.get("boot", False), "command boot"),
    )


def _boot(doc: JsonObject) -> BootReply:
    """A boot or extract reply: the checks of what reaches libxl's answer (boot.py: _answer)."""
    raw_sources = doc.get("ramdisk_sources", [])
    kernel_source = printable(doc.get("kernel_source", ""), "the kernel path")
    if not isinstance(raw_sources, list):
        raise GuestDataError(f"{_WHO} reported malformed ramdisk paths")
    sources = [printable(s, "the ramdisk path") for s in raw_sources]
    title: str | None = None
    path: list[int] | None = None
    if "title" in doc:
        title = sanitised(doc["title"])
        raw_path = doc.get("path")
        valid = isinstance(raw_path, list) and all(type(i) is int for i in raw_path)
        path = raw_path if valid else None
    raw_reasons = doc.get("reasons")
    reasons = [sanitised(r) for r in raw_reasons[:MAX_REASONS]] if isinstance(raw_reasons, list) else []
    kernel = clean_reply_fields(doc)
    return BootReply(
        kernel_source=kernel_source,
        ramdisk_sources=sources,
        kernel_size=_optional_count(doc, "kernel_size"),
        ramdisk_size=_optional_count(doc, "ramdisk_size"),
        devicetree_size=_optional_count(doc, "devicetree_size"),
        args=printable(doc.get("args", ""), "the entry's command line"),
        title=title,
        path=path,
        reasons=reasons,
        kernel_deferred=doc.get("kernel_deferred") is True,
        kernel_info=kernel["kernel_info"],
        warnings=kernel["warnings"],
        devicetree_source=kernel["devicetree_source"],
        devicetree_info=kernel["devicetree_info"],
    )


_VALIDATORS: dict[str, tuple[str, Any]] = {
    "inspect": ("inspect", _inspect),
    "xenkernel": ("xenkernel", _xenkernel),
    "isconfig": ("isconfig", _isconfig),
    "menu": ("menu", _menu),
    "command": ("command", _command),
    "extract": ("extracted", _boot),
    "boot": ("extracted", _boot),
}


def validate_reply(op: str, doc: JsonObject) -> Reply:
    """The typed reply to request `op` (an error reply has been raised already), or GuestDataError."""
    try:
        expected, check = _VALIDATORS[op]
    except KeyError:
        raise GuestDataError(f"unknown request {op!r}") from None
    kind = doc.get("type")
    if kind != expected:
        raise GuestDataError(f"{_WHO} answered a {op} request with a {sanitised(kind, 40)!r} reply")
    reply: Reply = check(doc)
    return reply


def judged_verdict(doc: JsonObject) -> JsonObject:
    """The kernel judge's verdict (kernel/judge.py), checked like a reader's."""
    info = doc.get("kernel_info")
    if not isinstance(info, dict):
        raise GuestDataError("the kernel's judge reported no verdict")
    verdict: JsonObject = clean_reply_fields({"kernel_info": info})["kernel_info"]
    return verdict


def with_verdict(reply: BootReply, verdict: JsonObject, warnings: list[str]) -> BootReply:
    """`reply` with the parent's settled kernel verdict and the warnings it adds."""
    return replace(reply, kernel_info=verdict, warnings=[*reply.warnings, *warnings])


def copy_size(reported: int | None, files: OutputFiles, role: str, what: str) -> int:
    """The size the reader reported for its copy into `role`, checked against the file itself."""
    if reported is None:
        raise GuestDataError(f"{_WHO} reported no valid {role}_size")
    if reported != files.size(role):
        raise GuestDataError(f"the {what} copy does not match what the reading process reported")
    return reported


def created_file(files: OutputFiles, role: str) -> str:
    """The path of the `role` file the parent created, checked to still be that very file (the reader
    only ever had its fd, but the answer must name what was written)."""
    import os
    import stat

    path, fd = files.paths[role], files.fds[role]
    on_disk, written = os.lstat(path), os.fstat(fd)
    if (on_disk.st_dev, on_disk.st_ino) != (written.st_dev, written.st_ino) or not stat.S_ISREG(
        on_disk.st_mode
    ):
        raise GuestDataError(f"{path} is no longer the {role} file pvboot created")
    return path


# -- the parent's end ----------------------------------------------------------------------------


class ChildLike(Protocol):
    """What asks the reader: `sandbox.child.Child` (its `request` raises the reader's error replies)."""

    def request(self, message: JsonObject, timeout: float) -> JsonObject: ...


class Reader:
    """The parent's typed view of the reader: each request sent, each reply validated."""

    def __init__(self, child: ChildLike, timeout: float) -> None:
        self.child = child
        self.timeout = timeout

    def _ask(self, request: Request) -> Reply:
        return validate_reply(request.op, self.child.request(request.to_json(), self.timeout))

    def inspect(self, facts: bool = False) -> InspectReply:
        reply = self._ask(InspectRequest(facts))
        assert isinstance(reply, InspectReply)
        return reply

    def xenkernel(self) -> XenKernel | None:
        reply = self._ask(XenkernelRequest())
        assert isinstance(reply, XenkernelReply)
        return reply.found

    def menu(self) -> MenuReply:
        reply = self._ask(MenuRequest())
        assert isinstance(reply, MenuReply)
        return reply

    def isconfig(self) -> IsconfigReply:
        reply = self._ask(IsconfigRequest())
        assert isinstance(reply, IsconfigReply)
        return reply

    def command(self, line: str) -> CommandReply:
        reply = self._ask(CommandRequest(line))
        assert isinstance(reply, CommandReply)
        return reply

    def boot(self, request: BootEntryRequest | ExtractRequest) -> BootReply:
        reply = self._ask(request)
        assert isinstance(reply, BootReply)
        return reply


class CheckedChild:
    """A `ChildLike` whose replies have passed `validate_reply`, in their wire form: for the console
    (tui/), which speaks the wire documents to the reader."""

    def __init__(self, child: ChildLike) -> None:
        self.child = child

    @property
    def done(self) -> bool:
        return bool(getattr(self.child, "done", False))

    def request(self, message: JsonObject, timeout: float) -> JsonObject:
        request = decode_request(message)
        return validate_reply(request.op, self.child.request(request.to_json(), timeout)).to_json()
