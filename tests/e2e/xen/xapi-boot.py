#!/usr/bin/python3.11 -I
"""Start one e2e guest the way XAPI (XCP-ng / XenServer) starts a PV guest with a bootloader.

usage: e2e-xapi-boot GUEST.xapi GUEST.cfg BOOTLOADER_LOG

XAPI does not use libxl's bootloader call: xenopsd runs pygrub itself, reads the answer from its stdout,
builds the domain from the kernel and ramdisk pygrub left in /var/run/xen/pygrub, and deletes them. This
script plays every part of that around pvboot (installed as pygrub), in dom0 of the e2e:

1. SM: the VDI as a block device owned root:disk, mode 0660 (as /dev/sm/backend/<sr>/<vdi>): here a loop
   device on the guest's image.
2. xenopsd's Bootloader.command and pygrub-wrapper: the wrapper runs pygrub once without arguments (its
   usage line) and turns xenopsd's --domid into --runas=<qemu_base uid + domid>, so pygrub runs as
     pygrub --output-format=simple -q --runas=UID <PV-bootloader-args split on single spaces> DEV
   with an empty environment, no --output (the answer is on stdout) and no --output-directory (the
   files must land in /var/run/xen/pygrub itself).
3. Bootloader.parse_output_simple: lines `kernel P`, `ramdisk P`, `args A` (the first word is what
   precedes the first space; a line without a space is skipped; any other first word, or a second line
   of one kind, is an error; no kernel is an error), and sanity_check_path: absolute, and after
   resolving `.`/`..` its dirname must be /var/run/xen/pygrub. On failure, xenopsd's message is what
   follows "RuntimeError: " on pygrub's stderr.
4. The domain build: `xl create` of a copy of GUEST.cfg with kernel=, ramdisk= and
   cmdline="<args> <PV-legacy-args> <PV-args>" appended (xenopsd's kernel_args), no bootloader.
5. Bootloader.delete: unlink the kernel, then the ramdisk (xenopsd does it once the domain is built,
   whether or not the build worked).

GUEST.xapi holds key=value lines: bootloader, disk, runas, pv_bootloader_args, pv_legacy_args, pv_args.
pvboot's stderr (of the call, not of the usage probe) goes to BOOTLOADER_LOG. Progress lines start with
"xapi: " on stdout (dom0-init.sh stamps them into the guest's xl.log, with xl's own -vvv output);
"executing bootloader:" and "bootloader completed"/"bootloader failed" are the words verify.py times.
Exit status: xl's, or 90 (the bootloader failed), 91 (xenopsd would refuse its answer), 92 (the e2e's own
setup failed).
"""

from __future__ import annotations

import grp
import os
import subprocess
import sys

# xenopsd's parser and path check, shared with the test suite's emulation (tests/toolstack/xenopsd.py),
# which build-dom0.sh installs beside this script
sys.path.insert(0, "/usr/local/lib/e2e")
from xenopsd import BadError, parse_output_simple, sanity_check_path

PYGRUB_DIR = "/var/run/xen/pygrub"  # sanity_check_path: the only dirname xenopsd accepts from pygrub
RUNTIME_ERROR = "RuntimeError: "  # Bootloader.parse_exception


def say(text: str) -> None:
    print(f"xapi: {text}", flush=True)


def read_params(path: str) -> dict[str, str]:
    params = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                params[key] = value
    return params


def attach(image: str) -> str:
    """SM's part: the VDI as a root:disk 0660 block device."""
    dev = subprocess.run(
        ["losetup", "-f", "--show", "-r", image], check=True, capture_output=True, text=True
    ).stdout.strip()
    os.chown(dev, 0, grp.getgrnam("disk").gr_gid)
    os.chmod(dev, 0o660)
    st = os.stat(dev)
    say(f"disk {image} attached as {dev} (uid {st.st_uid}, gid {st.st_gid}, mode {st.st_mode & 0o7777:04o})")
    return dev


