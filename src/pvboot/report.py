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
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from pvboot.disk.tree import FileTree

REDACTED = "<redacted>"
MAX_LINES = 2000
MAX_TEXT = 4000

_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_MACHINE_ID = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")
_PBKDF2 = re.compile(r"grub\.pbkdf2\.[A-Za-z0-9._]+")
_CRYPT = re.compile(r"\$(?:1|2[abxy]|5|6|y|gy|7|sha1|md5)\$[^\s'\"]+")
_PASSWORD_CMD = re.compile(
    r"(?im)^(\s*(?:password|password_pbkdf2)\s+)(\S+)(\s+)(\S+)"
)  # GRUB: password USER SECRET
_SYSLINUX_PASSWD = re.compile(r"(?im)^(\s*(?:menu\s+master\s+passwd|menu\s+passwd|passwd)\s+)(\S+)")
_SECRET_ARGS = (
    "ip",
    "nfsroot",
    "netroot",
    "hostname",
    "password",
    "passwd",
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
    "rd.iscsi.password",
    "rd.iscsi.in.password",
    "iscsi_initiator",
    "iscsi_target_ip",
    "iscsi_password",
    "rd.znet",
    "bond",
    "vlan",
)
_ARG = re.compile(r"(?<![\w.-])(" + "|".join(re.escape(k) for k in _SECRET_ARGS) + r")=(\"[^\"]*\"|\S*)")
_SECRET_FIELDS = ("passwd", "master_passwd", "password")


class Redactor:
    """Consistent pseudonyms and secret removal over all the text of one report."""

    def __init__(self) -> None:
        self.names: dict[str, dict[str, str]] = {"uuid": {}, "machine-id": {}, "user": {}}

    def _alias(self, kind: str, value: str) -> str:
        table = self.names[kind]
        key = value.lower()
        if key not in table:
            table[key] = f"{kind}-{len(table) + 1}"
        return table[key]

    def user(self, name: str) -> str:
        return self._alias("user", name) if name else name

    def text(self, value: str) -> str:
        """`value` with secrets removed and identifiers pseudonymised."""
        out = _PASSWORD_CMD.sub(lambda m: f"{m.group(1)}{self.user(m.group(2))}{m.group(3)}{REDACTED}", value)
        out = _SYSLINUX_PASSWD.sub(lambda m: f"{m.group(1)}{REDACTED}", out)
        out = _PBKDF2.sub(REDACTED, out)
        out = _CRYPT.sub(REDACTED, out)
        out = _ARG.sub(lambda m: f"{m.group(1)}={REDACTED}", out)
        out = _UUID.sub(lambda m: self._alias("uuid", m.group(0)), out)
        out = _MACHINE_ID.sub(lambda m: self._alias("machine-id", m.group(0)), out)
        return out

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
    for dist in (
        "dissect.volume",
        "dissect.extfs",
        "dissect.xfs",
        "dissect.btrfs",
        "dissect.fat",
        "dissect.hypervisor",
        "dissect.util",
        "pycdlib",
        "backports.zstd",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def _line(text: object) -> str:
    """One printable line (guest text cannot move the cursor or add lines)."""
    flat = str(text).replace("\n", "\\n").replace("\t", " ")
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
