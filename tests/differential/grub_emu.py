"""Ask real GRUB 2.06 what a disk image boots: Debian's grub-emu with the loaders stubbed.

grub-emu is GRUB itself (script engine, menus, `default`/`fallback`/submenu logic, `search`, `load_env`,
file systems and partition maps) built for a Linux process; it only lacks the loaders. The wrapper config
(`GrubEmu.wrapper`) plays the part of the core image `grub-install` writes: it finds the guest's grub.cfg
the way an installed GRUB's prefix would, sets `root` and `prefix`, and `source`s it, so the guest's
menu, `default`, `fallback` and submenus are real GRUB's. Then `timeout=0` and GRUB boots its default
with its own fallback logic.

Loader commands (`linux`, `linux16`, `initrd`, `initrd16`, `multiboot`, `multiboot2`, `module`,
`module2`) do not exist in grub-emu, so the wrapper defines GRUB script functions of those names (a
command always wins over a function of the same name in execute.c, so this only works for commands
that are missing) which print an event: the argument vector, `$root`, and for every file operand
either its contents (`cat`, i.e. GRUB's own grub_file_open) or "missing". Files are named by their
marker line (`identity`): the test disks hold small marker files, kernels wrapped in a stub Xen ELF
(pvboot checks kernels), which `cat` prints mangled around the marker. Nothing is ever "loaded" in
emu, so every entry "fails" and GRUB walks the whole fallback chain, printing `Booting `T'` /
`Falling back to `T'` before each attempt, and ends with "Failed to boot both default and fallback
entries.".

`LoaderModel` then replays the events with the loader state rules of GRUB 2.06 for i386-pc, read from
the sources: loader/i386/linux.c (`linux`/`initrd` share a module-local `loaded` flag; a failed
`linux` clears that flag but leaves the previously set loader in place; a failed `initrd` keeps the
previous initrd; a new `linux` replaces kernel, command line and initrd), loader/i386/pc/linux.c (the
same for `linux16`/`initrd16`, separately), loader/multiboot.c (`multiboot` first unsets any loader;
`module` needs its kernel's relocator), commands/boot.c (`grub_loader_set` calls the previous
loader's unload hook) and normal/menu.c (after an entry's commands, GRUB boots if a loader is set; an
explicit `boot` boots at once when one is set, else it fails with "you need to load the kernel first",
which is how the event shows up here). The first attempt that ends with a loader set is what GRUB
boots. The command line is rebuilt from the argument vector as lib/cmdline.c does (`loader_cmdline`),
so arguments with spaces or quotes are compared exactly. (The shared research oracle this follows,
../shared/tools/oracle/emu_oracle.py, had neither: it missed loader-state errors and joined arguments
with spaces; its 80-column line wrapping is avoided here with a 4000-column pseudo-terminal.) The
loader model is read from the sources, not checked against a real BIOS boot (no QEMU here).

Known differences between this oracle and real BIOS GRUB (tests must not depend on them):
- grub-emu is GRUB_MACHINE_EMU: `search --hint-bios`/`--hint-efi` are ignored (only `--hint` and
  `--hint-baremetal` count), `$grub_platform` is "emu" and `$grub_cpu` "x86_64", numbers parse as
  64-bit `unsigned long` (i386-pc: 32-bit).
- The stubs are functions, so `$?` after them is 0 and they cannot fail the way the real command does
  inside an `if`; real loaders also reject files that are not kernels (marker files here stand for
  valid kernels).
- `linuxefi`/`initrdefi` do not exist in Debian's GRUB (Fedora's patch), so they are not stubbed;
  grub-emu has no `chainloader` either (i386-pc GRUB would chainload, and stop there).
- grub-emu has a `(host)` device (the host's file system) that `search --file` may find.
- A `fallback` naming no entry makes GRUB 2.06 use a NULL entry (menu.c); grub-emu crashes ("crash").
- GRUB's menu waits (10 s after an error, 2.5 s before a fallback, the menu countdown) run 1000x
  faster under an LD_PRELOAD clock shim (gettimeofday, nanosleep) built at first use with the system
  C compiler; without a compiler they run in real time (slow, still correct).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

EMU_DIR = os.environ.get("GRUB_EMU_DIR", "/usr/lib/grub/x86_64-emu")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]")
CURSOR_MOVE = re.compile(r"\x1b\[[0-9;]*[HJf]")  # a jump or clear starts a new line of text
# Modules a distribution core image + prefix would provide for the configs we test.
MODULES = (
    "part_msdos part_gpt ext2 fat search search_fs_uuid search_fs_file search_label test echo "
    "loadenv normal configfile regexp sleep true cat minicmd probe gettext keystatus read"
)
COLUMNS = 4000  # terminal width: GRUB's terminfo output wraps at the width, so make lines never wrap

# `cat` opens the file with grub_file_open, as the loaders do (`test -f` is different: it lists the
# directory, so a dangling symlink "exists"); a failed cat prints GRUB's error inside the block.
STUB_FILE = """
function oracle_file {
  echo "ORACLE-FILE-BEGIN"
  if cat "$1"; then echo "ORACLE-FILE-END"; else echo "ORACLE-MISSING"; fi
}
"""
STUB_KERNEL = """
function @NAME@ {
  echo "ORACLE-EVENT @NAME@"; echo "ORACLE-ROOT $root"
  for oracle_a in "$@"; do echo "ORACLE-ARG $oracle_a"; done
  oracle_file "$1"; echo "ORACLE-EVENT-END"
}
"""
STUB_INITRD = """
function @NAME@ {
  echo "ORACLE-EVENT @NAME@"; echo "ORACLE-ROOT $root"
  for oracle_a in "$@"; do echo "ORACLE-ARG $oracle_a"; oracle_file "$oracle_a"; done
  echo "ORACLE-EVENT-END"
}
"""
STUB_MODULE = """
function @NAME@ {
  echo "ORACLE-EVENT @NAME@"; echo "ORACLE-ROOT $root"
  for oracle_a in "$@"; do echo "ORACLE-ARG $oracle_a"; done
  if [ "$1" = "--nounzip" ]; then oracle_file "$2"; else oracle_file "$1"; fi
  echo "ORACLE-EVENT-END"
}
"""
DISCOVERY = """
set oracle_found=
for oracle_d in hd0 hd0,msdos1 hd0,msdos2 hd0,msdos3 hd0,msdos4 hd0,msdos5 hd0,msdos6 \
    hd0,gpt1 hd0,gpt2 hd0,gpt3 hd0,gpt4 hd0,gpt5 hd0,gpt6; do
  for oracle_p in /boot/grub /grub /boot/grub2 /grub2; do
    if [ -z "$oracle_found" -a -f ($oracle_d)$oracle_p/grub.cfg ]; then
      set oracle_found=y; set root=$oracle_d; set prefix=($oracle_d)$oracle_p
    fi
  done
