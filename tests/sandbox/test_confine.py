"""The confinement itself, tested directly: a forked process confines itself exactly as the disk reader
does (sandbox.confine.enter), then tries what a subverted reader would try."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pvboot.sandbox import confine, landlock, seccomp

IMAGE_BYTES = b"guest bytes " * 512
FSIZE = 1 << 20
PR_GET_SECCOMP = 21

Action = Callable[[confine.Reader, int], str]


def run_confined(
    tmp_path: Path,
    action: Action,
    *,
    userns: bool = True,
    keep: tuple[int, ...] = (),
    setup: Callable[[], object] | None = None,
    **options: Any,
) -> tuple[str, int | None]:
    """Fork; the child runs `setup()`, confines itself (with `options` for enter()) and runs
    `action(reader, out_fd)`: the code a subverted reader would run. Returns what the action reported
    (or 'refused ERRNO' for an OSError) and the signal that ended the child, if any."""
    image = tmp_path / "disk.img"
    image.write_bytes(IMAGE_BYTES)
    out_fd = os.open(tmp_path / "out.bin", os.O_RDWR | os.O_CREAT, 0o600)
    r, w = os.pipe()
    parent_end, child_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(r)
            if setup is not None:
                setup()
            reader = confine.enter(
                str(image),
                child_end.fileno(),
                [w, out_fd, *keep],
                address_space=_vm_size() + (512 << 20),  # pytest itself may be big
                cpu_seconds=10,
                file_size=FSIZE,
                userns=userns,
                **options,
            )
            try:
                result = action(reader, out_fd)
            except OSError as exc:
                result = f"refused {errno.errorcode.get(exc.errno or 0, exc.errno)}"
            except MemoryError:
                result = "MemoryError"
            os.write(w, result.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    os.close(out_fd)
    child_end.close()
    chunks = []
    while chunk := os.read(r, 4096):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    parent_end.close()
    return b"".join(chunks).decode(), (os.WTERMSIG(status) if os.WIFSIGNALED(status) else None)


def _vm_size() -> int:
    return int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def killed(tmp_path: Path, action: Action) -> None:
    result, sig = run_confined(tmp_path, action)
    assert sig == signal.SIGSYS, f"expected SIGSYS, got {result!r}, signal {sig}"


def test_reads_the_image_and_writes_the_output(tmp_path: Path) -> None:
    def act(reader: confine.Reader, out: int) -> str:
        assert reader.image_fd is not None
        data = os.pread(reader.image_fd, 12, 0)
        os.write(out, data)
        return data.decode()

    assert run_confined(tmp_path, act) == ("guest bytes ", None)
    assert (tmp_path / "out.bin").read_bytes() == b"guest bytes "


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(lambda r, o: os.execv("/bin/true", ["true"]), id="execve"),
        pytest.param(lambda r, o: str(socket.socket(socket.AF_INET, socket.SOCK_STREAM)), id="socket-inet"),
        pytest.param(lambda r, o: str(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)), id="socket-unix"),
        pytest.param(lambda r, o: str(os.fork()), id="fork"),
        pytest.param(lambda r, o: str(os.setuid(0)), id="setuid"),
        pytest.param(
            lambda r, o: str(ctypes.CDLL(None).ptrace(16, ctypes.c_long(os.getppid()), None, None)),
            id="ptrace",
        ),
        pytest.param(
            lambda r, o: str(ctypes.CDLL(None).mount(b"none", b"/mnt", b"tmpfs", 0, None)), id="mount"
        ),
        pytest.param(lambda r, o: str(ctypes.CDLL(None).unshare(0x10000000)), id="unshare"),
    ],
)
def test_subverted_calls_kill_the_reader(tmp_path: Path, action: Action) -> None:
    killed(tmp_path, action)


def _open_for_write(path: Path) -> Action:
    return lambda r, o: str(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))


def test_no_file_opens_for_writing(tmp_path: Path) -> None:
    assert run_confined(tmp_path, _open_for_write(tmp_path / "new")) == ("refused EACCES", None)
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "out.bin"  # the very output file: only its inherited fd is writable
    assert run_confined(tmp_path, lambda r, o: str(os.open(existing, os.O_RDWR))) == ("refused EACCES", None)
    assert run_confined(tmp_path, lambda r, o: str(os.open(existing, os.O_RDONLY | os.O_TRUNC)))[0] == (
        "refused EACCES"
    )


def test_no_directory_changes(tmp_path: Path) -> None:
    assert run_confined(tmp_path, lambda r, o: str(os.mkdir(tmp_path / "d")))[0].startswith("refused")
    assert run_confined(tmp_path, lambda r, o: str(os.unlink(tmp_path / "disk.img")))[0].startswith("refused")
    assert (tmp_path / "disk.img").exists()


@pytest.mark.skipif(landlock.abi_version() == 0, reason="no Landlock in this kernel")
def test_landlock_hides_host_files(tmp_path: Path) -> None:
    secret = Path("/etc/hostname") if Path("/etc/hostname").exists() else Path("/etc/passwd")
    result, sig = run_confined(tmp_path, lambda r, o: secret.read_text()[:0] + "read")
    assert (result, sig) == ("refused EACCES", None)
    # nor the image's own directory: a backing file is opened there only before the last Landlock layer
    (tmp_path / "sibling").write_bytes(b"sib")
    assert run_confined(tmp_path, lambda r, o: (tmp_path / "sibling").read_text()) == ("refused EACCES", None)
    assert run_confined(tmp_path, lambda r, o: str(os.listdir(tmp_path))) == ("refused EACCES", None)


needs_landlock = pytest.mark.skipif(landlock.abi_version() == 0, reason="no Landlock in this kernel")


def _no_landlock() -> None:
    landlock.abi_version = lambda: 0  # (in the forked child only): a kernel without Landlock


def _open(path: Path | str) -> str:
    os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY))
    return "opened"


@needs_landlock
def test_no_system_library_is_readable_and_native_codecs_still_load(tmp_path: Path) -> None:
    """Landlock grants the Python trees only; the one extension module the readers need from outside
    them (dissect's Rust codecs, which link libgcc_s) was imported before."""
    libraries = [p for p in ("/etc/ld.so.cache", "/usr/lib/os-release", "/lib64") if os.path.exists(p)]

    def act(r: confine.Reader, o: int) -> str:
        from dissect.util import compression

        return f"{compression.lz4_native is not None} " + " ".join(
            run_or_errno(lambda p=p: _open(p)) for p in libraries
        )

    result, _ = run_confined(tmp_path, act)
    assert result == " ".join(["True", *["EACCES"] * len(libraries)]), result


def run_or_errno(action: Callable[[], str]) -> str:
    try:
        return action()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))


