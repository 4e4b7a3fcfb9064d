"""pvboot installed as `pygrub` and started the way XAPI's xenopsd starts it, byte for byte.

xenopsd (emulated in `xenopsd.py`) runs `pygrub --output-format=simple -q --runas=<qemu_base + domid>
<PV-bootloader-args split on single spaces> <disk>`, on a block device SM leaves `root:disk` 0660,
without --output-directory (so the files land in /var/run/xen/pygrub), parses stdout with its own
parser and takes the text after "RuntimeError: " on stderr as the error message. The guests are real
ext4 disks on loop devices; each test's expected kernel, initrd and command line are read from the
guest's grub.cfg by the small independent reader below, never from pvboot's output.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import xenopsd

from diskbuild import Part, make_disk, put
from pvboot.kernel.stub import stub_kernel
from pvrun import boot as libxl_boot
from pvrun import pvboot as run_pvboot

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
DEBIAN_CFG = CORPUS / "debian12-grub-mkconfig" / "submenu-index" / "grub.cfg"
U = "5a1e0b2c-0000-4000-8000-00000000d0d0"  # the root filesystem UUID the corpus grub.cfg searches for
RUNAS = xenopsd.QEMU_BASE_UID + 5  # domain 5's qemu uid: no passwd entry, as on XCP-ng
VM_UUID = "9c0e1f7a-3b52-4d1e-8a6f-2f4b7c1d0e55"

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and --runas need root")


# -- an independent reader of the guest's grub.cfg: which leaf entry is which ----------------------------


@dataclass(frozen=True)
class Leaf:
    """A bootable menu entry: its GRUB path (`1>2` is (1, 2)), title and what its block loads."""

    path: tuple[int, ...]
    title: str
    kernel: str
    initrds: tuple[str, ...]
    args: str  # as GRUB passes it: the `linux` line's words after the kernel, single-spaced


_ENTRY = re.compile(r"^\s*(menuentry|submenu)\s+'([^']*)'.*\{\s*$")
_OPEN = re.compile(r"\{\s*$")
_CLOSE = re.compile(r"^\s*\}\s*$")
_LINUX = re.compile(r"^\s*linux\s+(\S+)(.*)$")
_INITRD = re.compile(r"^\s*initrd\s+(.*)$")


def leaves(cfg: str) -> list[Leaf]:
    """The menu's leaf entries in menu order (what GRUB numbers them, submenus flattened)."""
    out: list[Leaf] = []
    counters = [0]
    path: list[int] = []
    frames: list[str] = []
    entry: dict[str, str | list[str]] = {}
    for line in cfg.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if m := _ENTRY.match(line):
            kind, title = m.groups()
            path.append(counters[-1])
            counters[-1] += 1
            frames.append(kind)
            if kind == "submenu":
                counters.append(0)
            else:
                entry = {"title": title, "kernel": "", "initrds": [], "args": ""}
        elif _OPEN.search(line):
            frames.append("block")  # function bodies and the like
        elif _CLOSE.match(line):
            kind = frames.pop()
            if kind == "submenu":
                counters.pop()
                path.pop()
            elif kind == "menuentry":
                initrds = entry["initrds"]
                assert isinstance(initrds, list)
                out.append(
                    Leaf(
                        tuple(path),
                        str(entry["title"]),
                        str(entry["kernel"]),
                        tuple(initrds),
                        str(entry["args"]),
                    )
                )
                path.pop()
                entry = {}
        elif entry and (m := _LINUX.match(line)):
            entry["kernel"], entry["args"] = m.group(1), " ".join(m.group(2).split())
        elif entry and (m := _INITRD.match(line)):
            initrds = entry["initrds"]
            assert isinstance(initrds, list)
            initrds.extend(m.group(1).split())
    return out


def leaf_at(cfg: str, path: tuple[int, ...]) -> Leaf:
    return next(leaf for leaf in leaves(cfg) if leaf.path == path)


def configured_default(cfg: str) -> tuple[int, ...]:
    """The `set default="a>b"` of a grub-mkconfig file with a numeric GRUB_DEFAULT."""
    m = re.search(r'^\s*set default="([0-9>]+)"\s*$', cfg, re.M)
    assert m, "the corpus grub.cfg sets a numeric default"
    return tuple(int(n) for n in m.group(1).split(">"))


# -- guest disks --------------------------------------------------------------------------------------


