"""GRUB's environment block (grubenv): `# GRUB Environment Block` then `name=value` lines.

Parsed exactly as lib/envblk.c grub_envblk_iterate does, quirks included:
- the block must be longer than the signature (grub_envblk_open compares sizeof, which counts the NUL);
- a line starting with `#` is skipped up to its end (a backslash there escapes the next character,
  newline included);
- any other line is a name up to the next `=` — wherever it is, even on a later line, so an empty or
  `=`-less line makes a name that holds newlines — then a value up to the next unescaped newline,
  with `\\x` meaning `x`;
- no `=` before the end, or a value without its newline, ends the block ("broken").
"""

from __future__ import annotations

SIGNATURE = "# GRUB Environment Block\n"


def parse_envblk(data: str) -> dict[str, str] | None:
    """The variables of an environment block in order (a later duplicate wins), or None when it is not
    one ("invalid environment block")."""
    if len(data) <= len(SIGNATURE) or not data.startswith(SIGNATURE):
        return None
    found: dict[str, str] = {}
    p, end = len(SIGNATURE), len(data)
    while p < end:
        if data[p] != "#":
            eq = data.find("=", p)
            if eq < 0:
                break
            q = eq + 1
            while q < end and data[q] != "\n":
                q += 2 if data[q] == "\\" else 1
            if q >= end:
                break
            value: list[str] = []
            i = eq + 1
            while i < q:
                if data[i] == "\\":
                    i += 1
                value.append(data[i])
                i += 1
            found[data[p:eq]] = "".join(value)
            p = q
        while p < end:  # find_next_line
            if data[p] == "\\":
                p += 2
            elif data[p] == "\n":
                break
            else:
                p += 1
        p += 1
    return found
