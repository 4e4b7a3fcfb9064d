"""The host's title rules (XCP-ng's `/etc/pygrub/rules.d`): keep a blacklisted default from booting.

Runs in the parent, on the admin's files and the titles the reader reported. A rule is one line,
`title blacklist|prefer|accept REGEX [REGEX...]` (Python regular expressions, searched in an entry's
title); `#` starts a comment line. As in XCP-ng's pygrub, an entry is acceptable unless a `blacklist`
rule matches its title (`prefer` and `accept` mark it acceptable, which it already is), and when the
default entry is blacklisted the first acceptable entry in menu order boots instead. An explicit
`--entry` and a choice on the console are never overridden. Every replacement is logged to syslog.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RULES_ENV = "PVBOOT_RULES_DIRS"  # colon-separated directories, replacing DEFAULT_DIRS (tests, packagers)
DEFAULT_DIRS = ("/etc/pygrub/rules.d", "/etc/pvboot/rules.d")
ACTIONS = ("blacklist", "prefer", "accept")
MAX_RULE_FILES = 256
MAX_RULE_FILE_SIZE = 1 << 20
MAX_TITLE = 1024  # characters of a guest title a rule is matched against


@dataclass(frozen=True)
class Rule:
    """One rule line; `where` is `file:line`, for the log."""

    action: str
    patterns: tuple[re.Pattern[str], ...]
    where: str

    def matches(self, title: str) -> bool:
        return any(p.search(title[:MAX_TITLE]) for p in self.patterns)


class RuleError(Exception):
    """A rules file the admin wrote cannot be read or parsed."""


def rule_dirs() -> list[str]:
    value = os.environ.get(RULES_ENV)
    if value is None:
        return list(DEFAULT_DIRS)
    return [d for d in value.split(":") if d]


def parse_rules(text: str, name: str) -> list[Rule]:
    """The rules of one file. Lines that are no rule (another first word than `title`) are ignored,
    as XCP-ng's pygrub ignores them; a bad regular expression is an error naming the line."""
    rules: list[Rule] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#") or words[0] != "title" or len(words) < 2:
            continue
        action = words[1]
        if action not in ACTIONS:
            raise RuleError(f"{name}:{number}: unknown action {action!r} (blacklist, prefer or accept)")
        try:
            patterns = tuple(re.compile(word) for word in words[2:])
        except re.error as exc:
            raise RuleError(f"{name}:{number}: bad regular expression: {exc}") from None
        rules.append(Rule(action, patterns, f"{name}:{number}"))
    return rules


def load_rules(dirs: list[str] | None = None) -> list[Rule]:
    """Every rule of every regular file in `dirs` (sorted by name within a directory)."""
    rules: list[Rule] = []
    for directory in rule_dirs() if dirs is None else dirs:
        try:
            names = sorted(os.listdir(directory))[:MAX_RULE_FILES]
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise RuleError(f"cannot read {directory}: {exc.strerror}") from None
        for name in names:
            path = os.path.join(directory, name)
            if not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as fh:
                    text = fh.read(MAX_RULE_FILE_SIZE).decode("utf-8", "replace")
            except OSError as exc:
                raise RuleError(f"cannot read {path}: {exc.strerror}") from None
            rules += parse_rules(text, path)
    return rules


def blacklisted_by(rules: list[Rule], title: str) -> Rule | None:
    """The first blacklist rule matching `title`, else None (the entry is acceptable)."""
    for rule in rules:
        if rule.action == "blacklist" and rule.matches(title):
            return rule
    return None


@dataclass(frozen=True)
class Candidate:
    """A bootable entry of the reader's menu reply: its path (`[1, 2]`) and its title."""

    path: list[int]
    title: str


def candidates(entries: Any, prefix: tuple[int, ...] = (), depth: int = 0) -> Iterator[Candidate]:
    """The leaf entries of a menu reply in menu order (submenus flattened, as pygrub lists them) that
    boot a Linux kernel; malformed parts of the reply are skipped."""
    if not isinstance(entries, list) or depth > 16:
        return
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        title = entry.get("title")
        if entry.get("submenu") is not None:
            yield from candidates(entry["submenu"], (*prefix, index), depth + 1)
        elif isinstance(title, str) and _boots_linux(entry.get("boot")):
            yield Candidate([*prefix, index], title)


def _boots_linux(boot: Any) -> bool:
    return isinstance(boot, dict) and boot.get("kind") == "linux"


@dataclass(frozen=True)
class Replacement:
    """The default was blacklisted: boot `path` instead; `reason` says why, for -l, JSON and syslog."""

    path: list[int]
    title: str
    reason: str


def replace_default(rules: list[Rule], menu: dict[str, Any]) -> Replacement | None:
    """None when the default may boot; else the first acceptable entry (None when there is none:
    then, as in XCP-ng's pygrub, the default boots all the same, and that is logged)."""
    default = menu.get("default")
    titles = default.get("titles") if isinstance(default, dict) else None
    if not rules or not isinstance(titles, list) or not titles or not isinstance(titles[-1], str):
        return None
    rule = blacklisted_by(rules, titles[-1])
    if rule is None:
        return None
    shown = _printable(titles[-1])
    for entry in candidates(menu.get("entries")):
        if blacklisted_by(rules, entry.title) is None:
            reason = f"the default '{shown}' is blacklisted by {rule.where}; the first acceptable entry boots"
            syslog(f'"{shown}" is blacklisted by {rule.where}; "{_printable(entry.title)}" will be started')
            return Replacement(entry.path, entry.title, reason)
    syslog(f'"{shown}" is blacklisted by {rule.where}, and no entry is acceptable: it will be started')
    return None


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text[:MAX_TITLE])


def syslog(message: str) -> None:
    """One line in the host's syslog (as XCP-ng's pygrub logs rule decisions); never fails the run."""
    log.debug("syslog: %s", message)
    try:
        import syslog as _syslog

        _syslog.openlog("pvboot", 0, _syslog.LOG_DAEMON)
        _syslog.syslog(_syslog.LOG_NOTICE, message)
    except OSError:
        pass