def kernel_bytes(name: str, *, pv: bool = True, pvh: bool = True) -> bytes:
    """A stand-in kernel that passes pvboot's check (Xen notes per `pv`/`pvh`), with a unique body."""
    return stub_kernel(f"KERNEL {name}\n".encode() + os.urandom(48 * 1024), pv=pv, pvh=pvh)


def initrd_bytes(name: str) -> bytes:
    return f"INITRD {name}\n".encode() + os.urandom(24 * 1024)


@dataclass
class Guest:
    image: Path
    cfg: str
    files: dict[str, bytes]  # guest path -> contents

    def initrd_of(self, leaf: Leaf) -> bytes | None:
        return b"".join(self.files[p] for p in leaf.initrds) if leaf.initrds else None


def debian_tree(tree: Path, cfg: str, missing: tuple[str, ...] = ()) -> dict[str, bytes]:
    """grub.cfg and every kernel and initrd it names (but `missing`), each with distinct bytes."""
    files: dict[str, bytes] = {"/boot/grub/grub.cfg": cfg.encode()}
    for leaf in leaves(cfg):
        files.setdefault(leaf.kernel, kernel_bytes(leaf.kernel))
        for initrd in leaf.initrds:
            files.setdefault(initrd, initrd_bytes(initrd))
    for path in missing:
        del files[path]
    for path, data in files.items():
        put(tree, path, data)
    return files


MODES_CFG = """\
set default=0
set timeout=0
menuentry 'PVH only' {
\tlinux /boot/vmlinuz-pvh root=/dev/xvda1 ro console=hvc0
}
menuentry 'No Xen notes' {
\tlinux /boot/vmlinuz-plain root=/dev/xvda1 ro
}
menuentry 'PV only' {
\tlinux /boot/vmlinuz-pv root=/dev/xvda1 ro
}
"""


def build_guest(name: str, work: Path) -> Guest:
    tree = work / "tree"
    cfg = DEBIAN_CFG.read_text()
    default_kernel = leaf_at(cfg, configured_default(cfg)).kernel
    if name == "random":
        image = work / "random.img"
        image.write_bytes(os.urandom(4 << 20))
        return Guest(image, "", {})
    if name == "modes":
        cfg = MODES_CFG
        files = {"/boot/grub/grub.cfg": cfg.encode()}
        files["/boot/vmlinuz-pvh"] = kernel_bytes("pvh", pv=False, pvh=True)
        files["/boot/vmlinuz-plain"] = kernel_bytes("plain", pv=False, pvh=False)
        files["/boot/vmlinuz-pv"] = kernel_bytes("pv", pv=True, pvh=False)
        for path, data in files.items():
            put(tree, path, data)
    elif name == "kernel-xenserver":
        files = debian_tree(tree, cfg, missing=(default_kernel,))
        files["/kernel-xenserver"] = kernel_bytes("/kernel-xenserver")
        put(tree, "/kernel-xenserver", files["/kernel-xenserver"])
    else:
        files = {} if name == "xenkernel-nomenu" else debian_tree(tree, cfg)
        if name == "xenkernel-nomenu":
            cfg = ""
        prefix = {"debian": None, "xenkernel": "", "boot-xenkernel": "/boot", "xenkernel-nomenu": ""}[name]
        if prefix is not None:
            for path, data in (
                (f"{prefix}/xenkernel", kernel_bytes(f"{prefix}/xenkernel")),
                (f"{prefix}/xeninitrd", initrd_bytes(f"{prefix}/xeninitrd")),
            ):
                files[path] = data
                put(tree, path, data)
    return Guest(make_disk(work / f"{name}.img", [Part(tree, uuid=U)], "dos"), cfg, files)


