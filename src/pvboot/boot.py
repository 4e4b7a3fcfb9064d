"""The one orchestration, in the parent: start the confined child, ask, choose, check, answer libxl.

The parent never opens the guest image. It creates the output files, lets the child fill them, checks
the child's report against what is really on disk, and only then writes the answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

from pvboot import listing
from pvboot.errors import GuestDataError, NotFoundError, PvbootError
from pvboot.guest import GuestSession, OutputFds, serve
from pvboot.limits import Limits
from pvboot.outfiles import OutputFiles
from pvboot.output import BootAnswer, format_answer
from pvboot.request import BootRequest
from pvboot.sandbox import Child
from pvboot.sandbox.child import Confinement

log = logging.getLogger(__name__)


class Terminated(PvbootError):
    """libxl (or the admin) asked pvboot to stop."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(f"stopped by {signal.Signals(signum).name}")


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like errors, so every `finally` below cleans up."""
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _printable(value: str, what: str) -> str:
    """Refuse guest strings a libxl answer must not carry (XSA-198): NUL, newlines, control characters."""
    if any(not ch.isprintable() for ch in value):
        raise GuestDataError(f"{what} contains control characters: refused")
    return value


def _join_args(*parts: str | None) -> str | None:
    text = " ".join(p for p in parts if p)
    return text or None


def run(request: BootRequest) -> int:
    """Carry out one request; returns the exit status (errors are raised as PvbootError)."""
    limits = Limits.from_env()
    if request.image != "-" and not os.path.exists(request.image):
        raise NotFoundError(f"{request.image}: no such disk image")
    with _stop_on_signals():
        if request.isconfig:
            return _isconfig(request, limits)
        if request.list_entries:
            return _list(request, limits)
        return _boot(request, limits)


def _start_child(request: BootRequest, limits: Limits, files: OutputFiles | None) -> Child:
    fds = OutputFds(files.fds["kernel"], files.fds["ramdisk"]) if files else OutputFds(None, None)
    session = GuestSession(request.image, limits, fds, request.offset)
    conf = Confinement(
        address_space=limits.child_address_space,
        cpu_seconds=limits.child_cpu_seconds,
        file_size=limits.max_file_size,
        keep_fds=[fd for fd in (fds.kernel, fds.ramdisk) if fd is not None],
        runas=request.runas,
        debug=request.debug,
    )
    return Child(lambda channel: serve(session, channel), conf)


def _list(request: BootRequest, limits: Limits) -> int:
    child = _start_child(request, limits, None)
    try:
        found = child.request({"op": "inspect"}, limits.wall_timeout)
        menu = child.request({"op": "menu"}, limits.wall_timeout)
    finally:
        child.stop()
    sys.stdout.write(listing.render(found, menu, request.output_format))
    return 0


def _isconfig(request: BootRequest, limits: Limits) -> int:
    """pygrub's --isconfig: parse a config file given on the host and print what it boots."""
    child = _start_child(request, limits, None)
    try:
        found = child.request({"op": "isconfig"}, limits.wall_timeout)
    finally:
        child.stop()
    lines = [
        f"  title: {listing.clean(found.get('title', ''))}",
        f"  kernel: {listing.clean(found.get('kernel'))}",
    ]
    for initrd in found.get("initrds", []):
        lines.append(f"  initrd: {listing.clean(initrd)}")
    lines.append(f"  args: {listing.clean(found.get('args', ''))}")
    if not found.get("bootable"):
        lines.append(f"  not PV-bootable: {listing.clean(found.get('why', ''))}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _boot(request: BootRequest, limits: Limits) -> int:
    files = (
        None
        if request.not_really
        else OutputFiles(request.output_directory, not request.output_directory_given)
    )
    try:
        child = _start_child(request, limits, files)
        try:
            if request.kernel:
                initrds = [request.ramdisk] if request.ramdisk else []
                ask: dict[str, Any] = {"op": "extract", "kernel": request.kernel, "initrds": initrds}
                reply = child.request(ask, limits.wall_timeout)
                args = request.args
            else:
                reply = child.request({"op": "boot", "entry": request.entry}, limits.wall_timeout)
                initrds = list(reply.get("ramdisk_sources", []))
                args = _join_args(
                    _printable(str(reply.get("args", "")), "the entry's command line"), request.args
                )
        finally:
            child.stop()
        answer = _answer(reply, files, initrds, args)
        payload = format_answer(answer, request.output_format)
        if files is not None:
            files.keep()
        _write_output(request.output, payload)
    except BaseException:
        if files is not None:
            files.discard()
        raise
    return 0


def _answer(
    reply: dict[str, Any], files: OutputFiles | None, initrds: list[str], args: str | None
) -> BootAnswer:
    """Check the child's report against the files themselves, then build libxl's answer."""
    kernel_source = _printable(str(reply.get("kernel_source", "")), "the kernel path")
    sources = [_printable(str(s), "the ramdisk path") for s in reply.get("ramdisk_sources", [])]
    extra: dict[str, Any] = {"kernel_source": kernel_source, "ramdisk_sources": sources}
    if "title" in reply:
        extra["entry"] = {
            "title": _printable(str(reply["title"]), "the entry title"),
            "path": reply.get("path"),
        }
    if args is not None:
        _printable(args, "the command line")
    if files is None:
        return BootAnswer(
            f"<kernel:{kernel_source}>", f"<ramdisk:{','.join(sources)}>" if sources else None, args, extra
        )
    if reply.get("kernel_size") != files.size("kernel"):
        raise GuestDataError("the kernel copy does not match what the reading process reported")
    if initrds:
        if reply.get("ramdisk_size") != files.size("ramdisk"):
            raise GuestDataError("the ramdisk copy does not match what the reading process reported")
        ramdisk: str | None = files.paths["ramdisk"]
    else:
        files.drop("ramdisk")
        ramdisk = None
    return BootAnswer(files.paths["kernel"], ramdisk, args, extra)


def _write_output(path: str | None, payload: bytes) -> None:
    """The answer, in one write, to --output or stdout."""
    if path is None:
        sys.stdout.flush()
        os.write(sys.stdout.fileno(), payload)
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise PvbootError(f"cannot open --output {path}: {exc.strerror}") from None
    try:
        os.write(fd, payload)
    finally:
        os.close(fd)
