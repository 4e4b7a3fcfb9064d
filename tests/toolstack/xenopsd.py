"""XAPI's xenopsd starting a PV guest's bootloader, re-implemented from what it does (not its code).

xapi-project/xen-api `ocaml/xenopsd/lib/bootloader.ml` builds the command line, runs the bootloader
through forkexecd (stdin on /dev/null, stdout and stderr into two files, a bare environment), and then:

- on success, parses stdout as `--output-format=simple` (`parse_output_simple`), insists that the kernel
  and ramdisk are files directly in /var/run/xen/pygrub or /var/run/xend/boot (`sanity_check_path`),
  and makes the command line `"%s %s %s"` of the bootloader's args, the VM's PV-args (`legacy_args`)
  and the extra args xapi adds;
- on any other end (a non-zero status or a signal), takes everything after the first "RuntimeError: "
  on stderr as the message of a clean API error (`Error_from_bootloader`); without that marker the
  whole stderr becomes an opaque INTERNAL_ERROR (`Bad_error`).

It deletes the kernel and ramdisk once the domain is built (`delete`). XCP-ng's `pygrub-wrapper` turns
xenopsd's synthetic `--domid=N` into `--runas=<qemu_base uid + N>`, having first run the bootloader
without arguments to see whether its usage mentions `[--runas=]` (`usage_offers_runas`); `command`
gives the argv after that wrapper. (xenopsd also creates /var/run/xend/boot, which only eliloader
uses; this emulation leaves the host's /var/run alone.)
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PYGRUB = "/usr/libexec/xen/bin/pygrub"  # where XCP-ng installs it; tests pass their own
PYGRUB_DIR = "/var/run/xen/pygrub"  # pygrub's default output directory
ELILOADER_DIR = "/var/run/xend/boot"
ALLOWED_DIRS = (PYGRUB_DIR, ELILOADER_DIR)
QEMU_BASE_UID = 131072  # XCP-ng's `qemu_base` user: domain N's deprivileged processes run as this + N
RUNTIME_ERROR = "RuntimeError: "
RUNAS_MARK = "[--runas=]"  # what pygrub-wrapper looks for in the usage before it passes --runas
# forkexecd's environment when the caller gives none: PATH only
FORKEXECD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# test hygiene only, not xenopsd's: keep pvboot's run log and kernel cache off the host
_PASSED_THROUGH = ("PVBOOT_RUN_LOG", "PVBOOT_CACHE_DIR")


class BootloaderError(Exception):
    """What xenopsd raises; `run` is the bootloader run it came from (None for a pure parse)."""

    def __init__(self, message: str, run: Run | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.run = run


class BadError(BootloaderError):
    """`Bad_error`: XAPI reports an opaque INTERNAL_ERROR carrying this text."""


class ErrorFromBootloader(BootloaderError):
    """`Error_from_bootloader`: XAPI reports a clean bootloader-failed error with this message."""


@dataclass(frozen=True)
class Run:
    """One bootloader run, as forkexecd saw it."""

    argv: list[str]
    returncode: int  # negative: killed by that signal
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Boot:
    """xenopsd's `Bootloader.t`, and the run that produced it."""

    kernel_path: str
    initrd_path: str | None
    kernel_args: str
    run: Run


def _decode(data: bytes) -> str:
    # OCaml strings are bytes: keep every byte (surrogateescape round-trips them)
    return data.decode("utf-8", "surrogateescape")


def split_pv_bootloader_args(pv_bootloader_args: str) -> list[str]:
    """`Astring.String.cuts ~sep:" "` after xenopsd's "" -> []: every single space separates, so two
    spaces make an empty argument, and leading or trailing spaces too."""
    if pv_bootloader_args == "":
        return []
    return pv_bootloader_args.split(" ")


def command(pv_bootloader_args: str, image: str, runas: int | None, pygrub: str = PYGRUB) -> list[str]:
    """The argv xenopsd (through pygrub-wrapper) starts: `pygrub --output-format=simple -q
    [--runas=UID] <PV-bootloader-args split on single spaces> <disk>`."""
    runas_arg = [f"--runas={runas}"] if runas is not None else []
    return [
        pygrub,
        "--output-format=simple",
        "-q",
        *runas_arg,
        *split_pv_bootloader_args(pv_bootloader_args),
        image,
    ]


