#!/usr/bin/env python3
"""Generate the pvboot(1) manual page from the command line's own parser (pvboot.cli.build_parser).

    python3 docs/gen-manpage.py            # print the page
    python3 docs/gen-manpage.py --write    # regenerate docs/pvboot.1
    python3 docs/gen-manpage.py --check    # exit 1 when docs/pvboot.1 is not what the parser gives

SYNOPSIS, DESCRIPTION and OPTIONS come from the parser (so `--help` and the page cannot drift apart; a
test runs --check); the date is the newest release's in CHANGELOG.md, so the output is reproducible.
The other sections (use with xl, exit status, files) are written here.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "pvboot.1"
sys.path.insert(0, str(ROOT / "src"))

from pvboot import __version__  # noqa: E402
from pvboot.cli import build_parser  # noqa: E402


def roff(text: str) -> str:
    """Plain text as roff: backslashes and hyphens escaped, no line starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.split("\n"))


def bold(text: str) -> str:
    return f"\\fB{roff(text)}\\fR"


def italic(text: str) -> str:
    return f"\\fI{roff(text)}\\fR"


def metavar(action: argparse.Action) -> str:
    if action.metavar is not None:
        return str(action.metavar)
    if action.choices:
        return "{" + ",".join(map(str, action.choices)) + "}"
    return action.dest.upper()


def takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def synopsis(parser: argparse.ArgumentParser) -> str:
    words = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        if not action.option_strings:
            words.append(italic(metavar(action)))
            continue
        name = max(action.option_strings, key=len)
        value = f"={italic(metavar(action))}" if takes_value(action) else ""
        words.append(f"[{bold(name)}{value}]")
    positional = [w for w in words if not w.startswith("[")]
    options = [w for w in words if w.startswith("[")]
    return f".B {parser.prog}\n" + "\n".join(options + positional)


def options(parser: argparse.ArgumentParser) -> str:
    out = []
    for action in parser._actions:
        if not action.option_strings:
            continue
        if isinstance(action, argparse._HelpAction):
            help_text = "show the help and exit"
        elif isinstance(action, argparse._VersionAction):
            help_text = "print the version and exit"
        else:
            help_text = action.help or ""
        names = []
        for name in action.option_strings:
            value = ""
            if takes_value(action):
                value = (
                    f"={italic(metavar(action))}" if name.startswith("--") else f" {italic(metavar(action))}"
                )
            names.append(bold(name) + value)
        out.append(".TP\n" + ", ".join(names) + "\n" + roff(help_text))
    for action in parser._actions:
        if not action.option_strings:
            out.append(f".TP\n{italic(metavar(action))}\n{roff(action.help or '')}")
    return "\n".join(out)


def release_date() -> str:
    """The date of the newest release heading in CHANGELOG.md (`## [X.Y.Z] - YYYY-MM-DD`)."""
    try:
        text = (ROOT / "CHANGELOG.md").read_text()
    except FileNotFoundError:
        return ""
    m = re.search(r"^## \[\d[^\]]*\] - (\d{4}-\d{2}-\d{2})", text, re.M)
    return m.group(1) if m else ""


