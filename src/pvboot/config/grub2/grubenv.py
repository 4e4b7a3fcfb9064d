"""GRUB's environment block (grubenv): `# GRUB Environment Block` then `name=value` lines.

Values escape with backslash (lib/envblk.c); a malformed line ends the block, as in GRUB.
"""

from __future__ import annotations

SIGNATURE = "# GRUB Environment Block\n"


def parse_envblk(data: str) -> dict[str, str] | None:
    """The variables of an environment block, or None when the signature is missing."""
    if not data.startswith(SIGNATURE):
        return None
    found: dict[str, str] = {}
    for line in data[len(SIGNATURE) :].split("\n")[:-1]:  # a line without its newline is broken
        if not line or line.startswith("#"):
            continue
        name, sep, raw = line.partition("=")
        if not sep:
            break
        value = []
        i = 0
        while i < len(raw):
            if raw[i] == "\\" and i + 1 < len(raw):
                i += 1
            value.append(raw[i])
            i += 1
        found[name] = "".join(value)
    return found
