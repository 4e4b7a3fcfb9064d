"""The one orchestration, in the parent: start the confined child, ask, choose, check, answer libxl.

The parent never opens the guest image. It creates the output files, lets the child fill them, checks
the child's report against what is really on disk, and only then writes the answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

from pvboot import listing
from pvboot.disk.container import declared_qcow2
from pvboot.errors import GuestDataError, NotFoundError, PvbootError
from pvboot.guard import cap_address_space, wall_clock
from pvboot.guest import GuestSession, OutputFds, serve
from pvboot.kernel import clean_reply_fields
from pvboot.kernel.judge import settle
from pvboot.kernel.verdicts import cache_dir
from pvboot.limits import Limits
from pvboot.outfiles import AnswerFile, OutputFiles
from pvboot.output import BootAnswer, format_answer
from pvboot.request import BootRequest
from pvboot.sandbox import Child
from pvboot.sandbox.child import Confinement
from pvboot.sandbox.confine import resolve_runas

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


MAX_REPLY_STRING = 64 * 1024  # characters: far above any real command line, path or title
MAX_REASONS = 32  # why-lines of a boot reply kept for the JSON answer


def _printable(value: object, what: str) -> str:
    """Refuse guest strings a libxl answer must not carry (XSA-198): anything but a str of sane length
    without NUL, newlines, control or format characters (str.isprintable)."""
    if not isinstance(value, str):
        raise GuestDataError(f"{what} is not a string: refused")
    if len(value) > MAX_REPLY_STRING:
        raise GuestDataError(f"{what} is {len(value)} characters long: refused")
    if any(not ch.isprintable() for ch in value):
        raise GuestDataError(f"{what} contains control characters: refused")
    return value


def _sanitised(value: object, limit: int = 1024) -> str:
    """A guest title made safe for any terminal: non-printable characters become '?'."""
    text = value if isinstance(value, str) else ""
    return "".join(ch if ch.isprintable() else "?" for ch in text[:limit])


def _size(reply: dict[str, Any], key: str) -> int:
    value = reply.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise GuestDataError(f"the reading process reported no valid {key}")
    return value


def _created_file(files: OutputFiles, role: str) -> str:
    """The path of the `role` file the parent created, checked to still be that very file (the child
    only ever had its fd, but the answer must name what was written)."""
    path, fd = files.paths[role], files.fds[role]
    on_disk, written = os.lstat(path), os.fstat(fd)
    if (on_disk.st_dev, on_disk.st_ino) != (written.st_dev, written.st_ino) or not stat.S_ISREG(
        on_disk.st_mode
    ):
        raise GuestDataError(f"{path} is no longer the {role} file pvboot created")
    return path


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
    inspect: dict[str, Any] = {"volumes": [], "configs": []}
    menu: dict[str, Any] | None = None
    booted: dict[str, Any] | None = None
    errors: list[str] = []
    try:
        for ask in ({"op": "inspect", "facts": True}, {"op": "menu"}, {"op": "boot", "entry": request.entry}):
            try:
                reply = child.request(ask, limits.wall_timeout)
            except PvbootError as exc:
                errors.append(f"{ask['op']}: {exc}")
                continue
            if ask["op"] == "inspect":
                inspect = reply
            elif ask["op"] == "menu":
                menu = reply
            else:
                booted = reply
    finally:
        child.stop()
    versions = collect_versions()
    with wall_clock(limits.parent_seconds, "redacting the report"):
        text = build_report(inspect, menu, errors, versions, boot_reply=booted)
    sys.stdout.write(text)
    return 0


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
    try:
        found = child.request({"op": "inspect"}, limits.wall_timeout)
        xenkernel = _xenkernel(child, request, limits)
        try:
            menu = child.request({"op": "menu"}, limits.wall_timeout)
        except PvbootError:
            if xenkernel is None:
                raise
            menu = {}  # /xenkernel boots without a menu, so a disk with none still lists
    finally:
        child.stop()
    with wall_clock(limits.parent_seconds, "listing the menu"):
        try:
            replacement = replace_default(load_rules(), menu) if menu and request.entry is None else None
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
        try:
            xenkernel = _xenkernel(child, request, limits)
            if request.kernel or xenkernel:
                if xenkernel:
                    kernel, volume = xenkernel["kernel"], xenkernel["volume"]
                    initrds = [xenkernel["initrd"]] if xenkernel["initrd"] else []
                    base_args = request.default_args
                else:
                    assert request.kernel is not None
                    kernel, volume, base_args = request.kernel, None, None
                    initrds = [request.ramdisk] if request.ramdisk else []
                ask: dict[str, Any] = {"op": "extract", "kernel": kernel, "initrds": initrds}
                if volume:
                    ask["volume"] = volume
                reply = child.request(ask, limits.wall_timeout)
                if xenkernel:
                    reply["reasons"] = [XENKERNEL_REASON]
                args = _join_args(base_args, request.args, request.extra_args)
            else:
                reply = _interactive(child, request, limits)
                initrds = list(reply.get("ramdisk_sources", []))
                entry_args = _printable(str(reply.get("args", "")), "the entry's command line")
                args = _join_args(entry_args, request.args, request.extra_args)
        finally:
            child.stop()
        if files is not None and reply.get("kernel_deferred") is True:
            runas = resolve_runas(request.runas)
            settle(reply, files.fds["kernel"], limits, runas=runas, debug=request.debug)
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


def _xenkernel(child: Child, request: BootRequest, limits: Limits) -> dict[str, str | None] | None:
    """Where XenServer's `/xenkernel` is (config/xenserver.py), when it applies: not with --kernel,
    --entry or --no-xenserver-rules. The reader's answer is checked like any other."""
    if request.kernel or request.entry is not None or not request.xenserver_rules:
        return None
    found = child.request({"op": "xenkernel"}, limits.wall_timeout).get("found")
    if found is None:
        return None
    if not isinstance(found, dict):
        raise GuestDataError("the reading process reported a malformed /xenkernel")
    initrd = found.get("initrd")
    return {
        "volume": _printable(found.get("volume"), "the /xenkernel volume"),
        "kernel": _printable(found.get("kernel"), "the /xenkernel path"),
        "initrd": None if initrd is None else _printable(initrd, "the /xeninitrd path"),
    }