done
unset oracle_d
unset oracle_p
echo "ORACLE-CONFIG root=$root prefix=$prefix"
if [ -n "$oracle_found" ]; then
  unset oracle_found
  source $prefix/grub.cfg
fi
echo "ORACLE-CONFIG-DONE default=[$default] fallback=[$fallback]"
set timeout=0
"""

WARP_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <sys/time.h>
#include <time.h>
/* grub-emu's grub_get_time_ms() is gettimeofday() and its grub_millisleep() nanosleep(): make its clock
   run 1000x faster from the first call, and its sleeps 1000x shorter, so GRUB's menu waits
   (grub_wait_after_message's 10 s, the 2.5 s fallback delay, countdowns) take milliseconds. */
static long long base = -1;
int nanosleep(const struct timespec *req, struct timespec *rem)
{
  static int (*real)(const struct timespec *, struct timespec *);
  if (!real)
    real = (int (*)(const struct timespec *, struct timespec *)) dlsym(RTLD_NEXT, "nanosleep");
  long long ns = (req->tv_sec * 1000000000LL + req->tv_nsec) / 1000;
  struct timespec fast = { ns / 1000000000LL, ns % 1000000000LL };
  return real(&fast, rem);
}
int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
  static int (*real)(struct timeval *, void *);
  if (!real)
    real = (int (*)(struct timeval *, void *)) dlsym(RTLD_NEXT, "gettimeofday");
  int r = real(tv, tz);
  if (r == 0 && tv) {
    long long us = tv->tv_sec * 1000000LL + tv->tv_usec;
    if (base < 0)
      base = us;
    us = base + (us - base) * 1000;
    tv->tv_sec = us / 1000000;
    tv->tv_usec = us % 1000000;
  }
  return r;
}
"""

