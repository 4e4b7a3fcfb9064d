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
from collections.abc import Callable, Iterator
from dataclasses import replace
from types import FrameType
from typing import Any, TypeVar

from pvboot import listing
from pvboot.disk.container import declared_qcow2
from pvboot.errors import GuestDataError, NotFoundError, PvbootError
from pvboot.guard import cap_address_space, wall_clock
from pvboot.kernel.judge import settle
from pvboot.kernel.verdicts import cache_dir
from pvboot.limits import Limits
from pvboot.outfiles import AnswerFile, OutputFiles
from pvboot.output import BootAnswer, format_answer
from pvboot.reader import GuestSession, OutputFds, serve
from pvboot.request import BootRequest
from pvboot.sandbox import Child
from pvboot.sandbox.child import Confinement
from pvboot.sandbox.confine import resolve_runas
from pvboot.sandbox.protocol import (
    BootEntryRequest,
    BootReply,
    ExtractRequest,
    InspectReply,
    MenuReply,
    Reader,
    XenKernel,
    copy_size,
    created_file,
    printable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


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


def _join_args(*parts: str | None) -> str | None:
    text = " ".join(p for p in parts if p)
    return text or None


def run(request: BootRequest) -> int:
    """Carry out one request; returns the exit status (errors are raised as PvbootError)."""
    limits = Limits.from_env()
    cap_address_space(limits.parent_address_space)  # the root parent, too, is bounded on hostile replies
    if request.image != "-" and not os.path.exists(request.image):
        raise NotFoundError(f"{request.image}: no such disk image")
    with _stop_on_signals():
        if request.isconfig:
            return _isconfig(request, limits)
        if request.report:
            return _report(request, limits)
        if request.list_entries:
            return _list(request, limits)
        return _boot(request, limits)


def _report(request: BootRequest, limits: Limits) -> int:
    """--report: what pvboot sees and would boot, redacted, on stdout; errors go into the report."""
    from pvboot.report import build_report, collect_versions

    child = _start_child(request, limits, None)
    reader = Reader(child, limits.wall_timeout)
    errors: list[str] = []
    try:
        inspect = _attempt("inspect", lambda: reader.inspect(facts=True), errors) or InspectReply()
        menu = _attempt("menu", reader.menu, errors)
        booted = _attempt("boot", lambda: reader.boot(BootEntryRequest(entry=request.entry)), errors)
    finally:
        child.stop()
    versions = collect_versions()
    with wall_clock(limits.parent_seconds, "redacting the report"):
        text = build_report(
            inspect.to_json(),
            menu.to_json() if menu else None,
            errors,
            versions,
            boot_reply=booted.to_json() if booted else None,
        )
    sys.stdout.write(text)
    return 0


def _attempt(op: str, ask: Callable[[], T], errors: list[str]) -> T | None:
    """`ask()`, or None with its error kept for the report."""
    try:
        return ask()
    except PvbootError as exc:
        errors.append(f"{op}: {exc}")
        return None


def _start_child(
    request: BootRequest, limits: Limits, files: OutputFiles | None, defer_decoding: bool = False
) -> Child:
    fds = (
        OutputFds(files.fds["kernel"], files.fds["ramdisk"], files.fds.get("devicetree"))
        if files
        else OutputFds(None, None)
    )
    session = GuestSession(
        request.image,
        limits,
        fds,
        request.offset,
        kernel_check=request.kernel_check,
        defer_decoding=defer_decoding,
        disk_format=request.disk_format,
        xenserver_rules=request.xenserver_rules,
    )
    follow = declared_qcow2(request.image, request.disk_format) and not request.isconfig
    conf = Confinement(
        address_space=limits.child_address_space,
        cpu_seconds=limits.child_cpu_seconds,
        file_size=limits.max_file_size,
        keep_fds=[fd for fd in (fds.kernel, fds.ramdisk, fds.devicetree) if fd is not None],
        runas=resolve_runas(request.runas),
        debug=request.debug,
        image=request.image,
        backing=limits if follow else None,  # the backing chain is opened before confinement
        image_dir=request.isconfig,
    )
    return Child(lambda channel: serve(session, channel), conf, limits.reply_bounds)


def _list(request: BootRequest, limits: Limits) -> int:
    """-l: the disk, the menu and its default, and what would boot instead (/xenkernel, title rules)."""
    from pvboot.titlerules import RuleError, load_rules, replace_default

    child = _start_child(request, limits, None)
    reader = Reader(child, limits.wall_timeout)
    try:
        found = reader.inspect()
        xenkernel = _xenkernel(reader, request)
        menu: MenuReply | None
        try:
            menu = reader.menu()
        except PvbootError:
            if xenkernel is None:
                raise
            menu = None  # /xenkernel boots without a menu, so a disk with none still lists
    finally:
        child.stop()
    with wall_clock(limits.parent_seconds, "listing the menu"):
        try:
            replacement = (
                replace_default(load_rules(), menu.to_json()) if menu and request.entry is None else None
            )
        except RuleError as exc:
            raise PvbootError(f"title rules: {exc}") from None
        extras = listing.Instead(
            xenkernel=xenkernel,
            rules={"path": replacement.path, "reason": replacement.reason} if replacement else None,
        )
        text = listing.render(found, menu, request.output_format, extras)
    sys.stdout.write(text)
    return 0


def _isconfig(request: BootRequest, limits: Limits) -> int:
    """pygrub's --isconfig: parse a config file given on the host and print what it boots."""
    child = _start_child(request, limits, None)
    try:
        found = Reader(child, limits.wall_timeout).isconfig()
    finally:
        child.stop()
    lines = [f"  title: {listing.clean(found.title)}", f"  kernel: {listing.clean(found.kernel)}"]
    for initrd in found.initrds:
        lines.append(f"  initrd: {listing.clean(initrd)}")
    lines.append(f"  args: {listing.clean(found.args)}")
    if not found.bootable:
        lines.append(f"  not PV-bootable: {listing.clean(found.why)}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _boot(request: BootRequest, limits: Limits) -> int:
    output = AnswerFile(request.output)  # first: a --output pvboot must not write fails before any work
    try:
        return _boot_into(request, limits, output)
    finally:
        output.close()


def _boot_into(request: BootRequest, limits: Limits, output: AnswerFile) -> int:
    # the device tree file only for JSON: libxl's formats have no item for it
    roles = ("kernel", "ramdisk", "devicetree") if request.output_format == "json" else ("kernel", "ramdisk")
    files = (
        None
        if request.not_really
        else OutputFiles(request.output_directory, not request.output_directory_given, roles)
    )
    remember = request.kernel_check and files is not None and cache_dir() is not None  # (kernel/judge.py)
    try:
        child = _start_child(request, limits, files, remember)
        reader = Reader(child, limits.wall_timeout)
        try:
            xenkernel = _xenkernel(reader, request)
            if request.kernel or xenkernel:
                if xenkernel:
                    kernel, volume = xenkernel.kernel, xenkernel.volume
                    initrds = [xenkernel.initrd] if xenkernel.initrd else []
                    base_args = request.default_args
                else:
                    assert request.kernel is not None
                    kernel, volume, base_args = request.kernel, None, None
                    initrds = [request.ramdisk] if request.ramdisk else []
                reply = reader.boot(ExtractRequest(kernel, initrds, volume))
                if xenkernel:
                    reply = replace(reply, reasons=[XENKERNEL_REASON])
                args = _join_args(base_args, request.args, request.extra_args)
            else:
                reply = _interactive(reader, request, limits)
                initrds = list(reply.ramdisk_sources)
                args = _join_args(reply.args, request.args, request.extra_args)
        finally:
            child.stop()
        if files is not None and reply.kernel_deferred:
            runas = resolve_runas(request.runas)
            reply = settle(reply, files.fds["kernel"], limits, runas=runas, debug=request.debug)
        answer = _answer(reply, files, initrds, args)
        request.record.update(
            entry=answer.extra.get("entry", {}).get("title"),
            kernel=answer.extra.get("kernel_source"),
            kernel_info=answer.extra.get("kernel_info"),
        )
        if request.interactive or request.debug:  # -q (libxl, the tests) keeps stderr empty on success
            for warning in answer.extra.get("warnings", []):
                print(f"pvboot: warning: {listing.clean(warning)}", file=sys.stderr)
        payload = format_answer(answer, request.output_format)
        output.write(payload)  # before keep(): a failed write discards the files too
        if files is not None:
            files.keep()
    except BaseException:
        if files is not None:
            files.discard()
        raise
    return 0


XENKERNEL_REASON = "/xenkernel on the first filesystem boots in place of the menu (XenServer's convention)"


def _xenkernel(reader: Reader, request: BootRequest) -> XenKernel | None:
    """Where XenServer's `/xenkernel` is (config/xenserver.py), when it applies: not with --kernel,
    --entry or --no-xenserver-rules. The reader's answer is checked like any other."""
    if request.kernel or request.entry is not None or not request.xenserver_rules:
        return None
    return reader.xenkernel()


def _by_rules(reader: Reader, limits: Limits) -> BootEntryRequest | None:
    """The boot request when the host's title rules (pvboot/titlerules.py) blacklist the default;
    None when they do not (or there are none)."""
    from pvboot.titlerules import RuleError, load_rules, replace_default

    try:
        rules = load_rules()
    except RuleError as exc:
        raise PvbootError(f"title rules: {exc}") from None
    if not rules:
        return None
    menu = reader.menu()
    with wall_clock(limits.parent_seconds, "matching the title rules"):
        replacement = replace_default(rules, menu.to_json())
    if replacement is None:
        return None
    log.debug("%s", replacement.reason)
    return BootEntryRequest(entry=">".join(map(str, replacement.path)), reason=replacement.reason)


def _interactive(reader: Reader, request: BootRequest, limits: Limits) -> BootReply:
    """The boot reply: from the console menu when interactive on a terminal (libxl's pty on stdin and
    stdout, pygrub's default), else the default (or --entry) entry, never waiting for input; the
    host's title rules may replace a blacklisted default there."""
    default = BootEntryRequest(entry=request.entry)
    if not (request.interactive and os.isatty(0) and os.isatty(1)):
        ruled = _by_rules(reader, limits) if request.entry is None else None
        return reader.boot(ruled or default)
    from pvboot.tui import interact

    return interact(reader, default, request.max_menu_wait)


def _answer(reply: BootReply, files: OutputFiles | None, initrds: list[str], args: str | None) -> BootAnswer:
    """Check the reader's (validated) report against the files themselves, then build libxl's answer."""
    kernel_source, sources = reply.kernel_source, list(reply.ramdisk_sources)
    extra: dict[str, Any] = {"kernel_source": kernel_source, "ramdisk_sources": sources}
    if reply.title is not None:
        extra["entry"] = {"title": reply.title, "path": reply.path}
    extra["reasons"] = list(reply.reasons)
    if args is not None:
        printable(args, "the command line")
    extra.update(reply.kernel_fields())
    dtb_source = extra["devicetree_source"]
    if files is None:
        extra["devicetree"] = f"<devicetree:{dtb_source}>" if dtb_source else None
        return BootAnswer(
            f"<kernel:{kernel_source}>", f"<ramdisk:{','.join(sources)}>" if sources else None, args, extra
        )
    if copy_size(reply.kernel_size, files, "kernel", "kernel") == 0:
        raise GuestDataError(f"the kernel {kernel_source} is empty")
    if dtb_source and "devicetree" in files.paths:
        copy_size(reply.devicetree_size, files, "devicetree", "device tree")
        extra["devicetree"] = created_file(files, "devicetree")
    else:
        files.drop("devicetree")  # none named, or not asked for (only JSON reports a device tree)
        extra["devicetree"] = None
    if initrds:
        copy_size(reply.ramdisk_size, files, "ramdisk", "ramdisk")
        ramdisk: str | None = created_file(files, "ramdisk")
    else:
        files.drop("ramdisk")
        ramdisk = None
    return BootAnswer(created_file(files, "kernel"), ramdisk, args, extra)