@contextlib.contextmanager
def sm_device(image: Path) -> Iterator[str]:
    """`image` on a loop device left `root:disk` 0660, as XAPI's SM leaves /dev/sm/backend/... nodes;
    the node's owner and mode are put back after it is detached."""
    dev = subprocess.run(
        ["losetup", "-f", "--show", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    before = os.stat(dev)
    try:
        os.chown(dev, 0, grp.getgrnam("disk").gr_gid)
        os.chmod(dev, 0o660)
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)
        os.chown(dev, before.st_uid, before.st_gid)
        os.chmod(dev, stat.S_IMODE(before.st_mode))


class Guests:
    """Builds each guest once per module and attaches it to its loop device on first use."""

    def __init__(self, base: Path, stack: contextlib.ExitStack) -> None:
        self.base, self.stack = base, stack
        self.built: dict[str, Guest] = {}
        self.devices: dict[str, str] = {}

    def __call__(self, name: str) -> Guest:
        if name not in self.built:
            work = self.base / name
            work.mkdir()
            self.built[name] = build_guest(name, work)
        return self.built[name]

    def device(self, name: str) -> str:
        if name not in self.devices:
            self.devices[name] = self.stack.enter_context(sm_device(self(name).image))
        return self.devices[name]


@pytest.fixture(scope="module")
def guests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guests]:
    if os.geteuid() != 0:
        pytest.skip("loop devices and --runas need root")
    if not DEBIAN_CFG.is_file():
        pytest.skip("needs ../shared/corpus")
    for tool in ("losetup", "mkfs.ext4", "sfdisk"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    with contextlib.ExitStack() as stack:
        yield Guests(tmp_path_factory.mktemp("xapi-guests"), stack)


@pytest.fixture(scope="module")
def pygrub(tmp_path_factory: pytest.TempPathFactory) -> str:
    """pvboot installed as an executable named `pygrub`."""
    return str(xenopsd.install_pygrub(tmp_path_factory.mktemp("bin")))


@pytest.fixture(scope="module")
def pygrub_dir() -> Iterator[Path]:
    """/var/run/xen/pygrub, put back as it was: what the tests created is removed when empty. Held
    under a lock for the module, so that concurrent runs of these tests do not see each other's files."""
    with open(Path(tempfile.gettempdir()) / "pvboot-tests-var-run-xen-pygrub.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _restored(Path(xenopsd.PYGRUB_DIR))


def _restored(directory: Path) -> Iterator[Path]:
    parent = directory.parent
    existed = directory.exists()
    mode = stat.S_IMODE(directory.stat().st_mode) if existed else None
    parent_existed = parent.exists()
    yield directory
    if existed and not directory.exists():
        directory.mkdir(parents=True)
        assert mode is not None
        directory.chmod(mode)
    if not existed and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
    if not parent_existed and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()


def listing(directory: Path) -> set[str]:
    return {str(p) for p in directory.iterdir()} if directory.is_dir() else set()


@dataclass
class Outcome:
    """A xenopsd run: the Boot it got (None if it failed), the error, the run, and the new files."""

    boot: xenopsd.Boot | None
    error: xenopsd.BootloaderError | None
    run: xenopsd.Run
    new_files: set[str]


XapiRunner = Callable[..., Outcome]


@pytest.fixture
def xapi(guests: Guests, pygrub: str, pygrub_dir: Path, tmp_path: Path) -> Iterator[XapiRunner]:
    """`xapi(guest, pv_bootloader_args, ...)`: xenopsd's extract on that guest's SM device. Title rules
    come only from PVBOOT_RULES_DIRS (an empty directory unless `env` says otherwise). Every kernel and
    ramdisk left behind is deleted afterwards, as xenopsd deletes them after the domain build."""
    no_rules = tmp_path / "no-rules"
    no_rules.mkdir()
    boots: list[xenopsd.Boot] = []

    def run(
        guest: str,
        pv_bootloader_args: str = "",
        legacy_args: str = "",
        extra_args: str = "",
        runas: int | None = RUNAS,
        env: dict[str, str] | None = None,
        image: str | None = None,
        command: str | None = None,
    ) -> Outcome:
        disk = image or guests.device(guest)
        before = listing(pygrub_dir)
        full_env = {"PVBOOT_RULES_DIRS": str(no_rules), **(env or {})}
        try:
            result = xenopsd.extract(
                disk, pv_bootloader_args, legacy_args, extra_args, runas, command or pygrub, full_env
            )
        except xenopsd.BootloaderError as exc:
            assert exc.run is not None
            return Outcome(None, exc, exc.run, listing(pygrub_dir) - before)
        boots.append(result)
        return Outcome(result, None, result.run, listing(pygrub_dir) - before)

    yield run
    for done in boots:
        for path in (done.kernel_path, done.initrd_path):
            if path is not None and os.path.exists(path):
                os.unlink(path)


def booted(outcome: Outcome) -> xenopsd.Boot:
    assert outcome.boot is not None, f"{outcome.error!r}; stderr: {outcome.run.stderr}"
    return outcome.boot


def simple_args(outcome: Outcome) -> str:
    return xenopsd.parse_output_simple(outcome.run.stdout)[2]


def assert_boots(outcome: Outcome, guest: Guest, kernel: str, initrd: bytes | None, args: str) -> None:
    """The copies hold the guest's `kernel` and `initrd`; the command line's words are `args`."""
    result = booted(outcome)
    assert Path(result.kernel_path).read_bytes() == guest.files[kernel]
    if initrd is None:
        assert result.initrd_path is None
    else:
        assert result.initrd_path is not None and Path(result.initrd_path).read_bytes() == initrd
    assert simple_args(outcome).split() == args.split()


def assert_clean_failure(outcome: Outcome) -> str:
    """The run failed as XAPI wants a failure: one `pvboot: ` line with "RuntimeError: ", nothing on
    stdout, no file left, and a clean API error. Returns the message XAPI shows."""
    assert outcome.boot is None and outcome.run.returncode != 0
    assert outcome.run.stdout == ""
    assert outcome.new_files == set()
    stderr = outcome.run.stderr
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
    assert stderr.startswith("pvboot: ") and xenopsd.RUNTIME_ERROR in stderr, stderr
    assert isinstance(outcome.error, xenopsd.ErrorFromBootloader), outcome.error
    message = outcome.error.message
    assert message.strip() and "\n" not in message.rstrip("\n")
    assert "Traceback" not in message and "pvboot:" not in message
    return message


# -- the emulation itself: xenopsd's parsing, checks and argv (no root needed) ---------------------------


def test_command_splits_on_single_spaces() -> None:
    disk = "/dev/sm/backend/sr/vdi"
    assert xenopsd.command("", disk, None, "P") == ["P", "--output-format=simple", "-q", disk]
    assert xenopsd.command("--vm=x  --extra_args=a=1 ", disk, 131077, "P") == [
        "P",
        "--output-format=simple",
        "-q",
        "--runas=131077",
        "--vm=x",
        "",
        "--extra_args=a=1",
        "",
        disk,
    ]
    assert xenopsd.split_pv_bootloader_args(" ") == ["", ""]


def test_parse_output_simple() -> None:
    parse = xenopsd.parse_output_simple
    assert parse("kernel /k\nramdisk /r\nargs ro  quiet\n") == ("/k", "/r", "ro  quiet")
    assert parse("kernel /k\n") == ("/k", None, "")
    assert parse("args \nkernel /k a b") == ("/k a b", None, "")
    assert parse("noise\n ignored line\nkernel /k\n\n") == ("/k", None, "")  # no space / leading space
    for bad, why in (
        ("kernel /a\nkernel /b\n", "More than one kernel line"),
        ("kernel /a\nramdisk /r\nramdisk /s\n", "More than one ramdisk line"),
        ("kernel /a\nargs x\nargs y\n", "More than one args line"),
        ("kernel /a\nfoo bar\n", "Unrecognised start of line"),
        ("kernel\nargs ro\n", "No kernel found"),
        ("", "No kernel found"),
    ):
        with pytest.raises(xenopsd.BadError, match=why):
            parse(bad)


def test_sanity_check_path() -> None:
    check = xenopsd.sanity_check_path
    assert check("") == ""
    assert check("/var/run/xen/pygrub/boot_kernel.x") == "/var/run/xen/pygrub/boot_kernel.x"
    assert check("//var/run/./xen/pygrub/../pygrub/k") == "/var/run/xen/pygrub/k"
    assert check("/var/run/xend/boot/k") == "/var/run/xend/boot/k"
    for bad in ("boot_kernel", "/var/run/xen/pygrub/../../../../etc/shadow", "/var/run/xen/pygrub",
                "/var/run/xen/pygrub/sub/k", "/tmp/k"):  # fmt: skip
        with pytest.raises(xenopsd.BadError):
            check(bad)


def test_parse_exception() -> None:
    assert xenopsd.parse_exception("pvboot: RuntimeError: no menu\n") == "no menu\n"
    text = "Traceback (most recent call last):\n  x\nRuntimeError: a RuntimeError: b\nmore\n"
    assert xenopsd.parse_exception(text) == "a RuntimeError: b\nmore\n"  # from the first, to the end
    with pytest.raises(xenopsd.BadError) as info:
        xenopsd.parse_exception("Segmentation fault\n")
    assert info.value.message == "Segmentation fault\n"


def g_strsplit(string: str, delimiter: str) -> list[str]:
    """GLib's g_strsplit(string, delimiter, 0): `delimiter` is one whole separator string."""
    return [] if string == "" else string.split(delimiter)


def libvirt_bootloader_args(text: str) -> list[str]:
    """libvirt's libxl driver: `g_strsplit(def->os.bootloaderArgs, " \\t\\n", 0)`."""
    return g_strsplit(text, " \t\n")


def test_libvirt_split_is_on_the_three_character_sequence() -> None:
    """g_strsplit's delimiter is a string, not a set (that is g_strsplit_set): libvirt splits only where
    the domain XML has space, tab, newline in a row, and passes `--entry=1>1 -q` as one argument."""
    assert libvirt_bootloader_args("--entry=1>1 -q") == ["--entry=1>1 -q"]
    assert libvirt_bootloader_args("--entry=1>1 \t\n \t\n-q") == ["--entry=1>1", "", "-q"]
    assert libvirt_bootloader_args("") == []


# -- xenopsd starting pvboot ----------------------------------------------------------------------------


@root_only
def test_default_in_submenu_boots_that_entry(xapi: XapiRunner, guests: Guests) -> None:
    """(a) grub.cfg's default is `1>2`, inside "Advanced options": that entry's kernel, initrd, args."""
    guest = guests("debian")
    leaf = leaf_at(guest.cfg, configured_default(guest.cfg))
    assert leaf.path == (1, 2) and "6.1.0-10" in leaf.kernel  # the corpus case is what it says
    outcome = xapi("debian")
    assert_boots(outcome, guest, leaf.kernel, guest.initrd_of(leaf), leaf.args)
    result = booted(outcome)
    assert result.kernel_args == f"{simple_args(outcome)}  "  # xenopsd's "%s %s %s", no PV-args/extra
    assert outcome.run.argv[1:4] == ["--output-format=simple", "-q", f"--runas={RUNAS}"]


@root_only
def test_legacy_and_extra_args_are_xenopsds(xapi: XapiRunner, guests: Guests) -> None:
    guest = guests("debian")
    leaf = leaf_at(guest.cfg, configured_default(guest.cfg))
    result = booted(xapi("debian", legacy_args="console=hvc0", extra_args="xapi=1"))
    assert result.kernel_args.split() == [*leaf.args.split(), "console=hvc0", "xapi=1"]


@root_only
def test_files_land_in_var_run_xen_pygrub(xapi: XapiRunner, guests: Guests, pygrub_dir: Path) -> None:
    """(b) No --output-directory: the copies are new files directly in /var/run/xen/pygrub, which is
    created 0700 when missing; xenopsd deletes them after the domain build, leaving nothing."""
    fresh = not pygrub_dir.exists() or not any(pygrub_dir.iterdir())
    if pygrub_dir.is_dir() and fresh:
        pygrub_dir.rmdir()  # empty: nothing of anyone's is lost, and pvboot must make it again
    outcome = xapi("debian")
    result = booted(outcome)
    if fresh:
        assert stat.S_IMODE(pygrub_dir.stat().st_mode) == 0o700
    assert pygrub_dir.is_dir() and not pygrub_dir.is_symlink()
    expected = {result.kernel_path, *([result.initrd_path] if result.initrd_path else [])}
    assert {xenopsd.resolve_dot_and_dotdot(p) for p in outcome.new_files} == expected
    for path in expected:
        assert os.path.dirname(path) == xenopsd.PYGRUB_DIR
        info = os.lstat(path)
        assert stat.S_ISREG(info.st_mode) and info.st_nlink == 1
    xenopsd.delete(result)
    assert listing(pygrub_dir) & expected == set()


@root_only
def test_stdout_is_only_the_simple_answer(xapi: XapiRunner, guests: Guests) -> None:
    """(c) stdout: one kernel line, at most one ramdisk and one args line, then the empty line pygrub's
    simple format ends with (xenopsd skips it); nothing else."""
    outcome = xapi("debian")
    booted(outcome)
    text = outcome.run.stdout
    assert text.endswith("\n\n") and not text.endswith("\n\n\n"), text
    lines = text.split("\n")[:-2]
    assert all(" " in line for line in lines), text
    words = [line.split(" ", 1)[0] for line in lines]
    assert words.count("kernel") == 1 and words.count("ramdisk") <= 1 and words.count("args") <= 1
    assert set(words) <= {"kernel", "ramdisk", "args"}
    assert outcome.run.stderr == ""


@root_only
def test_extra_args_vm_and_default_args(xapi: XapiRunner, guests: Guests) -> None:
    """(d) XCP-ng's PV-bootloader-args: --extra_args is appended to the entry's args; --vm and
    --default_args (which only a /xenkernel boot uses) are accepted; doubled spaces are harmless."""
    guest = guests("debian")
    leaf = leaf_at(guest.cfg, configured_default(guest.cfg))
    outcome = xapi("debian", "--extra_args=xapi_extra=1")
    assert_boots(outcome, guest, leaf.kernel, guest.initrd_of(leaf), f"{leaf.args} xapi_extra=1")
    assert simple_args(outcome).split()[-1] == "xapi_extra=1"
    outcome = xapi("debian", f"--vm={VM_UUID} --default_args=x")
    assert outcome.run.returncode == 0, outcome.run.stderr
    assert_boots(outcome, guest, leaf.kernel, guest.initrd_of(leaf), leaf.args)
    outcome = xapi("debian", f"--vm={VM_UUID}  --extra_args=a=1 ")  # argv holds two "" arguments
    assert "" in outcome.run.argv
    assert_boots(outcome, guest, leaf.kernel, guest.initrd_of(leaf), f"{leaf.args} a=1")


@root_only
def test_random_disk_fails_cleanly(xapi: XapiRunner, guests: Guests) -> None:
    """(e) A disk of random bytes: a clean Error_from_bootloader, not an INTERNAL_ERROR."""
    assert_clean_failure(xapi("random"))


@root_only
def test_sm_backend_device_node(xapi: XapiRunner, guests: Guests, tmp_path: Path) -> None:
    """The disk as SM names it: a `root:disk` 0660 block node at sm/backend/<SR>/<VDI>."""
    guest = guests("debian")
    rdev = os.stat(guests.device("debian")).st_rdev
    node = tmp_path / "sm" / "backend" / str(uuid.uuid4()) / str(uuid.uuid4())
    node.parent.mkdir(parents=True)
    os.mknod(node, stat.S_IFBLK | 0o660, rdev)
    os.chown(node, 0, grp.getgrnam("disk").gr_gid)
    try:
        os.close(os.open(node, os.O_RDONLY))
    except OSError as exc:
        pytest.skip(f"device nodes do not open here ({exc})")
    leaf = leaf_at(guest.cfg, configured_default(guest.cfg))
    assert_boots(xapi("debian", image=str(node)), guest, leaf.kernel, guest.initrd_of(leaf), leaf.args)


@root_only
def test_console_script_named_pvboot(xapi: XapiRunner, guests: Guests) -> None:
    """The same call through the installed console script (the name pvboot, not pygrub)."""
    script = Path(sys.executable).parent / "pvboot"
    if not script.exists():
        pytest.skip(f"no console script {script}")
    guest = guests("debian")
    leaf = leaf_at(guest.cfg, configured_default(guest.cfg))
    outcome = xapi("debian", command=str(script))
    assert_boots(outcome, guest, leaf.kernel, guest.initrd_of(leaf), leaf.args)


# -- (f) XCP-ng's title rules -------------------------------------------------------------------------


def first_acceptable(cfg: str, blacklist: list[str]) -> Leaf:
    """The first leaf entry in menu order whose title no blacklist regex finds."""
    return next(leaf for leaf in leaves(cfg) if not any(re.search(rx, leaf.title) for rx in blacklist))


def rules_env(tmp_path: Path, *dirs: dict[str, str]) -> dict[str, str]:
    paths = []
    for index, files in enumerate(dirs):
        directory = tmp_path / f"rules{index}"
        directory.mkdir(parents=True)
        for name, text in files.items():
            (directory / name).write_text(text)
        paths.append(str(directory))
    return {"PVBOOT_RULES_DIRS": ":".join(paths)}


@root_only
def test_rules_blacklist_the_default(xapi: XapiRunner, guests: Guests, tmp_path: Path) -> None:
    guest = guests("debian")
    env = rules_env(tmp_path, {"50-xcp": "# XCP-ng rules\n\ntitle blacklist 6\\.1\\.0-10\n"})
    expected = first_acceptable(guest.cfg, [r"6\.1\.0-10"])
    assert expected.path == (0,) and expected.path != configured_default(guest.cfg)
    assert_boots(xapi("debian", env=env), guest, expected.kernel, guest.initrd_of(expected), expected.args)


@root_only
def test_rules_several_regexes_files_and_directories(
    xapi: XapiRunner, guests: Guests, tmp_path: Path
) -> None:
    """Every regex of a line, every file of every listed directory; the first acceptable leaf entry
    of the flattened menu is the submenu's recovery entry here."""
    guest = guests("debian")
    first = r"^Debian\sGNU/Linux$ 6\.1\.0-10"
    second = r"6\.1\.0-20-amd64$"
    env = rules_env(
        tmp_path,
        {"a.rules": f"title blacklist {first}\n"},
        {"b.rules": f"   \n# x\ntitle blacklist {second}\n"},
    )
    expected = first_acceptable(guest.cfg, [*first.split(), second])
    assert expected.path == (1, 1) and "recovery" in expected.title
    assert_boots(xapi("debian", env=env), guest, expected.kernel, guest.initrd_of(expected), expected.args)


@root_only
def test_rules_prefer_and_accept_only_mark_acceptable(
    xapi: XapiRunner, guests: Guests, tmp_path: Path
) -> None:
    guest = guests("debian")
    default = leaf_at(guest.cfg, configured_default(guest.cfg))
    env = rules_env(tmp_path, {"r": "title prefer \\(recovery\\smode\\)\ntitle accept 6\\.1\\.0-20\n"})
    assert_boots(xapi("debian", env=env), guest, default.kernel, guest.initrd_of(default), default.args)
    env = rules_env(tmp_path / "2", {"r": "title blacklist 6\\.1\\.0-10\ntitle prefer recovery\n"})
    expected = first_acceptable(guest.cfg, [r"6\.1\.0-10"])
    assert "recovery" not in expected.title
    assert_boots(xapi("debian", env=env), guest, expected.kernel, guest.initrd_of(expected), expected.args)


@root_only
def test_rules_do_not_override_an_explicit_entry(xapi: XapiRunner, guests: Guests, tmp_path: Path) -> None:
    guest = guests("debian")
    leaf = leaf_at(guest.cfg, (1, 2))
    env = rules_env(tmp_path, {"r": "title blacklist 6\\.1\\.0-10\n"})
    outcome = xapi("debian", "--entry=1>2", env=env)
    assert_boots(outcome, guest, leaf.kernel, guest.initrd_of(leaf), leaf.args)


@root_only
def test_rules_dirs_variable_replaces_the_list(xapi: XapiRunner, guests: Guests, tmp_path: Path) -> None:
    """Rules in a directory PVBOOT_RULES_DIRS does not list do nothing."""
    guest = guests("debian")
    unlisted = tmp_path / "unlisted"
    unlisted.mkdir()
    (unlisted / "r").write_text("title blacklist 6\\.1\\.0-10\n")
    (tmp_path / "listed").mkdir()
    default = leaf_at(guest.cfg, configured_default(guest.cfg))
    outcome = xapi("debian", env={"PVBOOT_RULES_DIRS": str(tmp_path / "listed")})
    assert_boots(outcome, guest, default.kernel, guest.initrd_of(default), default.args)


# -- (g, h) XenServer's /xenkernel and /kernel-xenserver --------------------------------------------------


@root_only
@pytest.mark.parametrize(("name", "prefix"), [("xenkernel", ""), ("boot-xenkernel", "/boot")])
def test_xenkernel_boots_instead_of_the_menu(
    xapi: XapiRunner, guests: Guests, name: str, prefix: str
) -> None:
    guest = guests(name)
    kernel, initrd = f"{prefix}/xenkernel", guest.files[f"{prefix}/xeninitrd"]
    outcome = xapi(name, "--default_args=root=/dev/xvda1 --extra_args=xapi_extra=1")
    assert_boots(outcome, guest, kernel, initrd, "root=/dev/xvda1 xapi_extra=1")
    assert_boots(xapi(name, "--default_args=root=/dev/xvda1"), guest, kernel, initrd, "root=/dev/xvda1")
    assert_boots(xapi(name), guest, kernel, initrd, "")
    # --no-xenserver-rules: the menu's default, as everywhere else
    leaf = leaf_at(guest.cfg, configured_default(guest.cfg))
    outcome = xapi(name, "--no-xenserver-rules --default_args=root=/dev/xvda1")
    assert_boots(outcome, guest, leaf.kernel, guest.initrd_of(leaf), leaf.args)


@root_only
def test_xenkernel_needs_no_menu(xapi: XapiRunner, guests: Guests) -> None:
    """A disk with /xenkernel and /xeninitrd and no boot config at all: the menu is never looked for."""
    guest = guests("xenkernel-nomenu")
    outcome = xapi("xenkernel-nomenu", "--default_args=root=/dev/xvda1")
    assert_boots(outcome, guest, "/xenkernel", guest.files["/xeninitrd"], "root=/dev/xvda1")
    assert_clean_failure(xapi("xenkernel-nomenu", "--no-xenserver-rules"))


@root_only
def test_kernel_xenserver_replaces_a_missing_kernel(xapi: XapiRunner, guests: Guests) -> None:
    """(h) The chosen entry's kernel is not on the disk, /kernel-xenserver is: that boots instead
    (and, with --no-xenserver-rules, the boot fails cleanly)."""
    guest = guests("kernel-xenserver")
    leaf = leaf_at(guest.cfg, configured_default(guest.cfg))
    assert leaf.kernel not in guest.files
    outcome = xapi("kernel-xenserver")
    result = booted(outcome)
    assert Path(result.kernel_path).read_bytes() == guest.files["/kernel-xenserver"]
    assert_clean_failure(xapi("kernel-xenserver", "--no-xenserver-rules"))


# -- (i) PVH-only kernels, and kernels that are neither -------------------------------------------------


@root_only
def test_pvh_only_kernel_boots(xapi: XapiRunner, guests: Guests) -> None:
    guest = guests("modes")
    leaf = leaf_at(guest.cfg, (0,))
    assert_boots(xapi("modes"), guest, "/boot/vmlinuz-pvh", None, leaf.args)


@root_only
def test_kernel_without_xen_notes_is_refused(xapi: XapiRunner, guests: Guests) -> None:
    message = assert_clean_failure(xapi("modes", "--entry=1"))
    assert "/boot/vmlinuz-plain" in message


@root_only
@pytest.mark.parametrize(
    ("guest", "entry", "modes"),
    [("modes", "0", ["pvh"]), ("modes", "2", ["pv"]), ("debian", "1>2", ["pv", "pvh"])],
)
def test_json_kernel_info_modes(
    guests: Guests, tmp_path: Path, guest: str, entry: str, modes: list[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = run_pvboot(
        "-q",
        "--output-format=json",
        f"--output-directory={out}",
        f"--entry={entry}",
        str(guests(guest).image),
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)["kernel_info"]
    assert info["pv"] is ("pv" in modes) and info["pvh"] is ("pvh" in modes)
    assert info["modes"] == modes


# -- (j) pygrub-wrapper's depriv probe --------------------------------------------------------------------


def test_usage_offers_runas(pygrub: str) -> None:
    run = xenopsd.run_bootloader([pygrub])
    assert run.returncode != 0 and run.stdout == ""
    assert xenopsd.RUNAS_MARK in run.stderr
    assert xenopsd.usage_offers_runas(pygrub)


# -- (k) libvirt's libxl driver ---------------------------------------------------------------------------


@root_only
@pytest.mark.parametrize(
    "argv",
    [
        ["--entry=1>1", "", "-q"],
        libvirt_bootloader_args("--entry=1>1 \t\n \t\n-q"),
        ["", "--entry=1>1", ""],
        libvirt_bootloader_args("--entry=1>1 -q"),  # one argument: split by pvboot, being all options
        ["--entry=1>1", "-q"],  # as a whitespace split would give it
    ],
)
def test_libvirt_bootloader_args(guests: Guests, tmp_path: Path, argv: list[str]) -> None:
    """libxl passes libvirt's arguments through untouched: empty ones, and `<bootloader_args>` whole."""
    guest = guests("debian")
    leaf = leaf_at(guest.cfg, (1, 1))
    assert leaf.path != configured_default(guest.cfg)
    result = libxl_boot(guest.image, tmp_path, *argv)
    assert result.code == 0, result.stderr
    assert result.kernel == guest.files[leaf.kernel]
    assert result.ramdisk == guest.initrd_of(leaf)
    assert result.answer["args"].split() == leaf.args.split()
    assert not result.leftover