# The test disks' files name themselves (harness.marker, diskbuild.marker_kernel/marker_initrd); kernels
# are stub ELF images around that text (pvboot checks kernels), which `cat` prints mangled around it.
MARKER = re.compile(rb"PVBOOT-(?:DIFF |TEST-KERNEL:|TEST-INITRD:)[^\n]*\n")


def identity(data: bytes) -> bytes:
    """What names a file: its one marker line, or (no single marker) all of it."""
    found = MARKER.findall(data)
    return found[0] if len(found) == 1 else data


def identities(data: bytes) -> list[bytes]:
    """The files a concatenation (pvboot's ramdisk) is made of, by their markers, in order."""
    return MARKER.findall(data)


LINUX_FAMILIES = {"linux": "linux", "linux16": "linux16", "initrd": "linux", "initrd16": "linux16"}
MULTIBOOT_FAMILIES = {"multiboot": "mb1", "module": "mb1", "multiboot2": "mb2", "module2": "mb2"}


def unavailable() -> str | None:
    """Why grub-emu cannot be used here, or None."""
    if os.geteuid() != 0:
        return "the differential tests need root (mkfs -d images, grub-emu on raw images)"
    if shutil.which("grub-emu") is None or not os.path.isdir(EMU_DIR):
        return "grub-emu is not installed"
    return None


def loader_cmdline(argv: list[str]) -> str:
    """grub_create_loader_cmdline (lib/cmdline.c) for the arguments after the kernel: an argument holding
    a space is double-quoted; backslash, single and double quotes get a backslash."""
    out = []
    for arg in argv:
        text = "".join("\\" + c if c in "\\'\"" else c for c in arg)
        out.append(f'"{text}"' if " " in arg else text)
    return " ".join(out)


@dataclass
class Event:
    """One stubbed loader command as GRUB ran it."""

    command: str
    root: str
    args: list[str]
    files: list[bytes | None]  # identity() of each file operand as `cat` printed it, None when absent


@dataclass
class Payload:
    """What GRUB's loader holds: the kernel and what goes with it."""

    kind: str  # "linux" (linux, linux16) or "multiboot" (multiboot, multiboot2)
    loader: str
    kernel: bytes
    argv: list[str]
    initrds: list[bytes] = field(default_factory=list)
    modules: list[bytes] = field(default_factory=list)


@dataclass
class Attempt:
    """One `Booting`/`Falling back to` block: the entry's title and its events in order."""

    title: str
    events: list[Event | str] = field(default_factory=list)  # "boot" = an explicit `boot` that failed


