"""The command line: pygrub's options with their meanings, as libxl calls them; exit codes.

Every failure ends as exactly one `pvboot: ` line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from pvboot import __version__
from pvboot.errors import PvbootError, UsageError
from pvboot.limits import Limits
from pvboot.listing import clean, clean_lines
from pvboot.output import FORMATS
from pvboot.request import DEFAULT_OUTPUT_DIRECTORY, BootRequest

PROG = "pvboot"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _seconds(text: str) -> float:
    """A non-negative, finite number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        allow_abbrev=False,
        description=(
            "Boot a Xen PV/PVH guest from its own disk: find the boot menu its distribution wrote, choose "
            "the entry real GRUB would boot, copy that kernel and initrd out and tell libxl."
        ),
        epilog=(
            "Environment: PYGRUB_MAX_FILE_SIZE_MB caps the kernel and ramdisk size (default 128). "
            "PVBOOT_RUN_LOG names the run log (default /var/log/xen/pvboot.log; none: off). "
            "PVBOOT_CACHE_DIR holds the verdicts on kernels already found bootable, so that a "
            "compressed kernel is not decoded again on every boot (default /var/cache/pvboot; none: off). "
            "PVBOOT_SANDBOX_USER is the user the reading process becomes when it cannot use a user "
            "namespace (default nobody). PVBOOT_RULES_DIRS lists the directories of title rules, "
            "colon-separated (default /etc/pygrub/rules.d:/etc/pvboot/rules.d)."
        ),
    )
    add = parser.add_argument
    add("image", metavar="DISK", help="the guest's disk: an image file (raw or qcow2) or a block device")
    add("-q", "--quiet", action="store_true", help="no menu: boot the default entry")
    add("-i", "--interactive", action="store_true", help="show the menu (the default when on a terminal)")
    add("-l", "--list-entries", action="store_true", help="list the menu entries and exit")
    add("-n", "--not-really", action="store_true", help="choose and check, but copy nothing")
    add("--entry", metavar="N|TITLE", help="boot this entry (index, '1>2' path, title or id); implies -q")
    add("--kernel", metavar="PATH", help="boot this kernel from the guest disk, reading no menu")
    add("--ramdisk", metavar="PATH", help="with --kernel: the initrd on the guest disk")
    add("--args", metavar="CMDLINE", help="append to the kernel command line")
    add("--output", metavar="FILE", help="write the answer here ('-' or absent: stdout)")
    add("--output-format", choices=FORMATS, default="sxp", help="sxp (default), simple, simple0 or json")
    add(
        "--json",
        action="store_const",
        dest="output_format",
        const="json",
        help="same as --output-format=json",
    )
    add(
        "--output-directory",
        metavar="DIR",
        help=f"where the kernel and ramdisk go ({DEFAULT_OUTPUT_DIRECTORY})",
    )
    add(
        "--format",
        choices=("auto", "raw", "qcow2"),
        default="auto",
        help="the disk's format: auto (default) probes for qcow2 but follows a backing file only in "
        "an image named *.qcow2; qcow2 follows backing files (next to the image); raw never probes",
    )
    add("--offset", metavar="BYTES", type=int, help="the boot filesystem starts at this byte of the disk")
    add("--runas", metavar="UID", type=int, help="drop to this uid to read the disk; implies -q")
    add("--isconfig", action="store_true", help="DISK is a boot config file on the host: show what it boots")
    add("--debug", action="store_true", help="print the decision trace on stderr")
    add(
        "--no-kernel-check",
        dest="kernel_check",
        action="store_false",
        help="boot the kernel even when it does not look like a Xen PV/PVH kernel",
    )
    add("--report", action="store_true", help="print a redacted report of the disk, menu and decision")
    # XCP-ng's / XenServer's pygrub options, as XAPI passes them in PV-bootloader-args
    add(
        "--extra_args",
        "--extra-args",
        dest="extra_args",
        metavar="CMDLINE",
        help="append to the chosen command line after --args (XCP-ng)",
    )
    add(
        "--default_args",
        "--default-args",
        dest="default_args",
        metavar="CMDLINE",
        help="the command line of a /xenkernel boot, which has no menu to take one from (XCP-ng)",
    )
    add("--vm", metavar="UUID", help="the VM this boot is for: accepted and logged (XCP-ng)")
    add(
        "--no-xenserver-rules",
        dest="xenserver_rules",
        action="store_false",
        help="do not boot /xenkernel in place of the menu, nor /kernel-xenserver in place of a missing "
        "kernel (XenServer's conventions, on by default)",
    )
    add("--run-log", metavar="FILE", help="append a line per run here (default /var/log/xen/pvboot.log)")
    add(
        "--max-menu-wait",
        metavar="SECONDS",
        type=_seconds,
        default=600.0,
        help="on the console, boot the default entry after this many seconds without a key, also when "
        "the guest's menu would wait for ever (GRUB's timeout=-1): a deliberate difference from GRUB, "
        "since libxl bounds no bootloader's time in its default mode (default 600; 0: wait for ever)",
    )
    add("--version", action="version", version=f"{PROG} {__version__}")
    return parser


# pygrub's usage line: XAPI's pygrub-wrapper runs the bootloader without arguments and passes --runas
# only when the usage it prints contains "[--runas=]".
USAGE = (
    "usage: pvboot [-q|--quiet] [-i|--interactive] [-l|--list-entries] [-n|--not-really] [--output=] "
    "[--kernel=] [--ramdisk=] [--args=] [--entry=] [--output-directory=] "
    "[--output-format=sxp|simple|simple0|json] [--runas=] [--offset=] [--extra_args=] [--default_args=] "
    "[--vm=] <image> (pvboot --help: every option)"
)