def parse_output_simple(text: str) -> tuple[str, str | None, str]:
    """(kernel path, ramdisk path or None, args) from `--output-format=simple` output, with xenopsd's
    tolerance (lines without a space, and lines starting with one, are skipped) and its refusals."""
    found: dict[str, str] = {}
    for line in text.split("\n"):
        space = line.find(" ")
        if space < 0:  # String.index raises Not_found: the line is skipped
            continue
        word, value = line[:space], line[space + 1 :]
        if word in ("kernel", "ramdisk", "args"):
            if word in found:
                raise BadError(f"More than one {word} line when parsing bootloader result: {text}")
            found[word] = value
        elif word != "":
            raise BadError(f"Unrecognised start of line when parsing bootloader result: line={line}")
    if "kernel" not in found:
        raise BadError(f"No kernel found in {text}")
    return found["kernel"], found.get("ramdisk"), found.get("args", "")


def resolve_dot_and_dotdot(path: str) -> str:
    """An absolute path with `.`, `..` and repeated slashes resolved by name alone (no symlinks)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def sanity_check_path(path: str) -> str:
    """xenopsd's defence against a guest steering the bootloader at a dom0 file: "" passes; otherwise
    the path must be absolute and, resolved by name, name a file directly in an allowed directory.
    Returns the resolved path (what xenopsd then uses)."""
    if path == "":
        return path
    if not path.startswith("/"):
        raise BadError(f"Bootloader returned a relative path for kernel or ramdisk: {path}")
    canonical = resolve_dot_and_dotdot(path)
    if os.path.dirname(canonical) not in ALLOWED_DIRS:
        raise BadError(
            "Malicious guest? Bootloader returned a kernel or ramdisk path outside the allowed "
            f"directories: {path}"
        )
    return canonical


def parse_exception(stderr: str) -> str:
    """The message of the clean API error: everything after the first "RuntimeError: " on stderr, to
    its very end (trailing newline included). Raises BadError (INTERNAL_ERROR) without the marker."""
    at = stderr.find(RUNTIME_ERROR)
    if at < 0:
        raise BadError(stderr)
    return stderr[at + len(RUNTIME_ERROR) :]


def forkexecd_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """forkexecd's bare environment (PATH), plus `env`."""
    base = {"PATH": FORKEXECD_PATH}
    base.update({k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ})
    return {**base, **(env or {})}


def run_bootloader(argv: list[str], env: Mapping[str, str] | None = None, timeout: float = 120) -> Run:
    """Run `argv` as forkexecd does: stdin /dev/null, stdout and stderr into (separate) files."""
    with (
        open(os.devnull, "rb") as stdin,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        proc = subprocess.run(
            argv, stdin=stdin, stdout=out, stderr=err, env=forkexecd_env(env), timeout=timeout, check=False
        )
        out.seek(0)
        err.seek(0)
        return Run(list(argv), proc.returncode, _decode(out.read()), _decode(err.read()))


def extract(
    image: str,
    pv_bootloader_args: str = "",
    legacy_args: str = "",
    extra_args: str = "",
    runas: int | None = None,
    pygrub: str = PYGRUB,
    env: Mapping[str, str] | None = None,
) -> Boot:
    """`Bootloader.extract`: the kernel, ramdisk and command line xenopsd builds the domain with.
    Raises ErrorFromBootloader or BadError as xenopsd would (with the run attached)."""
    run = run_bootloader(command(pv_bootloader_args, image, runas, pygrub), env)
    if run.returncode != 0:
        try:
            message = parse_exception(run.stderr)
        except BadError as exc:
            raise BadError(exc.message, run) from None
        raise ErrorFromBootloader(message, run)
    try:
        kernel, initrd, args = parse_output_simple(run.stdout)
        kernel = sanity_check_path(kernel)
        initrd = None if initrd is None else sanity_check_path(initrd)
    except BadError as exc:
        raise BadError(exc.message, run) from None
    return Boot(kernel, initrd, f"{args} {legacy_args} {extra_args}", run)


def delete(boot: Boot) -> None:
    """`Bootloader.delete`: xenopsd removes the copies once the domain is built."""
    os.unlink(boot.kernel_path)
    if boot.initrd_path is not None:
        os.unlink(boot.initrd_path)


def usage_offers_runas(pygrub: str = PYGRUB) -> bool:
    """pygrub-wrapper's test: run the bootloader without arguments; pass --runas only when the usage it
    prints on stderr contains "[--runas=]"."""
    return RUNAS_MARK in run_bootloader([pygrub]).stderr


def install_pygrub(directory: Path, src: Path = SRC) -> Path:
    """An executable named `pygrub` in `directory` that is pvboot from this checkout's `src`, started by
    this interpreter (so sys.argv[0] is .../pygrub, as when pvboot is installed under that name)."""
    script = directory / "pygrub"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(src)!r})\n"
        "from pvboot.cli import main\n"
        "sys.exit(main())\n"
    )
    script.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return script
