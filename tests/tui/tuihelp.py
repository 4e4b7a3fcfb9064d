"""Helpers for the console tests: the menu driven as an admin drives it, pvboot in a tmux pane with
TERM=vt100, keys sent with `send-keys`, screens read with `capture-pane`; then libxl's answer, the files,
and the tty checked.

Guest images are built once per session with the real tools (tests/diskbuild.py): a GRUB 2 menu with a
submenu, countdown and hidden-timeout variants, and a password-protected one (hash by
grub-mkpasswd-pbkdf2).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pvrun
from diskbuild import Part, make_disk, marker_initrd, marker_kernel, put

U = "5a1e0b2c-0000-4000-8000-00000000d0d0"
KERNELS = "abgtlx"  # /boot/vmlinuz-K and /boot/initrd-K for each letter
ALICE_PW = "alice-pw"
ROOT_PW = "Root pw 42"
LONG_TITLE = (
    "Tr\u00e8s long: Debian GNU/Linux, with Linux 6.1.0-20-amd64 and a title far wider than any console "
    "the admin could possibly have"
)


def _entries() -> str:
    return f"""
menuentry 'Alpha' --class debian --id alpha {{
	load_video
	insmod ext2
	search --no-floppy --fs-uuid --set=root {U}
	echo 'Loading Linux ...'
	linux /boot/vmlinuz-a root=/dev/xvda1 ro quiet
	initrd /boot/initrd-a
}}
submenu 'Advanced options for Alpha' --id advanced {{
	menuentry 'Alpha (recovery mode)' --id recovery {{
		linux /boot/vmlinuz-a root=/dev/xvda1 ro single
		initrd /boot/initrd-a
	}}
	menuentry 'Beta' --id beta {{
		linux /boot/vmlinuz-b root=/dev/xvda1 ro beta
		initrd /boot/initrd-b
	}}
}}
menuentry 'Gamma' --id gamma {{
	linux /boot/vmlinuz-g root=/dev/xvda1 ro gamma
}}
menuentry '{LONG_TITLE}' --hotkey=t {{
	linux /boot/vmlinuz-t root=/dev/xvda1 ro long
}}
menuentry 'Evil \x1b[2J\x1b]2;pwned\x07\x1b[31m red' {{
	linux /boot/vmlinuz-x evil
}}
menuentry 'Xen hypervisor' {{
	multiboot2 /boot/vmlinuz-x
	module2 /boot/vmlinuz-a
}}
"""


def _password_cfg(pbkdf2: str) -> str:
    return f"""set superusers="root"