@needs_landlock
def test_a_python_tree_not_owned_by_root_is_not_granted(tmp_path: Path) -> None:
    """An import directory someone else owns may hold anything: it gets no Landlock rule (the reader
    imports everything it may need beforehand instead)."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "their_module.py").write_text("VALUE = 1\n")
    (theirs / "secret.txt").write_text("secret")
    os.chown(theirs, 4444, 4444)

    def setup() -> None:
        import sys

        sys.path.insert(0, str(theirs))
        __import__("their_module")

    def act(r: confine.Reader, o: int) -> str:
        return f"{str(theirs) in r.trees} {run_or_errno(lambda: _open(theirs / 'secret.txt'))}"

    assert run_confined(tmp_path, act, setup=setup) == ("False EACCES", None)


def test_without_landlock_no_file_opens_at_all(tmp_path: Path) -> None:
    """A kernel without Landlock: everything is imported first, and a second seccomp filter refuses every
    open; the image still reads, through the fd opened before."""
    (tmp_path / "sibling").write_bytes(b"sib")

    def act(r: confine.Reader, o: int) -> str:
        assert r.image_fd is not None
        opens = [
            run_or_errno(lambda p=p: _open(p)) for p in ("/etc/passwd", tmp_path / "sibling", os.__file__)
        ]
        return f"{r.landlock_abi} {r.seccomp} {os.pread(r.image_fd, 5, 0).decode()} {' '.join(opens)}"

    assert run_confined(tmp_path, act, setup=_no_landlock) == ("0 True guest EACCES EACCES EACCES", None)


@pytest.mark.parametrize("kernel", ["landlock", "no-landlock"])
def test_the_image_directory_is_readable_only_while_the_backing_chain_opens(
    tmp_path: Path, kernel: str
) -> None:
    """The qcow2 chain is opened as the reader, once confined, through the image's directory; then that
    directory is taken away (a second Landlock layer, or without Landlock a filter refusing opens)."""
    if kernel == "landlock" and landlock.abi_version() == 0:
        pytest.skip("no Landlock in this kernel")
    (tmp_path / "base.qcow2").write_bytes(b"the backing file")
    (tmp_path / "victim.img").write_bytes(b"another guest")

    during: list[str] = []

    def chain(image: str, fd: int, dir_fd: int) -> dict[str, int | OSError]:
        # already under the filter: it refuses prctl (PR_GET_SECCOMP would say 0 without one)
        filtered = ctypes.CDLL(None, use_errno=True).prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == -1
        during.append(f"filtered={filtered} {run_or_errno(lambda: _open(tmp_path / 'victim.img'))}")
        return {"base.qcow2": os.open("base.qcow2", os.O_RDONLY, dir_fd=dir_fd)}

    def act(r: confine.Reader, o: int) -> str:
        backing = r.backing["base.qcow2"]
        assert isinstance(backing, int) and r.dir_fd is None
        victim = run_or_errno(lambda: _open(tmp_path / "victim.img"))
        again = run_or_errno(lambda: _open(tmp_path / "base.qcow2"))
        return f"{during[0]} | {os.pread(backing, 16, 0).decode()} {victim} {again}"

    setup = _no_landlock if kernel == "no-landlock" else None
    result = run_confined(tmp_path, act, setup=setup, backing=chain)
    assert result == ("filtered=True opened | the backing file EACCES EACCES", None), result


def test_signals_only_to_itself(tmp_path: Path) -> None:
    me = os.getpid()
    result, sig = run_confined(tmp_path, lambda r, o: str(os.kill(me, signal.SIGTERM)))
    assert sig is None and result in ("refused EPERM", "refused ESRCH")


def test_limits(tmp_path: Path) -> None:
    assert run_confined(tmp_path, lambda r, o: str(os.pwrite(o, b"x", FSIZE))) == ("refused EFBIG", None)
    assert run_confined(tmp_path, lambda r, o: str(len(bytearray(700 << 20)))) == ("MemoryError", None)


def test_only_the_granted_fds_stay_open(tmp_path: Path) -> None:
    stray = os.open(os.devnull, os.O_RDONLY)  # inherited by the fork, must be closed by confinement
    try:
        result, _ = run_confined(tmp_path, lambda r, o: str(os.fstat(stray).st_mode))
    finally:
        os.close(stray)
    assert result == "refused EBADF"


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _reader_pid(pid: int) -> int:
    """The reader: the forked process itself, or (in a new PID namespace) its keeper's only child."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