def xl_string(key: str, value: str) -> str:
    if any(c in value for c in '"\\\n'):
        raise BadError(f"the e2e cannot quote {key}={value!r} for xl")
    return f'{key} = "{value}"\n'


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    params = read_params(argv[1])
    template, log_path = argv[2], argv[3]
    name = os.path.basename(template).removesuffix(".cfg")
    bootloader = params["bootloader"]
    say(f"VM.start {name}: PV guest, bootloader pygrub ({bootloader}), xenopsd's way")
    # Bootloader.extract: "Without this path, pygrub will fail" (eliloader's; xenopsd makes it anyway)
    os.makedirs("/var/run/xend/boot", 0o755, exist_ok=True)
    try:
        dev = attach(params["disk"])
    except (OSError, subprocess.CalledProcessError, KeyError) as exc:
        say(f"cannot attach the disk: {exc}")
        return 92
    try:
        # pygrub-wrapper: the usage line first (pygrub without arguments; its exit status is not 0)
        probe = subprocess.run([bootloader], env={}, stdin=subprocess.DEVNULL, capture_output=True)
        usage = probe.stderr.decode("utf-8", "replace").strip()
        runas_in = "in" if "[--runas=]" in usage else "NOT in"
        say(f"usage probe: exit status {probe.returncode}, [--runas=] {runas_in} the usage line: {usage!r}")
        # Bootloader.command (q = true), --domid turned into --runas by the wrapper
        pv_args = params.get("pv_bootloader_args", "")
        cmd = [bootloader, "--output-format=simple", "-q", f"--runas={params['runas']}"]
        cmd += pv_args.split(" ") if pv_args != "" else []
        cmd += [dev]
        say(f"executing bootloader: {' '.join(cmd)}")
        try:
            run = subprocess.run(cmd, env={}, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
        except subprocess.TimeoutExpired as exc:
            run = None
            stdout, stderr = exc.stdout or b"", exc.stderr or b""
        else:
            stdout, stderr = run.stdout, run.stderr
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)
    with open(log_path, "ab") as log:  # pvboot's stderr, as xenopsd's Forkhelpers collect it
        log.write(f"# {' '.join(cmd)}\n".encode() + stderr)
    output = stdout.decode("utf-8", "replace")
    say(f"bootloader stdout: {output!r}")
    if run is None or run.returncode != 0:
        say(
            "bootloader failed: "
            + ("still running after 300 s, killed" if run is None else f"exit status {run.returncode}")
        )
        # Bootloader.parse_exception
        text = stderr.decode("utf-8", "replace")
        i = text.find(RUNTIME_ERROR)
        if i >= 0:
            say(f"VM.start fails: Error_from_bootloader {text[i + len(RUNTIME_ERROR) :].strip()!r}")
        else:
            say(f"VM.start fails: Bad_error (no {RUNTIME_ERROR!r} on stderr) {text.strip()!r}")
        leftovers()
        return 90
    say("bootloader completed")
    try:
        kernel, ramdisk, args = parse_output_simple(output)
        kernel = sanity_check_path(kernel)
        ramdisk = sanity_check_path(ramdisk) if ramdisk is not None else None
    except BadError as exc:
        say(f"VM.start fails: Bad_error {exc}")
        leftovers()
        return 91
    kernel_args = f"{args} {params.get('pv_legacy_args', '')} {params.get('pv_args', '')}"
    say(f"kernel {kernel}")
    say(f"ramdisk {ramdisk}")
    say(f"kernel_args {kernel_args!r}")
    rc = 92
    try:
        for path in (kernel, ramdisk):
            if path:
                st = os.stat(path)
                say(f"  {path}: {st.st_size} bytes, uid {st.st_uid}, mode {st.st_mode & 0o7777:04o}")
        cfg = f"/run/e2e-xapi/{name}.cfg"
        os.makedirs(os.path.dirname(cfg), exist_ok=True)
        with open(template, encoding="utf-8") as f:
            text = f.read()
        text += xl_string("kernel", kernel)
        if ramdisk:
            text += xl_string("ramdisk", ramdisk)
        text += xl_string("cmdline", kernel_args)
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(text)
        rc = subprocess.run(["xl", "-vvv", "create", cfg], stdin=subprocess.DEVNULL).returncode
        say(f"xl create exit status {rc}")
    except (BadError, OSError) as exc:
        say(str(exc))
    finally:
        # Bootloader.delete: Unix.unlink of the kernel, then of the ramdisk
        try:
            os.unlink(kernel)
            if ramdisk is not None:
                os.unlink(ramdisk)
            say("deleted the kernel and ramdisk")
        except OSError as exc:
            say(f"Bootloader.delete failed: {exc}")
        leftovers()
    return rc


def leftovers() -> None:
    """What pvboot (or the delete) left behind in pygrub's directory: nothing, when all went well."""
    left = sorted(os.listdir(PYGRUB_DIR)) if os.path.isdir(PYGRUB_DIR) else []
    if left:
        say(f"left in {PYGRUB_DIR} after the delete: {' '.join(left)}")
    else:
        say(f"{PYGRUB_DIR} is empty after the delete")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