@dataclass
class GrubAnswer:
    """Real GRUB's answer for a disk image."""

    # "linux", "multiboot", "nothing" (every attempt failed, or no menu); oracle failures: "timeout",
    # "crash" (grub-emu died, e.g. on a `fallback` naming no entry: menu.c uses the NULL entry)
    outcome: str
    kernel: bytes | None = None
    initrds: list[bytes] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)
    loader: str = ""
    title: str = ""
    attempts: list[str] = field(default_factory=list)
    log: str = ""
    seconds: float = 0.0

    @property
    def args(self) -> str:
        """The kernel command line after BOOT_IMAGE=..., as GRUB builds it."""
        return loader_cmdline(self.argv)

    @property
    def ramdisk(self) -> bytes:
        """The initrds as Linux gets them: concatenated, in order."""
        return b"".join(self.initrds)

    def summary(self) -> str:
        if self.outcome != "linux":
            return f"{self.outcome} (attempts: {self.attempts})"
        return (
            f"{self.loader} {self.kernel!r} initrds={self.initrds!r} args={self.args!r} "
            f"(entry {self.title!r}; attempts: {self.attempts})"
        )


class LoaderModel:
    """GRUB 2.06 i386-pc loader state, replayed from the stub events (see the module docstring)."""

    def __init__(self) -> None:
        self.payload: Payload | None = None  # grub_loader_loaded + what it would boot
        self.loaded = {"linux": False, "linux16": False}  # each linux module's own `loaded`
        self.relocator = {"mb1": False, "mb2": False}  # GRUB_MULTIBOOT (relocator) != NULL

    def _set(self, payload: Payload) -> None:
        self._unset()
        self.payload = payload

    def _unset(self) -> None:
        """grub_loader_unset / the unload hook of grub_loader_set: the old loader forgets its state."""
        if self.payload is not None:
            if self.payload.kind == "linux":
                self.loaded[LINUX_FAMILIES[self.payload.loader]] = False
            else:
                self.relocator[MULTIBOOT_FAMILIES[self.payload.loader]] = False
        self.payload = None

    def apply(self, event: Event) -> None:
        cmd = event.command
        if cmd in ("linux", "linux16"):
            kernel = event.files[0] if event.files else None
            if not event.args or kernel is None:
                self.loaded[cmd] = False  # `fail:` path; the old loader stays set
                return
            self._set(Payload("linux", cmd, kernel, event.args[1:]))
            self.loaded[cmd] = True
        elif cmd in ("initrd", "initrd16"):
            family = LINUX_FAMILIES[cmd]
            if not event.args or not self.loaded[family] or any(f is None for f in event.files):
                return  # "you need to load the kernel first" / file not found: nothing changes
            assert self.payload is not None
            self.payload.initrds = [f for f in event.files if f is not None]
        elif cmd in ("multiboot", "multiboot2"):
            self._unset()
            family = MULTIBOOT_FAMILIES[cmd]
            self.relocator[family] = False
            kernel = event.files[0] if event.files else None
            if not event.args or kernel is None:
                return
            self.payload = Payload("multiboot", cmd, kernel, event.args[1:])
            self.relocator[family] = True
        elif cmd in ("module", "module2"):
            family = MULTIBOOT_FAMILIES[cmd]
            module = event.files[0] if event.files else None
            if self.relocator[family] and module is not None and self.payload is not None:
                self.payload.modules.append(module)
        else:  # pragma: no cover - the wrapper defines no other stubs
            raise ValueError(cmd)


def parse(raw: str, seconds: float = 0.0, timed_out: bool = False, crashed: bool = False) -> GrubAnswer:
    """GRUB's answer from grub-emu's terminal output."""
    text = ANSI.sub("", CURSOR_MOVE.sub("\n", raw)).replace("\r", "")
    lines = text.split("\n")
    model = LoaderModel()
    attempts: list[Attempt] = []
    answer = GrubAnswer("nothing", log=text, seconds=round(seconds, 3))

    def booted(payload: Payload | None, title: str) -> GrubAnswer | None:
        if payload is None:
            return None
        answer.outcome = payload.kind
        answer.kernel, answer.argv, answer.loader = payload.kernel, payload.argv, payload.loader
        answer.initrds = list(payload.initrds)
        answer.title = title
        return answer

    i = 0
    current: Attempt | None = None
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        start = re.match(r"(?:Booting|Falling back to) `(.*)'$", stripped)
        if start:
            # The previous attempt is over: GRUB boots if it left a loader set (normal/menu.c).
            if current is not None and booted(model.payload, current.title):
                break
            current = Attempt(start.group(1))
            attempts.append(current)
            answer.attempts.append(current.title)
        elif line.startswith("ORACLE-EVENT "):
            event, i = _read_event(lines, i)
            model.apply(event)
            if current is not None:
                current.events.append(event)
        elif "error: you need to load the kernel first." in line:
            # an explicit `boot`: boots now if a loader is set, else fails and the entry goes on
            if booted(model.payload, current.title if current else ""):
                break
        elif "Failed to boot both default and fallback entries." in line:
            if current is not None:
                booted(model.payload, current.title)
            break
        i += 1
    else:
        if timed_out or crashed:
            answer.outcome = "timeout" if timed_out else "crash"
        elif current is not None:
            booted(model.payload, current.title)
    return answer