@pytest.mark.parametrize("userns", [True, False], ids=["userns", "no-userns"])
def test_reader_state(tmp_path: Path, userns: bool) -> None:
    """Seen from outside: no new privileges, a seccomp filter, other namespaces, and (as root without
    user namespaces) an unprivileged uid."""
    if not userns and os.geteuid() != 0:
        pytest.skip("the uid fallback is for root")
    go_r, go_w = os.pipe()

    def wait(r: confine.Reader, o: int) -> str:
        os.read(go_r, 1)
        return f"{os.getpid()} {r.namespaces} {r.uid_changed}"

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child runs the confined action and reports through a file
        os.close(go_w)
        result, sig = run_confined(tmp_path, wait, userns=userns, keep=(go_r,))
        (tmp_path / "result").write_text(f"{result}|{sig}")
        os._exit(0)
    os.close(go_r)
    try:
        deadline = time.monotonic() + 20
        reader = None
        while time.monotonic() < deadline:
            for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
                candidate = _reader_pid(int(child))
                with contextlib.suppress(OSError):
                    if _status(candidate).get("Seccomp", "0").strip() == "2":
                        reader = candidate
            if reader:
                break
            time.sleep(0.02)
        assert reader, "the confined reader never appeared"
        status = _status(reader)
        assert status["NoNewPrivs"].strip() == "1"
        assert status["Seccomp"].strip() == "2"
        for ns in ("mnt", "net", "ipc") if os.geteuid() == 0 or userns else ():
            assert os.readlink(f"/proc/{reader}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
        if userns:
            assert os.readlink(f"/proc/{reader}/ns/user") != os.readlink("/proc/self/ns/user")
        elif os.geteuid() == 0:
            uids = status["Uid"].split()
            assert uids[0] != "0" and len(set(uids)) == 1, uids
            assert int(status["CapEff"], 16) == 0
    finally:
        os.write(go_w, b"x")
        os.close(go_w)
        os.waitpid(pid, 0)
    result = (tmp_path / "result").read_text()
    assert result.endswith("|None"), result


def test_fallback_uid_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root without user namespaces drops to $PVBOOT_SANDBOX_USER (else nobody)."""
    if os.geteuid() != 0:
        pytest.skip("the uid fallback is for root")
    monkeypatch.setenv(confine.USER_ENV, "4444")
    result = run_confined(tmp_path, lambda r, o: f"{os.getresuid()} {os.getgroups()}", userns=False)
    assert result == ("(4444, 4444, 4444) []", None)


def test_an_unprivileged_caller_still_gets_namespaces_and_filters(traversable_tmp: Path) -> None:
    """pvboot started by an ordinary user: a user namespace carries the others (where the kernel lets
    unprivileged users make one), no-new-privs, Landlock and seccomp all apply."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become an ordinary user for the test")
    tmp_path = traversable_tmp
    os.chmod(tmp_path, 0o777)
    result_file = tmp_path / "result"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the ordinary user's process
        code = 1
        try:
            os.setgroups([])
            os.setresgid(4555, 4555, 4555)
            os.setresuid(4555, 4555, 4555)
            work = tmp_path / "work"
            work.mkdir()

            def act(r: confine.Reader, o: int) -> str:
                assert r.image_fd is not None
                return f"{os.pread(r.image_fd, 5, 0).decode()} {r.namespaces} {r.seccomp}"

            result, sig = run_confined(work, act)
            _, sig2 = run_confined(work, lambda r, o: str(socket.socket()))
            result_file.write_text(f"{result}|{sig}|{sig2}")
            code = 0
        finally:
            os._exit(code)
    os.waitpid(pid, 0)
    result, sig, sig2 = result_file.read_text().split("|")
    assert result.startswith("guest ") and result.endswith(" True"), result
    sysctls = ("/proc/sys/user/max_user_namespaces", "/proc/sys/kernel/unprivileged_userns_clone")
    allowed = all(not Path(p).exists() or Path(p).read_text().strip() != "0" for p in sysctls)
    assert "'user', 'mount', 'ipc', 'net', 'pid'" in result or not allowed, result
    assert sig == "None" and sig2 == str(int(signal.SIGSYS))
    assert seccomp  # imported here: the ordinary user could not import it from a private Python