# Options whose value is free text (a command line): an argument starting with one is never split.
_TEXT_OPTIONS = ("--args", "--extra_args", "--extra-args", "--default_args", "--default-args")


def toolstack_words(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """argv as the toolstacks mean it. xenopsd splits PV-bootloader-args on single spaces, so doubled
    spaces arrive as empty arguments: they carry nothing (pygrub would take one for the disk). libvirt
    passes `<bootloader_args>` whole (its split looks for the string " \t\n", not for any of those
    characters), so `--entry=1>1 -q` arrives as one argument: one made only of pvboot options is split
    at its whitespace, unless it starts with an option whose value is a command line."""
    known = {name for action in parser._actions for name in action.option_strings}
    words: list[str] = []
    for arg in argv:
        if arg == "":
            continue
        parts = arg.split()
        if (
            len(parts) > 1
            and arg == arg.strip()
            and parts[0].partition("=")[0] not in _TEXT_OPTIONS
            and all(part.partition("=")[0] in known for part in parts)
        ):
            words += parts
        else:
            words.append(arg)
    return words


def parse_args(argv: Sequence[str]) -> BootRequest:
    parser = build_parser()
    words = toolstack_words(argv, parser)
    if not words:
        raise UsageError(USAGE)
    ns = parser.parse_args(words)
    interactive = not (ns.quiet or ns.entry is not None or ns.runas is not None or ns.list_entries)
    if ns.interactive and ns.runas is None:
        interactive = True
    if ns.ramdisk and not ns.kernel:
        raise UsageError("--ramdisk needs --kernel")
    request = BootRequest(
        image=ns.image,
        kernel=ns.kernel,
        ramdisk=ns.ramdisk,
        args=ns.args,
        entry=ns.entry,
        interactive=interactive,
        list_entries=ns.list_entries,
        not_really=ns.not_really,
        isconfig=ns.isconfig,
        debug=ns.debug,
        output=None if ns.output in (None, "-") else ns.output,
        output_format=ns.output_format,
        offset=ns.offset,
        runas=ns.runas,
        kernel_check=ns.kernel_check,
        disk_format=None if ns.format == "auto" else ns.format,
        report=ns.report,
        run_log=ns.run_log,
        extra_args=ns.extra_args,
        default_args=ns.default_args,
        vm=ns.vm,
        xenserver_rules=ns.xenserver_rules,
        max_menu_wait=ns.max_menu_wait or None,
    )
    if ns.vm is not None:
        request.record["extra"] = {"vm": ns.vm}
    if ns.output_directory is not None:
        request.output_directory = ns.output_directory
        request.output_directory_given = True
    return request


class PrintableFormatter(logging.Formatter):
    """The --debug trace with guest text made harmless for the admin's terminal: a record's message
    cannot carry an escape sequence or start a line of its own; a traceback keeps its lines, each cleaned.
    Set on the handler in main(), it serves the forked reader too (which inherits the handler)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return clean(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return clean_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return clean_lines(super().formatStack(stack_info))


def _one_line(message: str) -> str:
    """The error as one printable line: guest text may hold newlines or escape sequences."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in message.replace("\n", " "))
    return cleaned[:2000]


# Every toolstack reads this line: libxl shows it, XAPI's xenopsd takes everything after the first
# "RuntimeError: " on stderr as the message of a clean API error (and anything else as an opaque
# INTERNAL_ERROR with the whole stderr), which is what pygrub's Python traceback ends with.
ERROR_MARK = "RuntimeError: "


def error_line(message: str) -> str:
    """The one stderr line of a failed run."""
    return f"{PROG}: {ERROR_MARK}{_one_line(message)}"


def _ensure_standard_fds() -> None:
    """Give closed fds 0-2 /dev/null, so no file pvboot opens later lands on them (libxl or a shell
    may start pvboot with stdin closed; the output files must never become fd 0)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _log_run(request: BootRequest, outcome: str, started: float, error: str | None) -> None:
    """One line in the run log (pvboot/runlog.py); never fails the run."""
    from pvboot.runlog import append_run_log, run_record

    if request.not_really and outcome == "booted":
        outcome = "checked"
    if request.report:
        outcome = "report"
    duration = time.monotonic() - started
    record = run_record(request.image, outcome, duration=duration, error=error, **request.record)
    append_run_log(request.run_log, record)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pvboot` command (and of `pygrub` when installed under that name)."""
    _ensure_standard_fds()
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("pvboot-debug: %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.CRITICAL, handlers=[handler])
    request: BootRequest | None = None
    started = time.monotonic()
    try:
        request = parse_args(argv)
        from pvboot.boot import run

        code = run(request)
        _log_run(request, "listed" if request.list_entries else "booted", started, None)
        return code
    except PvbootError as exc:
        print(error_line(str(exc)), file=sys.stderr)
        if request is not None:
            _log_run(request, "failed", started, _one_line(str(exc)))
        return exc.exit_code
    except KeyboardInterrupt:
        print(error_line("interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except MemoryError:
        # the parent's own address-space cap (guard.cap_address_space) was hit: one line, as any failure
        limit = Limits().parent_address_space >> 20
        print(error_line(f"out of memory: pvboot's own limit of {limit} MiB was reached"), file=sys.stderr)
        return 1
    except Exception as exc:
        if debug:
            import traceback

            sys.stderr.write(clean_lines(traceback.format_exc()))
        print(error_line(f"internal error: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 70
    finally:
        with contextlib.suppress(OSError):
            sys.stdout.flush()