def _read_event(lines: list[str], i: int) -> tuple[Event, int]:
    event = Event(lines[i][len("ORACLE-EVENT ") :].strip(), "", [], [])
    i += 1
    while i < len(lines) and lines[i] != "ORACLE-EVENT-END":
        line = lines[i]
        if line.startswith("ORACLE-ROOT "):
            event.root = line[len("ORACLE-ROOT ") :]
        elif line.startswith("ORACLE-ARG "):
            event.args.append(line[len("ORACLE-ARG ") :])
        elif line == "ORACLE-FILE-BEGIN":
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i] not in ("ORACLE-FILE-END", "ORACLE-MISSING"):
                body.append(lines[i])
                i += 1
            missing = i >= len(lines) or lines[i] == "ORACLE-MISSING"
            event.files.append(None if missing else identity("\n".join(body).encode()))  # cat adds \n
        i += 1
    return event, i


class GrubEmu:
    """A prepared grub-emu (module directory, wrapper config, clock shim); `run(image)` per case."""

    def __init__(self, workdir: Path | None = None) -> None:
        why = unavailable()
        if why:
            raise RuntimeError(why)
        self._own = workdir is None
        self.base = Path(workdir or tempfile.mkdtemp(prefix="pvboot-emu-"))
        self.base.mkdir(parents=True, exist_ok=True)
        self.moddir = module_dir(self.base)
        self.shim = self._build_shim()
        self.slow = self.shim is None

    def _build_shim(self) -> Path | None:
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            return None
        src, lib = self.base / "warp.c", self.base / "warp.so"
        if lib.exists():
            return lib
        src.write_text(WARP_C)
        proc = subprocess.run(
            [cc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(src), "-ldl"],
            capture_output=True,
            check=False,
        )
        return lib if proc.returncode == 0 else None

    def close(self) -> None:
        if self._own:
            shutil.rmtree(self.base, ignore_errors=True)

    @staticmethod
    def wrapper(modules: str = MODULES) -> str:
        stubs = [STUB_FILE]
        stubs += [STUB_KERNEL.replace("@NAME@", n) for n in ("linux", "linux16", "multiboot", "multiboot2")]
        stubs += [STUB_INITRD.replace("@NAME@", n) for n in ("initrd", "initrd16")]
        stubs += [STUB_MODULE.replace("@NAME@", n) for n in ("module", "module2")]
        # Debian's progress meter (lib/progress.c) would print into `cat` output; its own switch turns it off
        head = "set enable_progress_indicator=0\nexport enable_progress_indicator\n"
        head += f"for oracle_m in {modules}; do insmod $oracle_m; done\nunset oracle_m\n"
        return head + "".join(stubs) + DISCOVERY

    def run(self, image: Path, timeout: float | None = None) -> GrubAnswer:
        """Boot `image` (never modified: GRUB writes through to a scratch copy) and return GRUB's answer."""
        if timeout is None:
            timeout = 120.0 if self.slow else 20.0
        case = Path(tempfile.mkdtemp(dir=self.base, prefix="c"))
        try:
            os.symlink(self.moddir, case / "x86_64-emu")
            (case / "grub.cfg").write_text(self.wrapper())
            scratch = case / "disk.img"
            subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(image), str(scratch)], check=True)
            (case / "devmap").write_text(f"(hd0) {scratch}\n")
            raw, seconds, timed_out, status = self._emu(case, timeout)
            return parse(raw, seconds, timed_out, crashed=status is not None and status < 0)
        finally:
            shutil.rmtree(case, ignore_errors=True)

    def _emu(self, case: Path, timeout: float) -> tuple[str, float, bool, int | None]:
        """grub-emu's terminal output, seconds, whether it timed out, and its exit status (None: it was
        stopped here, once it had answered)."""
        env = dict(os.environ, SDL_VIDEODRIVER="pvboot-none", TERM="vt100")
        if self.shim is not None:
            env["LD_PRELOAD"] = str(self.shim)
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, COLUMNS, 0, 0))
        t0 = time.monotonic()
        proc = subprocess.Popen(
            ["grub-emu", "-d", str(case), "-m", str(case / "devmap")],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        os.close(slave)
        chunks: list[bytes] = []
        timed_out = False
        scanned = 0
        try:
            while True:
                left = timeout - (time.monotonic() - t0)
                if left <= 0:
                    timed_out = True
                    break
                ready, _, _ = select.select([master], [], [], min(left, 0.5))
                if not ready:
                    if proc.poll() is not None:
                        break
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
                text = b"".join(chunks).decode("utf-8", "replace")
                if _finished(text, scanned):
                    break
                scanned = max(0, len(text) - 200)
        finally:
            status = proc.poll()
            if status is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            os.close(master)
        return b"".join(chunks).decode("utf-8", "replace"), time.monotonic() - t0, timed_out, status


def module_dir(base: Path) -> Path:
    """`base`/x86_64-emu: grub-emu's modules without video, so that a config's `terminal_output gfxterm`
    fails and leaves the text console (made once; the one module directory every grub-emu run uses)."""
    moddir = base / "x86_64-emu"
    if moddir.exists():
        return moddir
    moddir.mkdir()
    for name in os.listdir(EMU_DIR):
        if re.match(r"(gfxterm|gfxmenu|video|all_video|sdl|vbe|vga|efi_gop|bitmap|font)", name):
            continue
        src = os.path.join(EMU_DIR, name)
        if name in ("terminal.lst", "video.lst"):
            with open(src) as fh:
                kept = [line for line in fh if "gfx" not in line and "video" not in line]
            (moddir / name).write_text("".join(kept))
            continue
        os.symlink(src, moddir / name)
    return moddir


def run_batch(case: Path, timeout: float) -> str:
    """grub-emu run on prefix `case` (its grub.cfg and devmap; the module directory linked in) without a
    terminal, to the end of its script: its output without terminal escapes."""
    env = dict(os.environ, SDL_VIDEODRIVER="pvboot-none")
    proc = subprocess.run(
        ["grub-emu", "-d", str(case), "-m", str(case / "devmap")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
        preexec_fn=_die_with_parent,
    )
    return ANSI.sub("", proc.stdout.decode("utf-8", "replace")).replace("\r", "")


def _die_with_parent() -> None:
    """grub-emu whose test run is killed (Ctrl-C twice, a CI timeout) spins on its closed terminal at
    100% CPU forever, slowing everything after it; the kernel kills it with its parent instead."""
    from pvboot.sandbox import native

    native.prctl(native.PR_SET_PDEATHSIG, signal.SIGKILL)


def _finished(text: str, scanned: int) -> bool:
    """GRUB gave up on every entry (and waits for a key), or there was no menu (the `grub>` prompt)."""
    tail = text[scanned:]
    if "Failed to boot both default and fallback entries." in tail:
        return True
    done = text.find("ORACLE-CONFIG-DONE")
    return done >= 0 and "grub> " in ANSI.sub("", text[done:])
