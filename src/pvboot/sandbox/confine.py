"""How the child confines itself before it reads one guest byte.

Order (each step only narrows what the next may do; the reasons are in docs/security.md):

0. (the parent, when root, forks the child as PID 1 of a new PID namespace: fork_in_pid_namespace)
1. own process group; default signal actions; stdin/stdout (and stderr unless --debug) on /dev/null;
   no core dumps.
2. open the image and an O_PATH handle on its directory (for qcow2 backing files), with the caller's
   (root's) access, also with `--runas`: the path is the admin's or the toolstack's, never the guest's,
   and XAPI hands over `root:disk` 0660 device nodes that the restricted uid cannot open. The reader
   keeps only these fds; it never gets the `disk` group (which XCP-ng's pygrub keeps, and which would
   let it open every disk of the host).
3. namespaces: new user, mount, IPC and network namespaces, and PID unless step 0 made it (started as
   root, the user namespace leaves the process uid 0 but without any capability outside it). Without
   user namespaces, root still makes the others and step 4 drops to an unprivileged uid (the
   configured one or `nobody`). With `--runas`, no user namespace: the uid change is the boundary.
4. with `--runas` (or in that fallback): no supplementary groups, the gid, the uid.
5. PR_SET_NO_NEW_PRIVS, not dumpable.
6. if step 3 made the PID namespace, one more fork: the keeper stays outside and waits; the reader is
   PID 1 of the namespace. The reader dies with its parent (PR_SET_PDEATHSIG) and continues:
7. every fd closed but the image (+ its directory), the output files, the channel and stdio;
8. rlimits: address space, CPU seconds, file size, open files, no new processes, no locked memory;
9. Landlock: read-only access to the Python installation, the system libraries and the image's
   directory; no write anywhere;
10. seccomp: the allow-list in seccomp.py (built before step 8, loaded last); execve, socket, ptrace,
    clone and friends kill the process; opens for writing fail with EACCES.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import select
import signal
import stat
import sys
from dataclasses import dataclass, field

from pvboot.errors import PvbootError, UsageError

log = logging.getLogger(__name__)

NOBODY = 65534
USER_ENV = "PVBOOT_SANDBOX_USER"  # the user (name or uid) to drop to when it must and --runas is absent
SYSTEM_LIBRARIES = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/etc/ld.so.cache")
IMAGE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK  # as disk/container.py opens it
MAX_OPEN_FILES = 64


@dataclass
class Identity:
    """Who the reader becomes when it changes uid."""

    uid: int
    gid: int


def resolve_runas(runas: int | None) -> Identity | None:
    """The identity `--runas=UID` names (gid: the uid's primary group, else the same number, as pygrub).

    Runs in the parent: a name-service look-up is no business of the sandboxed child."""
    if runas is None:
        return None
    if runas <= 0:
        raise UsageError(f"--runas={runas}: the restricted uid must be a uid other than root's")
    if os.geteuid() != 0 and runas != os.geteuid():
        raise UsageError(f"--runas={runas} needs pvboot to be started as root")
    return Identity(runas, _primary_gid(runas))


def fallback_identity() -> Identity:
    """The uid to drop to when user namespaces are not available: $PVBOOT_SANDBOX_USER, else nobody."""
    import pwd

    wanted = os.environ.get(USER_ENV, "").strip()
    try:
        if wanted.isdigit():
            return Identity(int(wanted), _primary_gid(int(wanted)))
        entry = pwd.getpwnam(wanted or "nobody")
        return Identity(entry.pw_uid, entry.pw_gid)
    except KeyError:
        if wanted:
            raise PvbootError(f"{USER_ENV}={wanted}: no such user") from None
        return Identity(NOBODY, NOBODY)


def _primary_gid(uid: int) -> int:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid


@dataclass
class Reader:
    """What the confined reader holds: the pre-opened image (or why it could not be opened)."""

    image: str | None
    image_fd: int | None = None
    dir_fd: int | None = None
    error: str | None = None
    namespaces: list[str] = field(default_factory=list)
    uid_changed: bool = False
    landlock_abi: int = 0
    seccomp: bool = False

    def open(self) -> None:
        if self.image is None:
            return
        try:
            self.image_fd = os.open(self.image, IMAGE_FLAGS)
            directory = os.path.dirname(os.path.abspath(self.image))
            self.dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            self.error = f"cannot open disk image {self.image}: {exc.strerror}"

    def fds(self) -> list[int]:
        return [fd for fd in (self.image_fd, self.dir_fd) if fd is not None]

    def open_host(self, path: str, flags: int) -> int:
        """disk/container.py's way to open host files in the reader: the image is the pre-opened fd;
        a backing file (a guest-named sibling) is opened relative to the image's directory, with the
        reader's own access, and must be a regular file."""
        if self.image is not None and self.image_fd is not None and path == self.image:
            return os.dup(self.image_fd)
        image_dir = os.path.dirname(os.path.abspath(self.image or ""))
        if self.dir_fd is not None and os.path.dirname(os.path.abspath(path)) == image_dir:
            fd = os.open(os.path.basename(path), flags, dir_fd=self.dir_fd)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise OSError(errno.EACCES, "not a regular file (pvboot opens no device the guest names)")
            return fd
        return os.open(path, flags)


def fork_in_pid_namespace() -> tuple[int, bool]:
    """os.fork(), the child made PID 1 of a new PID namespace when the caller can (root): the parent
    enters the namespace for its next child only, forks, and returns to its own at once. Saves the
    child the extra fork (and the keeper process) it would need to make one itself.
    Returns (fork's result, whether the child is in a new PID namespace)."""
    if os.geteuid() != 0:
        return os.fork(), False
    from pvboot.sandbox import native

    try:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return os.fork(), False
    try:
        native.unshare(native.CLONE_NEWPID)
    except OSError:
        os.close(own)
        return os.fork(), False
    pid = -1
    try:
        pid = os.fork()
    finally:
        if pid != 0:  # the parent (or a failed fork): its next children are born in its own again
            native.setns(own, native.CLONE_NEWPID)
            os.close(own)
    return pid, True  # (the child's copy of `own` goes with the other fds it closes)


def enter(
    image: str | None,
    channel_fd: int,
    keep_fds: list[int],
    *,
    address_space: int,
    cpu_seconds: int,
    file_size: int,
    runas: Identity | None = None,
    debug: bool = False,
    userns: bool = True,
    pid_namespace: bool = False,
) -> Reader:
    """Confine this (freshly forked, single-threaded) process; returns in the reader only.

    `pid_namespace`: this process is already PID 1 of a new PID namespace (fork_in_pid_namespace)."""
    parent = os.getppid()
    os.setpgid(0, 0)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with EFBIG, reported
    _stdio(debug)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    from pvboot.sandbox import native

    reader = Reader(image)
    root = os.geteuid() == 0
    reader.open()  # with the caller's access (root's): the admin or the toolstack named this path
    drop_to = runas if root else None
    base = native.CLONE_NEWNS | native.CLONE_NEWIPC | native.CLONE_NEWNET
    if not pid_namespace:
        base |= native.CLONE_NEWPID
    tries = [base] if drop_to is not None else ([base | native.CLONE_NEWUSER] if userns else []) + [base]
    for flags in tries:
        if flags == base and not root:
            break  # without CAP_SYS_ADMIN only a user namespace can carry the others
        try:
            native.unshare(flags)
        except OSError as exc:
            log.debug("unshare(%#x) refused: %s", flags, exc.strerror)
            continue
        reader.namespaces = _names(flags)
        break
    forked_pid_namespace = "pid" in reader.namespaces
    if pid_namespace:
        reader.namespaces.append("pid")
    if root and "user" not in reader.namespaces and drop_to is None:
        drop_to = fallback_identity()  # no user namespace: root must not read guest bytes as root
    if drop_to is not None:
        if not _readable_by(_python_trees(), drop_to):
            preimport()  # the uid could not import lazily what the readers need
        os.setgroups([])
        os.setresgid(drop_to.gid, drop_to.gid, drop_to.gid)
        os.setresuid(drop_to.uid, drop_to.uid, drop_to.uid)
        reader.uid_changed = True
    native.prctl(native.PR_SET_NO_NEW_PRIVS, 1)
    native.prctl(native.PR_SET_DUMPABLE, 0)
    if forked_pid_namespace:
        _fork_reader(parent)  # the reader's parent (the keeper) is outside its namespace
    native.prctl(native.PR_SET_PDEATHSIG, signal.SIGKILL)  # (after the last uid change: that clears it)
    _close_fds({0, 1, 2, channel_fd, *keep_fds, *reader.fds()})
    if _orphaned(parent, channel_fd, in_pid_namespace=forked_pid_namespace or pid_namespace):
        os._exit(EXIT_ORPHANED)  # the parent died before PR_SET_PDEATHSIG took effect
    _restrict(reader, address_space, cpu_seconds, file_size)
    return reader


EXIT_ORPHANED = 71


def _orphaned(parent: int, channel_fd: int, *, in_pid_namespace: bool) -> bool:
    """Whether pvboot died before this process armed PR_SET_PDEATHSIG (which then never fires).

    Outside a new PID namespace getppid() tells. Inside one it reads 0 whoever the parent is, so the
    channel tells instead: a dying process closes its files before its children get the death signal,
    so a parent that died too early has already hung up its end of the channel."""
    if not in_pid_namespace and os.getppid() != parent:
        return True
    poller = select.poll()
    poller.register(channel_fd, select.POLLRDHUP)
    return any(events & (select.POLLRDHUP | select.POLLHUP) for _, events in poller.poll(0))


def _names(flags: int) -> list[str]:
    from pvboot.sandbox import native

    table = {
        native.CLONE_NEWUSER: "user",
        native.CLONE_NEWNS: "mount",
        native.CLONE_NEWIPC: "ipc",
        native.CLONE_NEWNET: "net",
        native.CLONE_NEWPID: "pid",
    }
    return [name for bit, name in table.items() if flags & bit]


def _stdio(debug: bool) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1) if debug else (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)


