"""The kernel stage's two seams: the child checks the chosen files before copying them, the parent
validates what the child says about them before it goes into the JSON answer.

Reader (reader.py, before copying):   check = check_boot_files(kernel, initrds, devicetree, limits, ...)
                                    reply.update(check.reply_fields())
Parent (boot.py, building extra):   extra.update(clean_reply_fields(reply))
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from pvboot.errors import GuestDataError
from pvboot.kernel.check import KernelInfo, check_kernel
from pvboot.kernel.dtb import DtbInfo, validate_dtb
from pvboot.kernel.initrd import check_initrd
from pvboot.kernel.verdicts import needs_decoding
from pvboot.limits import KernelLimits, Limits

trace = logging.getLogger("pvboot.trace")


class KernelNotBootable(GuestDataError):
    """The chosen kernel cannot run as a Xen guest; the message names the entry, the file and why."""


class GuestFileLike(Protocol):
    """pvboot.extract.GuestFile: a file in a guest tree, or a byte range of one."""

    @property
    def display(self) -> str: ...

    def open(self) -> tuple[int, BinaryIO]: ...

    def read_small(self, cap: int) -> bytes: ...


@dataclass
class BootFilesCheck:
    """What the child learnt about the chosen files."""

    kernel: KernelInfo | None = None  # None with --no-kernel-check
    warnings: list[str] = field(default_factory=list)
    devicetree: DtbInfo | None = None
    devicetree_data: bytes | None = None  # the validated blob, to write to the devicetree output fd
    devicetree_source: str | None = None
    kernel_deferred: bool = False  # compressed: the parent judges its own copy (kernel/judge.py)

    def reply_fields(self) -> dict[str, Any]:
        """The JSON-able fields to add to the child's boot/extract reply."""
        return {
            "kernel_deferred": self.kernel_deferred,
            "kernel_info": self.kernel.to_json() if self.kernel else None,
            "warnings": list(self.warnings),
            "devicetree_source": self.devicetree_source,
            "devicetree_info": self.devicetree.to_json() if self.devicetree else None,
        }


def refusal(problems: Sequence[str], kernel: str, entry: str | None) -> str:
    """The one-line error for a kernel that cannot boot: entry, file, what is missing, the way out."""
    who = f"menu entry '{entry}': " if entry else ""
    return (
        f"{who}kernel {kernel} cannot boot as a Xen guest: {'; '.join(problems)} "
        "(--no-kernel-check boots it anyway)"
    )


def check_boot_files(
    kernel: GuestFileLike,
    initrds: Sequence[GuestFileLike],
    devicetree: GuestFileLike | None,
    limits: Limits,
    *,
    entry: str | None = None,
    check: bool = True,
    defer_decoding: bool = False,
) -> BootFilesCheck:
    """Judge the kernel (raise KernelNotBootable when Xen could not start it), warn about initrds that are
    not cpio archives, read and validate the device tree. With `check=False` (--no-kernel-check) only the
    device tree is read, size-capped but not validated. `defer_decoding`: a kernel that would have to be
    decompressed is not judged here but left to the parent, which judges its own copy of it once and
    remembers the verdict (kernel/judge.py)."""
    result = BootFilesCheck()
    kl = KernelLimits.from_limits(limits)
    if devicetree is not None:
        result.devicetree_source = devicetree.display
        data = devicetree.read_small(kl.max_dtb_size)
        if check:
            result.devicetree = validate_dtb(data, devicetree.display, kl)
            trace.info(
                "device tree %s: FDT v%d, %d bytes, model %r",
                devicetree.display,
                result.devicetree.version,
                result.devicetree.size,
                result.devicetree.model,
            )
        result.devicetree_data = data
    if not check:
        trace.info("kernel %s: not checked (--no-kernel-check)", kernel.display)
        return result
    size, stream = kernel.open()
    if defer_decoding and size > 0:
        stream.seek(0)
        with contextlib.suppress(OSError):  # (then the check itself reports the read error)
            result.kernel_deferred = needs_decoding(stream.read(4096))
    if result.kernel_deferred:
        trace.info("kernel %s: compressed: judged once its copy is made (kernel/judge.py)", kernel.display)
    else:
        info = check_kernel(stream, size, limits)
        result.kernel = info
        trace.info("kernel %s: %s", kernel.display, describe(info.to_json()))
        if not info.bootable:
            raise KernelNotBootable(refusal(info.problems, kernel.display, entry))
        result.warnings += [f"kernel {kernel.display}: {w}" for w in info.warnings]
    for item in initrds:
        size, stream = item.open()
        warning = check_initrd(stream, size, item.display)
        if warning:
            trace.info("%s", warning)
            result.warnings.append(warning)
    return result


