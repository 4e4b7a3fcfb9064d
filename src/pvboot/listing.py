"""`-l`: the menu as GRUB numbers it (submenus nested, `1>2` paths), the default and why, the disk.

With --output-format=json the same as one JSON document, for programs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pvboot.sandbox.protocol import InspectReply, MenuReply, XenKernel


def clean(value: object, width: int = 0) -> str:
    """Guest text for a terminal: control characters replaced, optionally cut with an ellipsis. (Cut
    first: each character maps to one, and a guest title may be megabytes long.)"""
    text = str(value)
    if width:
        text = text[: width + 1]
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else "?" for ch in text)
    if width and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def clean_lines(text: str) -> str:
    """`text` cleaned line by line, its newlines kept: a traceback or a report for the terminal."""
    return "\n".join(clean(line) for line in text.split("\n"))


def _ref(ref: dict[str, Any] | None) -> str:
    if not ref:
        return "-"
    return clean(f"({ref['volume']}){ref['path']}" if ref.get("volume") else ref["path"])


def _entries(entries: list[dict[str, Any]], prefix: str, default: list[int], out: list[str]) -> None:
    """Lines for `entries`; `default` is the rest of the default path at this level ([] when off it)."""
    for index, entry in enumerate(entries):
        number = f"{prefix}{index}"
        on_path = bool(default) and default[0] == index
        title = clean(entry["title"], 70)
        if entry.get("submenu") is not None:
            out.append(f"  {number:<5} {title} >")
            _entries(entry["submenu"], f"{number}>", default[1:] if on_path else [], out)
            continue
        mark = "*" if on_path and len(default) == 1 else " "
        boot = entry.get("boot") or {}
        out.append(f"{mark} {number:<5} {title}")
        if boot.get("kind") == "linux":
            initrds = " ".join(_ref(i) for i in boot.get("initrds", [])) or "-"
            out.append(f"        kernel {_ref(boot.get('kernel'))}  initrd {initrds}")
            out.append(f"        args   {clean(boot.get('args', ''))}")
        else:
            why = boot.get("errors") or []
            desc = f"{boot.get('loader') or boot.get('kind', 'nothing')} {_ref(boot.get('kernel'))}".strip()
            out.append(f"        not PV-bootable: {clean(desc)}{'; ' + clean(why[-1]) if why else ''}")


REDACTED = "<redacted>"


def _redacted(secret: Any) -> Any:
    """[kind, secret] as [kind, REDACTED]: whether and how an entry is protected, never the secret."""
    if isinstance(secret, list) and len(secret) == 2:
        return [secret[0], REDACTED]
    return secret


def without_secrets(menu: dict[str, Any]) -> dict[str, Any]:
    """The menu reply for print-out: password secrets (plain text or hashes) replaced by REDACTED.
    A listing ends up in control planes' logs; the console, which needs them, gets the reply itself."""
    out = {k: v for k, v in menu.items() if k != "type"}
    if isinstance(out.get("passwords"), dict):
        out["passwords"] = {user: _redacted(secret) for user, secret in out["passwords"].items()}
    if isinstance(out.get("entry_auth"), dict):
        out["entry_auth"] = {
            key: {**rule, "password": _redacted(rule["password"])}
            if isinstance(rule, dict) and "password" in rule
            else rule
            for key, rule in out["entry_auth"].items()
        }
    return out


@dataclass(frozen=True)
class Instead:
    """What boots instead of the menu's default: XenServer's `/xenkernel` (in place of the whole menu)
    or another entry, by the host's title rules ({path, reason})."""

    xenkernel: XenKernel | None = None
    rules: dict[str, Any] | None = None


def render(found: InspectReply, menu: MenuReply | None, fmt: str, instead: Instead | None = None) -> str:
    """The listing of the reader's (validated) replies: text for the admin, or JSON (docs/json.md)."""
    instead = instead or Instead()
    if fmt == "json":
        doc = {
            "volumes": found.volumes,
            "configs": found.configs,
            "menu": without_secrets(menu.to_json()) if menu else None,
            "xenkernel": instead.xenkernel.to_json() if instead.xenkernel else None,
            "rules": instead.rules,
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"
    lines: list[str] = []
    if instead.xenkernel:
        xen = instead.xenkernel
        initrd = f" with initrd {clean(xen.initrd)}" if xen.initrd else ""
        lines.append(
            f"boots: ({clean(xen.volume)}){clean(xen.kernel)}{initrd} in place of the menu "
            "(XenServer's /xenkernel; --no-xenserver-rules: off)"
        )
    if menu:
        _menu_lines(menu, lines)
    if instead.rules:
        where = ">".join(str(i) for i in instead.rules.get("path", []))
        lines.append(f"boots: {where} instead ({clean(instead.rules.get('reason', ''))})")
    _disk_lines(found, lines)
    return "\n".join(lines) + "\n"


def _menu_lines(menu: MenuReply, lines: list[str]) -> None:
    default = menu.default
    lines.append(f"menu: {clean(menu.source)} ({menu.kind})")
    _entries(menu.entries, "", list(default.path), lines)
    path = ">".join(str(i) for i in default.path)
    titles = " > ".join(clean(t) for t in default.titles)
    lines.append(f"default: {path} '{titles}' ({'; '.join(clean(r) for r in default.reasons)})")


def _disk_lines(found: InspectReply, lines: list[str]) -> None:
    lines.append("volumes:")
    for vol in found.volumes:
        desc = vol.get("fstype") or "no filesystem"
        if vol.get("uuid"):
            desc += f" uuid={vol['uuid']}"
        if vol.get("label"):
            desc += f" label={vol['label']}"
        if vol.get("error"):
            desc += f" ({vol['error']})"
        lines.append(f"  ({clean(vol['name'])}) {vol['size']} bytes at {vol['offset']}: {clean(desc)}")
    lines.append("boot configs (in order of preference):")
    for cfg in found.configs or [{"kind": "none found", "volume": "", "path": ""}]:
        lines.append(f"  {cfg['kind']}: ({clean(cfg['volume'])}){clean(cfg['path'])}")