def _fork_reader(parent: int) -> None:
    """Fork the reader (PID 1 of the new PID namespace); this process becomes its keeper and never
    returns: it closes everything, waits, and leaves the way the reader left (or dies with `parent`)."""
    from pvboot.sandbox import native

    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        return
    with contextlib.suppress(OSError):
        os.closerange(3, _fd_ceiling())
    native.prctl(native.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os.kill(pid, signal.SIGKILL)
    status = 0
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70)


def _fd_ceiling() -> int:
    return min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1 << 20)


def _close_fds(keep: set[int]) -> None:
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, _fd_ceiling()))
    for fd in fds:
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _rlimits(address_space: int, cpu_seconds: int, file_size: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # not enforced for uid 0: seccomp kills clone
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))


def _restrict(reader: Reader, address_space: int, cpu_seconds: int, file_size: int) -> None:
    """rlimits, Landlock, seccomp. The filter is built (libseccomp loaded, rules added) before the
    address-space limit applies, so that only absence, never a lack of memory, can leave it out."""
    from pvboot.sandbox import landlock, seccomp

    trees: list[str | int] = [*_python_trees(), *SYSTEM_LIBRARIES]
    if reader.dir_fd is not None:
        trees.append(reader.dir_fd)
    has_seccomp = seccomp.kernel_has_filters()
    try:
        syscall_filter: seccomp.Filter | None = seccomp.build(os.getpid())
    except seccomp.SeccompUnavailable as exc:  # only a missing library; any other failure is fatal
        log.debug("seccomp unavailable: %s", exc)
        syscall_filter = None
    _rlimits(address_space, cpu_seconds, file_size)
    reader.landlock_abi = landlock.restrict(trees)  # 0: no Landlock here; any other failure is fatal
    if not reader.landlock_abi:
        log.debug("no Landlock in this kernel")
    if syscall_filter is not None:
        try:
            syscall_filter.load(has_seccomp)
            reader.seccomp = True
        except seccomp.SeccompUnavailable as exc:  # only a kernel without seccomp; else fatal
            log.debug("seccomp unavailable: %s", exc)
    if not reader.landlock_abi and not reader.seccomp:
        log.warning("neither seccomp nor Landlock is available: the disk reader is confined only by "
                    "namespaces, uid and rlimits")  # fmt: skip