def describe(info: dict[str, Any]) -> str:
    """A verdict (KernelInfo.to_json()) for the --debug trace."""
    modes = "+".join(m for m, key in (("PV", "pv"), ("PVH", "pvh")) if info.get(key)) or "not bootable"
    compression, notes = info.get("compression"), info.get("notes_source") or "none"
    return (
        f"{info.get('format')} {info.get('arch') or '?'} {info.get('version') or 'unknown version'}"
        f"{f', {compression}' if compression else ''}, {modes} (Xen notes: {notes})"
        f"{', remembered from an earlier boot of the same bytes' if info.get('remembered') else ''}"
    )


def write_devicetree(fd: int, data: bytes) -> int:
    """Write the validated device tree to its output file; returns the size."""
    import os

    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError as exc:
            raise GuestDataError(f"cannot write the device tree copy: {exc.strerror}") from None
        view = view[n:]
    return len(data)


# --- parent side ---------------------------------------------------------------------------------

_KERNEL_STR = (
    "format",
    "arch",
    "version",
    "banner",
    "compression",
    "boot_protocol",
    "pv_reason",
    "pvh_reason",
    "notes_source",
)
_KERNEL_BOOL = ("pv", "pvh", "bootable", "remembered")


def _clean_str(value: Any, cap: int = 1000) -> str | None:
    if value is None:
        return None
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return text[:cap]


def _clean_list(value: Any, cap: int = 64) -> list[str]:
    if not isinstance(value, list):
        return []
    return [s for s in (_clean_str(v) for v in value[:cap]) if s is not None]


def clean_reply_fields(reply: dict[str, Any]) -> dict[str, Any]:
    """The kernel-stage fields of a child reply, type-checked and made printable, for the JSON answer
    (`kernel_info`, `warnings`, `devicetree_source`, `devicetree_info`; absent ones are None/[])."""
    out: dict[str, Any] = {
        "kernel_info": None,
        "warnings": _clean_list(reply.get("warnings")),
        "devicetree_source": _clean_str(reply.get("devicetree_source")),
        "devicetree_info": None,
    }
    info = reply.get("kernel_info")
    if isinstance(info, dict):
        clean: dict[str, Any] = {k: _clean_str(info.get(k), 200) for k in _KERNEL_STR}
        clean.update({k: bool(info.get(k)) for k in _KERNEL_BOOL})
        clean["modes"] = [mode for mode in ("pv", "pvh") if clean[mode]]  # libxl types that can start it
        raw_notes = info.get("xen_notes")
        notes: dict[str, Any] = raw_notes if isinstance(raw_notes, dict) else {}
        clean["xen_notes"] = {
            str(_clean_str(k, 32)): (v if isinstance(v, bool) else _clean_str(v, 200))
            for k, v in list(notes.items())[:64]
        }
        clean["problems"] = _clean_list(info.get("problems"))
        clean["warnings"] = _clean_list(info.get("warnings"))
        out["kernel_info"] = clean
    dtb = reply.get("devicetree_info")
    if isinstance(dtb, dict):
        out["devicetree_info"] = {
            "source": _clean_str(dtb.get("source")),
            "size": int(dtb.get("size") or 0),
            "version": int(dtb.get("version") or 0),
            "model": _clean_str(dtb.get("model"), 200),
            "compatible": _clean_list(dtb.get("compatible"), 16),
            "nodes": int(dtb.get("nodes") or 0),
        }
    return out