STATIC = r"""
.SH "USE WITH XL"
Name pvboot as the bootloader of a PV guest in its
.BR xl.cfg (5):
.PP
.nf
.RS
type       = "pv"
bootloader = "pvboot"
disk       = [ "format=raw, vdev=xvda, access=rw, target=/srv/xen/guest.img" ]
extra      = "console=hvc0"
.RE
.fi
.PP
libxl first looks for the bootloader in its own directory
(\fI/usr/lib/xen\-4.17/bin\fR on Debian) and then in \fBPATH\fR, and runs it on a pseudo\-terminal as
.PP
.nf
.RS
pvboot [\-\-kernel=K] [\-\-ramdisk=R] [\-\-args=CMDLINE] [\-\-runas=UID \-\-quiet]
       \-\-output=FILE \-\-output\-format=simple0 \-\-output\-directory=DIR [bootloader_args] DISK
.RE
.fi
.PP
The console menu shows on that terminal
(\fBxl create \-c\fR or \fBxl console\fR) and boots the default entry when the menu's timeout runs out.
With \fBbootloader_restrict = 1\fR (Xen 4.18 and later) or \fBLIBXL_BOOTLOADER_RESTRICT=1\fR in the
environment of \fBxl\fR (Xen 4.17), libxl adds \fB\-\-runas\fR=\fIUID\fR \fB\-\-quiet\fR: pvboot then
reads the disk as that user and shows no menu; the disk image must be readable by that user.
.PP
Installed as \fI/usr/lib/xen\-4.17/bin/pygrub\fR (or linked there), pvboot serves unmodified
\fBbootloader = "pygrub"\fR configurations: every pygrub option keeps its meaning.
A PVH guest (\fBtype = "pvh"\fR) uses the same call: libxl does not tell the bootloader the guest's
type, so pvboot accepts a kernel that can start as PV or as PVH and says which in its JSON answer
(\fBkernel_info.modes\fR).
.SH "USE WITH XAPI (XCP\-NG, XENSERVER)"
Installed as \fBpygrub\fR (\fI/usr/libexec/xen/bin/pygrub\fR), pvboot serves XAPI, whose xenopsd runs
.PP
.nf
.RS
pygrub \-\-output\-format=simple \-q \-\-runas=UID [PV\-bootloader\-args] DISK
.RE
.fi
.PP
on a \fIroot:disk\fR 0660 device node, reads the answer from standard output and takes the files from
\fI/var/run/xen/pygrub\fR. The disk is opened before the reader drops to \fIUID\fR, and the reader
keeps only that open file. XCP\-ng's pygrub options \fB\-\-extra_args\fR, \fB\-\-default_args\fR and
\fB\-\-vm\fR are accepted in \fBPV\-bootloader\-args\fR, and XenServer's conventions hold:
\fI/xenkernel\fR (or \fI/boot/xenkernel\fR) on the disk's first filesystem boots in place of the menu,
with \fI/xeninitrd\fR and the \fB\-\-default_args\fR command line; a chosen kernel that is missing is
replaced by \fI/kernel\-xenserver\fR from the same filesystem (\fB\-\-no\-xenserver\-rules\fR turns
both off). Title rules in \fI/etc/pygrub/rules.d\fR and \fI/etc/pvboot/rules.d\fR (lines
\fBtitle blacklist|prefer|accept\fR \fIREGEX\fR...) keep a blacklisted default from booting: the first
acceptable entry in menu order boots instead, and syslog says so.
.SH "USE WITH LIBVIRT"
libvirt's libxl driver runs the bootloader as libxl does, with \fB<bootloader_args>\fR split only
where a space, a tab and a newline stand in a row, so \fB\-\-entry=1>1 \-q\fR arrives as one argument:
pvboot splits an argument made only of its own options at its whitespace (never one starting with
\fB\-\-args\fR, \fB\-\-extra_args\fR or \fB\-\-default_args\fR) and ignores empty arguments. Pass the
kernel command line in \fB<cmdline>\fR (libxl's \fB\-\-args\fR) and choose entries by number,
\fB1>2\fR path or id.
libvirt has no restricted\-mode setting: \fB\-\-runas\fR=\fIUID\fR in \fB<bootloader_args>\fR gives it.
.SH "EXIT STATUS"
0 when the kernel, the ramdisk and the answer are all written; 2 for a wrong command line; 1 for any
other failure.
A failure prints exactly one line on standard error, \fBpvboot: RuntimeError: \fIMESSAGE\fR (libxl keeps
it in \fI/var/log/xen/bootloader.DOMID.log\fR; XAPI turns what follows \fBRuntimeError: \fR into its
error message, as it does with pygrub's traceback) and leaves no file in the output directory and
nothing on standard output. Run without arguments, pvboot prints pygrub's usage line (XAPI's
pygrub\-wrapper looks for \fB[\-\-runas=]\fR in it).
.SH FILES
.TP
.I /var/run/xen/pygrub
where the kernel and ramdisk are written when \fB\-\-output\-directory\fR is not given (created with
mode 0700 when missing).
.TP
.I /etc/pygrub/rules.d/*, /etc/pvboot/rules.d/*
title rules (\fBPVBOOT_RULES_DIRS\fR replaces this list).
.TP
.I /var/log/xen/bootloader.DOMID.log
what libxl recorded of the bootloader's terminal, including its error line.
.SH "SEE ALSO"
.BR xl (1),
.BR xl.cfg (5)
"""


def render() -> str:
    parser = build_parser()
    description = parser.description or ""
    epilog = parser.epilog or ""
    parts = [
        f'.TH PVBOOT 1 "{release_date()}" "pvboot {__version__}" "User Commands"',
        '.\\" Generated by docs/gen-manpage.py from pvboot.cli.build_parser(); do not edit.',
        ".SH NAME",
        "pvboot \\- boot a Xen PV guest from its own disk, as its boot loader would (successor of pygrub)",
        ".SH SYNOPSIS",
        synopsis(parser),
        ".SH DESCRIPTION",
        roff(description),
        ".SH OPTIONS",
        options(parser),
    ]
    if epilog:
        head, sep, rest = epilog.partition(":")
        if sep and head.strip().lower() == "environment":
            parts += [".SH ENVIRONMENT", roff(rest.strip())]
        else:
            parts += [".SH NOTES", roff(epilog)]
    return "\n".join(parts) + STATIC


def main(argv: list[str]) -> int:
    page = render()
    if "--write" in argv:
        PAGE.write_text(page)
        return 0
    if "--check" in argv:
        current = PAGE.read_text() if PAGE.exists() else ""
        if current == page:
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(current.splitlines(True), page.splitlines(True), str(PAGE), "generated")
        )
        print(f"{PAGE} is out of date: run python3 docs/gen-manpage.py --write", file=sys.stderr)
        return 1
    sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
