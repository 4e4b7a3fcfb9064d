"""`pvboot --report IMAGE`: what pvboot saw and decided, redacted, to attach to a bug report.

The report holds versions, the disk layout, the boot configs found (with sizes and SHA-256, never their
text), the menu with each entry's commands, the default and why, the boot decision and the errors. It is
redacted so that it can be posted publicly; see docs/json.md ("The --report text") for the policy:
- secrets are removed: GRUB `password`/`password_pbkdf2` secrets, grub.pbkdf2 hashes, crypt(3) hashes,
  SYSLINUX `menu passwd`/`menu master passwd`, and the values of kernel parameters that carry
  credentials, keys or addresses (`ip=`, `nfsroot=`, `rd.luks.key=`, `inst.ks=`, `password=`...);
- identifiers are replaced by stable pseudonyms: UUIDs become uuid-1, uuid-2... and 32-hex machine ids
  machine-id-1... (the same value gets the same pseudonym everywhere in the report, so that a
  `search --fs-uuid` can still be matched against the volume it finds), user names become user-1...;
- kept: titles, paths, kernel versions, filesystem types, sizes, offsets, labels, hashes of the configs.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from pvboot.disk.tree import FileTree

REDACTED = "<redacted>"
MAX_LINES = 2000
MAX_TEXT = 4000

# Every pattern below runs in linear time: possessive quantifiers (no backtracking), anchored starts (a
# long run is tried once, not at each of its characters), and alternatives that begin with different
# characters. Guest text is redacted in the unconfined root parent, so a title of 1 MiB must cost
# milliseconds, not minutes (the old `^\s*` under re.M was quadratic in the number of newlines).
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}+")  # a machine id is a run of exactly 32
_PBKDF2 = re.compile(r"grub\.pbkdf2\.[A-Za-z0-9._]++")
_CRYPT = re.compile(r"\$(?:1|2[abxy]|5|6|y|gy|7|sha1|md5)\$[^\s'\"]++")
_URL_USERINFO = re.compile(r"://([^\s/?#@'\"<>]++)@")  # scheme://user:secret@host
# One piece of a shell-like word, as GRUB's lexer reads it: quotes may span lines, a backslash escapes
# the next character. A word is one or more pieces; `;` and white space end it.
_PIECE = r"""(?:[^\s'";\\]++|\\.?|'[^']*+'?|"(?:[^"\\]++|\\.?)*+"?)"""
# A password command where a command starts (line start, after ; { } then do else elif !, or inside
# a quote's start: a title, quoted in an entry's `setparams`, may be one), in any case:
# GRUB's `password USER SECRET`, `password_pbkdf2 USER HASH`, legacy `password [--md5] SECRET [FILE]`,
# SYSLINUX's `[menu [master]] passwd SECRET` (the rest of the line).
_COMMAND = re.compile(
    r"(?ims)(?:^|(?<=[;{}'\"]))[ \t]*+(?:(?:then|do|else|elif|!|\{|\})[ \t]++)*+"
    rf"(?:(?P<pw>password_pbkdf2|password)(?P<opts>(?:[ \t]++--[^\s;]*+)*+)"
    rf"(?:[ \t]++(?P<a>{_PIECE}++))?(?:[ \t]++(?P<b>{_PIECE}++))?"
    r"|(?P<syslinux>(?:menu[ \t]++(?:master[ \t]++)?)?passwd)(?:[ \t]++(?P<rest>[^\n]*+))?)(?=[\s;]|$)"
)
# `name=value` as a word (a kernel parameter, `set name=...`, `--name=...`), also inside quotes
_NAME = r"-*+[\w.]++(?:-[\w.]++)*+"
_ASSIGNMENT = re.compile(
    rf"""(?s)(?<![^\s;])(?:"(?P<dq>{_NAME})=(?P<dv>(?:[^"\\]++|\\.?)*+"?{_PIECE}*+)"""
    rf"""|'(?P<sq>{_NAME})=(?P<sv>[^']*+'?{_PIECE}*+)|(?P<n>{_NAME})=(?P<v>{_PIECE}*+))"""
)
_VARIABLE = re.compile(r"""["']?\$\{?(\w++)\}?["']?""")
_NAME_PARTS = re.compile(r"[._-]")
_SECRET_ARGS = frozenset(
    (
        "ip",
        "nfsroot",
        "netroot",
        "hostname",
        "rootpw",
        "luks.key",
        "rd.luks.key",
        "cryptkey",
        "cryptdevice",
        "inst.ks",
        "ks",
        "inst.repo",
        "url",
        "rd.iscsi.initiator",
        "iscsi_initiator",
        "iscsi_target_ip",
        "rd.znet",
        "bond",
        "vlan",
    )
)
# a name with one of these parts (split at . _ -) holds a secret: root_password, db_pass, rd.luks.key
_SECRET_PARTS = frozenset(
    ("password", "passwd", "pass", "pw", "pwd", "passphrase", "secret", "key", "token", "rootpw")
)
_PASSWORD_PARTS = frozenset(("pass", "pw", "pwd", "rootpw", "passphrase", "secret"))
_SECRET_FIELDS = ("passwd", "master_passwd", "password")
MAX_LEARNED = 16  # secret values learned from assignments, redacted wherever they appear
MIN_LEARNED = 4  # shorter (too common) or longer ones are redacted only where they are assigned
MAX_LEARNED_LENGTH = 256
MAX_CACHED = 4096  # names judged, and texts redacted, remembered per report


def _unquote(word: str) -> str:
    return word[1:-1] if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"" else word


def _assigned_name(match: re.Match[str]) -> str:
    return (match["n"] or match["dq"] or match["sq"]).lstrip("-")


class Redactor:
    """Consistent pseudonyms and secret removal over all the text of one report.

    `learn()` first reads every string of the replies for secrets set through variables (`set pw=...`
    then `password_pbkdf2 user $pw`), so that `text()` redacts those assignments, and the values
    themselves wherever they appear. Texts are redacted once each (a title recurs in the report)."""

    def __init__(self) -> None:
        self.names: dict[str, dict[str, str]] = {"uuid": {}, "machine-id": {}, "user": {}}
        self.secret_variables: set[str] = set()
        self._learned: list[str] = []  # secret values, longest first
        self._secret_names: dict[str, bool] = {}
        self._done: dict[str, str] = {}

    def _alias(self, kind: str, value: str) -> str:
        table = self.names[kind]
        key = value.lower()
        if key not in table:
            table[key] = f"{kind}-{len(table) + 1}"
        return table[key]

    def user(self, name: str) -> str:
        return self._alias("user", name) if name else name

    def secret_name(self, name: str) -> bool:
        """Whether `name` (a kernel parameter or a GRUB variable) holds a secret, in any case."""
        known = self._secret_names.get(name)
        if known is not None:
            return known
        low = name.lower()
        secret = (
            low in _SECRET_ARGS
            or low in self.secret_variables
            or "password" in low
            or "passwd" in low
            or any(part in _SECRET_PARTS for part in _NAME_PARTS.split(low))
        )
        if len(self._secret_names) < MAX_CACHED:
            self._secret_names[name] = secret
        return secret

    def _password_name(self, name: str) -> bool:
        """A variable a password command reads, or a name of a password (not of an address or a host:
        their values, such as `dhcp`, are too common to redact everywhere)."""
        low = name.lower()
        return low in self.secret_variables or any(
            part in _PASSWORD_PARTS or "passw" in part for part in _NAME_PARTS.split(low)
        )

    def learn(self, *replies: Any) -> None:
        """Read all the strings of `replies` twice: for the variables that password commands take their
        secret from, then for the values those (and other password names) are assigned."""
        texts = list(dict.fromkeys(text for reply in replies for text in _strings(reply)))  # (once each)
        for text in texts:
            if "$" not in text or "passw" not in text.lower():
                continue
            for match in _COMMAND.finditer(text):
                secret = match["a"] if match["opts"] else match["b"]
                variable = _VARIABLE.fullmatch(secret) if match["pw"] and secret else None
                if variable:
                    self.secret_variables.add(variable.group(1).lower())
        self._secret_names.clear()
        values: set[str] = set()
        for text in texts:
            for match in _ASSIGNMENT.finditer(text) if "=" in text else ():
                value = match["v"]
                if value is None or not MIN_LEARNED <= len(value) <= MAX_LEARNED_LENGTH + 2:
                    continue
                value = _unquote(value)
                if len(value) >= MIN_LEARNED and self._password_name(_assigned_name(match)):
                    values.add(value)
                    if len(values) >= MAX_LEARNED:
                        break
            if len(values) >= MAX_LEARNED:
                break
        chosen = sorted((v for v in values if v not in REDACTED), key=lambda v: (-len(v), v))
        self._learned = chosen[:MAX_LEARNED]
        self._done.clear()

    def text(self, value: str) -> str:
        """`value` with secrets removed and identifiers pseudonymised."""
        done = self._done.get(value)
        if done is not None:
            return done
        out = value
        if "passw" in out.lower():
            out = _COMMAND.sub(self._command, out)
        if "=" in out:
            out = _ASSIGNMENT.sub(self._assignment, out)
        if "://" in out:
            out = _URL_USERINFO.sub(_userinfo, out)
        if "grub.pbkdf2." in out:
            out = _PBKDF2.sub(REDACTED, out)
        if "$" in out:
            out = _CRYPT.sub(REDACTED, out)
        for secret in self._learned:  # (str.replace: linear, whatever the value)
            if secret in out:
                out = out.replace(secret, REDACTED)
        if "-" in out:
            out = _UUID.sub(lambda m: self._alias("uuid", m.group(0)), out)
        out = _HEX_RUN.sub(self._machine_id, out)
        if len(self._done) < MAX_CACHED:
            self._done[value] = out
        return out

    def _command(self, match: re.Match[str]) -> str:
        """A password command with its user pseudonymised and its secret redacted (a `$variable` is
        kept: its value is redacted where it is assigned); a SYSLINUX passwd line redacted to its end."""
        text, start, end = match.string, match.start(), match.end()
        if match["syslinux"] is not None:
            rest = match["rest"]
            return text[start : match.start("rest")] + REDACTED if rest and not rest.isspace() else match[0]
        user, secret = (None, match["a"]) if match["opts"] else (match["a"], match["b"])
        out = []
        if user is not None and not _VARIABLE.fullmatch(user):
            out += [text[start : match.start("a")], self.user(_unquote(user))]
            start = match.end("a")
        if secret is not None and not _VARIABLE.fullmatch(secret):
            group = "a" if match["opts"] else "b"
            out += [text[start : match.start(group)], REDACTED]
            start = match.end(group)
        out.append(text[start:end])
        return "".join(out)

    def _assignment(self, match: re.Match[str]) -> str:
        """`name=value` with the value redacted, quotes and all, when the name holds a secret:
        `password='a b'`, `"rootpw=x y"`, `set pw="..."`."""
        name = match["n"]
        if name is not None:
            return f"{name}={REDACTED}" if self.secret_name(name.lstrip("-")) else match[0]
        if not self.secret_name(_assigned_name(match)):
            return match[0]
        quote, name, value = (
            ('"', match["dq"], match["dv"]) if match["dq"] is not None else ("'", match["sq"], match["sv"])
        )
        return f"{quote}{name}={REDACTED}{quote if quote in value else ''}"

    def _machine_id(self, match: re.Match[str]) -> str:
        run = match.group(0)
        return self._alias("machine-id", run) if len(run) == 32 else run

    def value(self, obj: Any, key: str = "") -> Any:
        """A JSON value with every string redacted; password tables and secret fields emptied."""
        if key == "passwords" and isinstance(obj, dict):
            return {self.user(str(u)): [str(v[0]) if v else "", REDACTED] for u, v in obj.items()}
        if key in ("superusers", "users") and isinstance(obj, str):
            return " ".join(self.user(u) for u in re.split(r"[\s,;|&]+", obj) if u)
        if key in _SECRET_FIELDS and obj:
            return REDACTED
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {k: self.value(v, str(k)) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.value(v, key) for v in obj]
        return obj


def _strings(obj: Any) -> Iterator[str]:
    """Every string in a JSON value (keys are the parent's own)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict | list):
        for value in obj.values() if isinstance(obj, dict) else obj:
            yield from _strings(value)


def _userinfo(match: re.Match[str]) -> str:
    colon = ":" in match.group(1)
    return f"://{REDACTED}{':' + REDACTED if colon else ''}@"


def file_facts(stream: BinaryIO, size: int, cap: int) -> dict[str, Any]:
    """Size and SHA-256 of a (config) file, reading at most `cap` bytes. Meant for the child, which adds
    them to the configs of its `inspect` reply when a report is asked for."""
    digest = hashlib.sha256()
    read = 0
    stream.seek(0)
    while read < min(size, cap):
        chunk = stream.read(min(1 << 20, min(size, cap) - read))
        if not chunk:
            break
        digest.update(chunk)
        read += len(chunk)
    facts: dict[str, Any] = {"size": size, "sha256": digest.hexdigest()}
    if read < size:
        facts["sha256_of_first"] = read
    return facts


def config_facts(tree: FileTree, path: str, cap: int) -> dict[str, Any]:
    """`file_facts` of the config at `path` (a BLS directory: its .conf files, each by name)."""
    if tree.is_dir(path):
        names = sorted(n for n in tree.listdir(path) if n.endswith(".conf"))[:256]
        files = {}
        for name in names:
            node, stream = tree.open_file(f"{path.rstrip('/')}/{name}")
            files[name] = file_facts(stream, node.size, cap)
        return {"files": files}
    node, stream = tree.open_file(path)
    return file_facts(stream, node.size, cap)


def collect_versions() -> dict[str, str]:
    """pvboot's, Python's, the host's, Xen's (from sysfs, when running on Xen) and the dependencies'."""
    from importlib import metadata  # (slow to import: only --report and `--version --debug` need it)

    from pvboot import __version__

    versions = {
        "pvboot": __version__,
        "python": platform.python_version(),
        "host": f"{platform.system()} {platform.release()} {platform.machine()}",
    }
    try:
        parts = []
        for name in ("major", "minor", "extra"):
            with open(f"/sys/hypervisor/version/{name}") as fh:
                parts.append(fh.read().strip())
        versions["xen"] = f"{parts[0]}.{parts[1]}{parts[2]}"
    except OSError:
        pass
    for dist in _dependencies(metadata):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def _dependencies(metadata: Any) -> list[str]:
    """The distributions pvboot's own metadata says it runs on (not its test extras): the packaging
    declares each reader's library once, so a new one is reported without a list here."""
    try:
        declared = metadata.requires("pvboot") or []
    except metadata.PackageNotFoundError:  # a source tree never installed: the readers' own declarations
        from pvboot.disk.fs import adapters

        declared = [adapter.REQUIRES for adapter in adapters()]
    names = []
    for requirement in declared:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[\s;<>=!~\[]", requirement, maxsplit=1)[0]
        if name and name not in names:
            names.append(name)
    return names


def _line(text: object) -> str:
    """One printable line (guest text cannot move the cursor or add lines). The text is cut before it
    is cleaned: escaping only lengthens it, and a guest title may be megabytes long."""
    flat = str(text)[: MAX_TEXT + 1].replace("\n", "\\n").replace("\t", " ")
    flat = "".join(ch if ch.isprintable() else "?" for ch in flat)
    return flat if len(flat) <= MAX_TEXT else flat[: MAX_TEXT - 1] + "…"


def _ref(ref: dict[str, Any] | None) -> str:
    if not ref:
        return "-"
    return f"({ref.get('volume')}){ref.get('path')}" if ref.get("volume") else str(ref.get("path"))


def _entries(entries: list[dict[str, Any]], prefix: str, out: list[str], r: Redactor) -> None:
    for index, entry in enumerate(entries):
        if len(out) > MAX_LINES:
            out.append("  … (cut)")
            return
        number = f"{prefix}{index}"
        title = r.text(str(entry.get("title", "")))
        if entry.get("submenu") is not None:
            out.append(f"  {number:<6} {_line(title)} >")
            _entries(entry["submenu"], f"{number}>", out, r)
            continue
        boot = entry.get("boot") or {}
        flag = "PV-bootable" if entry.get("pv_bootable") else "not PV-bootable"
        out.append(f"  {number:<6} {_line(title)}  [{boot.get('kind', 'nothing')}, {flag}]")
        if boot.get("kernel"):
            initrds = " ".join(_ref(i) for i in boot.get("initrds", [])) or "-"
            kernel = _ref(boot.get("kernel"))
            out.append(f"         kernel {_line(r.text(kernel))}  initrd {_line(r.text(initrds))}")
            out.append(f"         args   {_line(r.text(str(boot.get('args', ''))))}")
        if boot.get("devicetree"):
            out.append(f"         devicetree {_line(r.text(_ref(boot.get('devicetree'))))}")
        for error in boot.get("errors", [])[-3:]:
            out.append(f"         error  {_line(r.text(str(error)))}")


def build_report(
    inspect_reply: dict[str, Any],
    menu_reply: dict[str, Any] | None,
    errors: list[str],
    versions: dict[str, str],
    boot_reply: dict[str, Any] | None = None,
) -> str:
    """The redacted report. `inspect_reply` and `menu_reply` are the child's replies (configs may carry
    `size`/`sha256` from `file_facts`), `boot_reply` the answer of a not-really boot when one was made."""
    r = Redactor()
    r.learn(menu_reply, boot_reply)
    out = ["pvboot report (redacted: secrets removed, UUIDs/machine ids/user names pseudonymised)", ""]
    out.append("== versions ==")
    out += [f"  {_line(k)}: {_line(v)}" for k, v in versions.items()]
    out += ["", "== disk =="]
    for vol in inspect_reply.get("volumes", []):
        desc = f"{vol.get('fstype') or 'no filesystem'}"
        for key in ("uuid", "label", "error"):
            if vol.get(key):
                desc += f" {key}={r.text(str(vol[key]))}"
        out.append(
            f"  ({_line(vol.get('name'))}) offset {vol.get('offset')} size {vol.get('size')}: {_line(desc)}"
        )
    out += ["", "== boot configs (in order of preference) =="]
    for cfg in inspect_reply.get("configs", []) or []:
        facts = ""
        if "size" in cfg:
            facts = f"  {cfg['size']} bytes  sha256 {cfg.get('sha256', '?')}"
            if "sha256_of_first" in cfg:
                facts += f" (of the first {cfg['sha256_of_first']} bytes)"
        where = r.text(f"({cfg.get('volume')}){cfg.get('path')}")
        out.append(f"  {_line(cfg.get('kind'))}: {_line(where)}{facts}")
        for name, sub in sorted((cfg.get("files") or {}).items()):
            out.append(f"    {_line(r.text(name))}  {sub.get('size')} bytes  sha256 {sub.get('sha256')}")
    if not inspect_reply.get("configs"):
        out.append("  none found")
    out += ["", "== menu =="]
    if menu_reply is None:
        out.append("  (no menu: see errors)")
    else:
        out.append(
            f"  {_line(menu_reply.get('kind'))} from {_line(menu_reply.get('source'))}, timeout "
            f"{menu_reply.get('timeout')} ({_line(menu_reply.get('timeout_style'))})"
        )
        if menu_reply.get("superusers"):
            out.append(f"  superusers: {_line(r.value(menu_reply['superusers'], 'superusers'))}")
        for user, kind in sorted(r.value(menu_reply.get("passwords") or {}, "passwords").items()):
            out.append(f"  password for {_line(user)}: {_line(kind[0])} (secret redacted)")
        _entries(menu_reply.get("entries", []), "", out, r)
        default = menu_reply.get("default") or {}
        path = ">".join(str(i) for i in default.get("path", []))
        titles = " > ".join(r.text(str(t)) for t in default.get("titles", []))
        out += ["", "== decision =="]
        out.append(f"  default: {path} '{_line(titles)}'")
        out += [f"    because {_line(r.text(str(reason)))}" for reason in default.get("reasons", [])]
    if boot_reply is not None:
        out.append(f"  boots: {_line(r.text(str(boot_reply.get('title', ''))))}")
        out.append(f"    kernel {_line(r.text(str(boot_reply.get('kernel_source', ''))))}")
        for src in boot_reply.get("ramdisk_sources", []):
            out.append(f"    initrd {_line(r.text(str(src)))}")
        if boot_reply.get("devicetree_source"):
            out.append(f"    devicetree {_line(r.text(str(boot_reply['devicetree_source'])))}")
        out.append(f"    args   {_line(r.text(str(boot_reply.get('args', ''))))}")
        info = boot_reply.get("kernel_info")
        if info:
            out.append(
                f"    kernel is {_line(info.get('format'))} {_line(info.get('arch'))} "
                f"{_line(info.get('version'))} compression={_line(info.get('compression'))} "
                f"pv={info.get('pv')} pvh={info.get('pvh')}"
            )
        for warning in boot_reply.get("warnings", []):
            out.append(f"    warning: {_line(r.text(str(warning)))}")
    out += ["", "== errors =="]
    out += [f"  {_line(r.text(str(e)))}" for e in errors] or ["  none"]
    if menu_reply is not None:
        redacted = r.value({k: v for k, v in menu_reply.items() if k != "type"})
        out += ["", "== menu as JSON (redacted) ==", json.dumps(redacted, indent=1, sort_keys=True)]
    return "\n".join(out) + "\n"
