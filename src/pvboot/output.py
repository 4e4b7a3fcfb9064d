"""The answer to libxl, byte-identical to pygrub's formats, plus pvboot's JSON.

sxp:     linux (kernel '/d/boot_kernel.x')(ramdisk '...')(args '...')   (Python repr quoting, as pygrub)
simple:  kernel P\\n ramdisk P\\n args A\\n \\n
simple0: the same with NUL; a value holding the delimiter is refused (XSA-198).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pvboot.errors import GuestDataError

FORMATS = ("sxp", "simple", "simple0", "json")


@dataclass(frozen=True)
class BootAnswer:
    """What libxl is told: host paths of the extracted files and the command line."""

    kernel: str
    ramdisk: str | None
    args: str | None
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-only details (entry title, source paths)


def format_answer(answer: BootAnswer, fmt: str) -> bytes:
    """Serialise `answer` in `fmt`; refuse values a delimiter-based format cannot represent."""
    if fmt == "sxp":
        text = f"linux (kernel {answer.kernel!r})"
        if answer.ramdisk:
            text += f"(ramdisk {answer.ramdisk!r})"
        if answer.args:
            text += f"(args {answer.args!r})"
        return text.encode()
    if fmt in ("simple", "simple0"):
        sep = "\n" if fmt == "simple" else "\0"
        for value in (answer.kernel, answer.ramdisk, answer.args):
            if value is not None and (sep in value or "\0" in value):
                raise GuestDataError(f"the {fmt} format cannot carry a value containing its delimiter")
        text = f"kernel {answer.kernel}{sep}"
        if answer.ramdisk:
            text += f"ramdisk {answer.ramdisk}{sep}"
        if answer.args:
            text += f"args {answer.args}{sep}"
        return (text + sep).encode()
    if fmt == "json":
        doc = {"kernel": answer.kernel, "ramdisk": answer.ramdisk, "args": answer.args or ""}
        doc.update(answer.extra)
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    raise ValueError(f"unknown output format {fmt}")