password_pbkdf2 root {pbkdf2}
password alice {ALICE_PW}
set timeout=-1
menuentry 'Open' --unrestricted {{
	linux /boot/vmlinuz-a open
}}
menuentry 'Locked' {{
	linux /boot/vmlinuz-b locked
}}
menuentry 'For alice' --users alice {{
	linux /boot/vmlinuz-g alice
}}
"""


CONFIGS: dict[str, Callable[[], str]] = {
    "menu": lambda: "set default=0\nset timeout=-1\n" + _entries(),
    "countdown": lambda: "set default='advanced>beta'\nset timeout=2\n" + _entries(),
    "hidden": lambda: "set default=gamma\nset timeout_style=hidden\nset timeout=30\n" + _entries(),
    "quiet-countdown": lambda: "set timeout_style=countdown\nset timeout=30\n" + _entries(),
    "password": lambda: _password_cfg(pbkdf2_hash(ROOT_PW)),
}


def pbkdf2_hash(password: str) -> str:
    """GRUB's own tool: the hash `password_pbkdf2` takes (a low count keeps the checks quick)."""
    proc = subprocess.run(
        ["grub-mkpasswd-pbkdf2", "-c", "1000"],
        input=f"{password}\n{password}\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip().split()[-1]


class Images:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.built: dict[str, Path] = {}

    def __call__(self, name: str) -> Path:
        if name not in self.built:
            tree = self.base / name / "tree"
            put(tree, "/boot/grub/grub.cfg", CONFIGS[name]().encode())
            for k in KERNELS:
                put(tree, f"/boot/vmlinuz-{k}", marker_kernel(f"/boot/vmlinuz-{k}"))
                put(tree, f"/boot/initrd-{k}", marker_initrd(f"/boot/initrd-{k}"))
            self.built[name] = make_disk(self.base / name / "disk.img", [Part(tree, uuid=U)], "dos")
        return self.built[name]


def missing_tools() -> list[str]:
    tools = ["tmux", "mkfs.ext4", "sfdisk", "grub-mkpasswd-pbkdf2"]
    return [t for t in tools if shutil.which(t) is None]


@dataclass
class Result:
    code: int
    answer: dict[str, str]
    kernel: bytes | None
    ramdisk: bytes | None
    leftover: list[str]
    stderr: str
    tty_restored: bool


class Console:
    """One pvboot run in a tmux pane of its own server."""

    def __init__(
        self,
        socket: str,
        work: Path,
        image: Path,
        width: int,
        height: int,
        extra: tuple[str, ...],
        env: dict[str, str],
    ) -> None:
        self.socket = socket
        self.work = work
        self.out = work / "out"
        self.out.mkdir(parents=True)
        self.answer = work / "answer"
        self.answer.write_bytes(b"")
        pvboot = pvrun.command(
            "-i", *extra, f"--output={self.answer}", "--output-format=simple0",
            f"--output-directory={self.out}", str(image),
        )  # fmt: skip
        path = shlex.quote(pvrun.environment()["PYTHONPATH"])
        env_words = " ".join(f"{k}={shlex.quote(v)}" for k, v in {"TERM": "vt100", **env}.items())
        script = work / "run.sh"
        script.write_text(
            "#!/bin/sh\n"
            f"stty -g > {work}/stty.before\n"
            f"env {env_words} PYTHONPATH={path} {shlex.join(pvboot)} 2> {work}/stderr\n"
            f"echo $? > {work}/rc.tmp\n"
            f"stty -g > {work}/stty.after\n"
            f"mv {work}/rc.tmp {work}/rc\n"
            "exec sleep 600\n"
        )
        script.chmod(0o755)
        self.tmux("new-session", "-d", "-s", "pv", "-x", str(width), "-y", str(height), str(script))

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-S", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        if proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def keys(self, *keys: str, delay: float = 0.12) -> None:
        """Each argument is one `send-keys` (tmux key names such as Down, Enter, C-x, or literal text)."""
        for key in keys:
            self.tmux("send-keys", "-t", "pv", key)
            time.sleep(delay)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "pv", "-l", text)
        time.sleep(0.12)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "pv")

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline or (self.work / "rc").exists():
                path = self.work / "stderr"
                stderr = path.read_text(errors="replace") if path.exists() else ""
                raise AssertionError(f"{text!r} never showed; screen:\n{screen}\nstderr: {stderr}")
            time.sleep(0.05)

    def pvboot_pid(self) -> int:
        shell = int(self.tmux("list-panes", "-t", "pv", "-F", "#{pane_pid}").split()[0])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
            for pid in children:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"pvboot" in cmdline:
                    return int(pid)
            time.sleep(0.05)
        raise AssertionError("pvboot process not found")

    def result(self, timeout: float = 15.0) -> Result:
        deadline = time.monotonic() + timeout
        while not (self.work / "rc").exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"pvboot did not finish; screen:\n{self.screen()}")
            time.sleep(0.05)
        answer: dict[str, str] = {}
        for item in self.answer.read_bytes().split(b"\0"):
            if item:
                key, _, value = item.decode().partition(" ")
                answer[key] = value
        kernel = Path(answer["kernel"]).read_bytes() if "kernel" in answer else None
        ramdisk = Path(answer["ramdisk"]).read_bytes() if "ramdisk" in answer else None
        expected = {v for k, v in answer.items() if k in ("kernel", "ramdisk")}
        leftover = sorted(str(p) for p in self.out.iterdir() if str(p) not in expected)
        before = (self.work / "stty.before").read_text()
        after = (self.work / "stty.after").read_text()
        return Result(
            code=int((self.work / "rc").read_text()),
            answer=answer,
            kernel=kernel,
            ramdisk=ramdisk,
            leftover=leftover,
            stderr=(self.work / "stderr").read_text(errors="replace"),
            tty_restored=before == after,
        )


StartConsole = Callable[..., Console]


def booted(result: Result, kernel: str, args: str, initrd: str | None = None) -> None:
    """pvboot exited 0 and libxl got `kernel` (by its marker), `initrd`, `args`, and nothing else."""
    assert result.code == 0, result.stderr
    assert result.kernel == marker_kernel(kernel), result.kernel
    assert result.ramdisk == (marker_initrd(initrd) if initrd else None)
    assert result.answer.get("args", "").split() == args.split()
    assert result.leftover == []
    assert result.tty_restored


def stopped(result: Result) -> None:
    """pvboot failed or was stopped: no answer, no file, the terminal as it was."""
    assert result.code != 0
    assert result.answer == {}
    assert list(Path(p) for p in result.leftover) == []
    assert result.kernel is None
    assert result.tty_restored