def _python_trees() -> list[str]:
    """Where Python code is imported from: the standard library and every sys.path entry that holds a
    module (so the working directory, which `python -m` puts on sys.path, counts only when it does)."""
    import pvboot

    stdlib = os.path.dirname(os.__file__)
    files = [f for m in list(sys.modules.values()) if isinstance(f := getattr(m, "__file__", None), str)]
    dirs = {os.path.dirname(f) + "/" for f in files}
    trees = {stdlib, os.path.dirname(os.path.dirname(os.path.abspath(pvboot.__file__)))}  # editable installs
    for entry in sys.path:
        if not entry or not os.path.isabs(entry) or entry == "/":
            continue
        prefix = entry.rstrip("/") + "/"
        if "-packages" in entry or any(d.startswith(prefix) for d in dirs) or os.path.isfile(entry):
            trees.add(entry)
    return sorted(trees)


def _readable_by(trees: list[str], who: Identity) -> bool:
    """Whether `who` may walk to and list every tree (mode bits only; ACLs are not consulted)."""
    for tree in trees:
        path = os.path.abspath(tree)
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            component = "/".join(parts[:i]) or "/"
            try:
                st = os.stat(component)
            except OSError:
                break
            if st.st_uid == who.uid:
                need = stat.S_IXUSR | (stat.S_IRUSR if i == len(parts) else 0)
                ok = st.st_mode & need == need
            elif st.st_gid == who.gid:
                need = stat.S_IXGRP | (stat.S_IRGRP if i == len(parts) else 0)
                ok = st.st_mode & need == need
            else:
                need = stat.S_IXOTH | (stat.S_IROTH if i == len(parts) else 0)
                ok = st.st_mode & need == need
            if stat.S_ISDIR(st.st_mode) and not ok:
                return False
    return True


# Imported at function level by the readers; preimport() loads them while it still can.
LAZY_MODULES = (
    "dissect.hypervisor.disk.qcow2",
    "dissect.hypervisor.disk.c_qcow2",
    "dissect.volume.lvm.c_lvm2",
    "dissect.util.compression.lz4",
    "dissect.util.compression.lzo",
    "backports.zstd",
    "pycdlib",
    "encodings.utf_16",
    "encodings.utf_16_le",
    "encodings.utf_16_be",
    "encodings.utf_8_sig",
    "encodings.latin_1",
    "encodings.ascii",
    "encodings.cp437",
    "encodings.idna",
    "_strptime",
    "unicodedata",
)


def preimport() -> None:
    """Import every module a reader may need, for a uid that cannot read the Python installation
    (≈0.3 s; only then)."""
    import importlib
    import pkgutil

    import pvboot

    names = [m.name for m in pkgutil.walk_packages(pvboot.__path__, "pvboot.")]
    for name in [*names, *LAZY_MODULES]:
        if name.endswith("__main__") or name.startswith("pvboot.tui"):
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # an optional dependency: the reader reports it if it needs it
            log.debug("preimport %s: %s", name, exc)