def _by_rules(child: Child, request: BootRequest, limits: Limits) -> dict[str, Any] | None:
    """The boot request when the host's title rules (pvboot/titlerules.py) blacklist the default;
    None when they do not (or there are none)."""
    from pvboot.titlerules import RuleError, load_rules, replace_default

    try:
        rules = load_rules()
    except RuleError as exc:
        raise PvbootError(f"title rules: {exc}") from None
    if not rules:
        return None
    menu = child.request({"op": "menu"}, limits.wall_timeout)
    with wall_clock(limits.parent_seconds, "matching the title rules"):
        replacement = replace_default(rules, menu)
    if replacement is None:
        return None
    log.debug("%s", replacement.reason)
    return {"op": "boot", "entry": ">".join(map(str, replacement.path)), "reason": replacement.reason}


def _interactive(child: Child, request: BootRequest, limits: Limits) -> dict[str, Any]:
    """The boot reply: from the console menu when interactive on a terminal (libxl's pty on stdin and
    stdout, pygrub's default), else the default (or --entry) entry, never waiting for input; the
    host's title rules may replace a blacklisted default there."""
    default: dict[str, Any] = {"op": "boot", "entry": request.entry}
    if not (request.interactive and os.isatty(0) and os.isatty(1)):
        ruled = _by_rules(child, request, limits) if request.entry is None else None
        return child.request(ruled or default, limits.wall_timeout)
    from pvboot.tui import interact

    return interact(child, limits.wall_timeout, default, request.max_menu_wait)


def _answer(
    reply: dict[str, Any], files: OutputFiles | None, initrds: list[str], args: str | None
) -> BootAnswer:
    """Check the child's report against the files themselves, then build libxl's answer."""
    kernel_source = _printable(reply.get("kernel_source", ""), "the kernel path")
    raw_sources = reply.get("ramdisk_sources", [])
    if not isinstance(raw_sources, list):
        raise GuestDataError("the reading process reported malformed ramdisk paths")
    sources = [_printable(s, "the ramdisk path") for s in raw_sources]
    extra: dict[str, Any] = {"kernel_source": kernel_source, "ramdisk_sources": sources}
    if "title" in reply:
        path = reply.get("path")
        valid = isinstance(path, list) and all(type(i) is int for i in path)
        extra["entry"] = {"title": _sanitised(reply["title"]), "path": path if valid else None}
    raw_reasons = reply.get("reasons")
    extra["reasons"] = (
        [_sanitised(r) for r in raw_reasons[:MAX_REASONS]] if isinstance(raw_reasons, list) else []
    )
    if args is not None:
        _printable(args, "the command line")
    extra.update(clean_reply_fields(reply))
    dtb_source = extra["devicetree_source"]
    if files is None:
        extra["devicetree"] = f"<devicetree:{dtb_source}>" if dtb_source else None
        return BootAnswer(
            f"<kernel:{kernel_source}>", f"<ramdisk:{','.join(sources)}>" if sources else None, args, extra
        )
    kernel_size = _size(reply, "kernel_size")
    if kernel_size != files.size("kernel"):
        raise GuestDataError("the kernel copy does not match what the reading process reported")
    if kernel_size == 0:
        raise GuestDataError(f"the kernel {kernel_source} is empty")
    if dtb_source and "devicetree" in files.paths:
        if _size(reply, "devicetree_size") != files.size("devicetree"):
            raise GuestDataError("the device tree copy does not match what the reading process reported")
        extra["devicetree"] = _created_file(files, "devicetree")
    else:
        files.drop("devicetree")  # none named, or not asked for (only JSON reports a device tree)
        extra["devicetree"] = None
    if initrds:
        if _size(reply, "ramdisk_size") != files.size("ramdisk"):
            raise GuestDataError("the ramdisk copy does not match what the reading process reported")
        ramdisk: str | None = _created_file(files, "ramdisk")
    else:
        files.drop("ramdisk")
        ramdisk = None
    return BootAnswer(_created_file(files, "kernel"), ramdisk, args, extra)
