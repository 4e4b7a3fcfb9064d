"""GRUB legacy passwords as GRUB 2's legacy_configfile turns them into access rules (legacy_parse.c,
legacycfg.c), for the menu reply of a grub-legacy menu. It runs in the reader (pvboot.reader), beside the
menu.lst reader, never in the console that asks for the passwords.

- A global `password [--md5] PASSWD` becomes `if [ "$superusers" = "" ]; then superusers=legacy; fi;
  legacy_password ...`: user "legacy" with that secret, and superusers "legacy". The reader already
  gives every entry but the last `--users legacy`, as legacycfg.c does.
- `password` inside an entry becomes `if ! legacy_check_password ...; then return; fi`: the password
  alone (no user name) is asked before the entry boots, and logs no one in.
- `lock` inside an entry becomes `if ! authenticate legacy; then return; fi`.

The reader keeps these in `Entry.handle` (`LegacyEntryInfo`); `legacy_auth(menu)` gives the fields the
console needs, to merge into the child's menu reply: {"superusers", "passwords", "entry_auth"} where
entry_auth maps a top-level index (as a string) to {"password": [kind, secret]} and/or {"lock": True}.
"""

from __future__ import annotations

from typing import Any

from pvboot.menu import Menu


def _secret(password: Any) -> list[str]:
    """legacy_password's argument forms: PASSWD (plain), --md5 HASH, any other option denies."""
    option = str(getattr(password, "option", "") or "")
    text = str(getattr(password, "password", ""))
    if not option:
        return ["plain", text]
    if option == "--md5":
        return ["md5crypt", text]
    return ["deny", ""]


def legacy_auth(menu: Menu) -> dict[str, Any]:
    """The access fields of a GRUB legacy menu (see the module docstring); empty dict when none apply."""
    global_password = None
    entry_auth: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(menu.entries):
        info = entry.handle
        if info is None:
            continue
        if global_password is None and getattr(info, "menu_password", None) is not None:
            global_password = info.menu_password
        rules: dict[str, Any] = {}
        if getattr(info, "password", None) is not None:
            rules["password"] = _secret(info.password)
        if getattr(info, "lock", False):
            rules["lock"] = True
        if rules:
            entry_auth[str(index)] = rules
    fields: dict[str, Any] = {}
    if global_password is not None:
        fields["superusers"] = menu.superusers if menu.superusers else "legacy"
        fields["passwords"] = {**menu.passwords, "legacy": _secret(global_password)}
    if entry_auth:
        fields["entry_auth"] = entry_auth
    return fields
