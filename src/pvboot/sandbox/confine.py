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
   PID 1 of the namespace. The reader dies with its parent (PR_SET_PDEATHSIG), checks that it is the
   identity it meant to become (else it refuses every request: `identity_problem`) and continues:
7. every fd closed but the image (and its directory), the output files, the channel and stdio;
8. rlimits: address space, CPU seconds, file size, open files, no new processes, no locked memory;
9. Landlock: read-only access to the Python trees that are root-owned system directories (never /dev,
   the image's directory or anything holding them); no write anywhere. What could not be granted, and
   everything on a kernel without Landlock, was imported before the uid changed instead;
10. seccomp: the allow-list in seccomp.py (built before step 8); execve, socket, ptrace, clone and
    friends kill the process; opens for writing fail with EACCES;
11. so confined, the qcow2 backing chain (a callback, disk/container.py) is opened beside the image,
    the only time the image's directory is readable (a Landlock rule of step 9); then its handle is
    closed and a second Landlock layer without it (without Landlock: a second seccomp filter that
    refuses every open) leaves the reader its fds and the Python trees, nothing else.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pvboot.errors import UsageError

log = logging.getLogger(__name__)

NOBODY = 65534
USER_ENV = "PVBOOT_SANDBOX_USER"  # the user (name or uid) to drop to when it must and --runas is absent
MAX_ID = (1 << 32) - 2  # (uid_t)-1 is setresuid's "no change": a target of -1 would leave root as it was
IMAGE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK  # as disk/container.py opens it
MAX_OPEN_FILES = 64
NEVER_GRANTED = ("/dev", "/proc", "/sys")  # no Landlock rule may hold these (or lie inside them)

# Opens the qcow2 backing chain before confinement: (image path, image fd, directory fd) -> name -> fd,
# or the error opening that name gave (disk/container.py: open_backing_chain).
BackingOpener = Callable[[str, int, int], dict[str, int | OSError]]


@dataclass
class Identity:
    """Who the reader becomes when it changes uid."""

    uid: int
    gid: int


def _identity(uid: int, what: str, gid: int | None = None) -> Identity:
    """`uid` (and its primary group, else the same number, as pygrub) if neither is root's or -1."""
    if not 1 <= uid <= MAX_ID:
        raise UsageError(
            f"{what}: the disk reader's uid must be a number in 1..{MAX_ID}, not root's 0 nor (uid_t)-1 "
            "(which setresuid takes as 'no change')"
        )
    gid = _primary_gid(uid) if gid is None else gid
    if not 1 <= gid <= MAX_ID:
        raise UsageError(f"{what}: uid {uid} has group {gid} (root's or (gid_t)-1): refused")
    return Identity(uid, gid)


def resolve_runas(runas: int | None) -> Identity | None:
    """The identity `--runas=UID` names; refuses root, -1 and anything out of range.

    Runs in the parent: a name-service look-up is no business of the sandboxed child."""
    if runas is None:
        return None
    if 1 <= runas <= MAX_ID and os.geteuid() != 0 and runas != os.geteuid():
        raise UsageError(f"--runas={runas} needs pvboot to be started as root")
    return _identity(runas, f"--runas={runas}")


def fallback_identity() -> Identity:
    """The uid to drop to when user namespaces are not available: $PVBOOT_SANDBOX_USER (a uid in
    1..2^32-2, or the name of one), else nobody. Anything else is refused, never run as root."""
    import pwd

    wanted = os.environ.get(USER_ENV, "").strip()
    what = f"{USER_ENV}={wanted}"
    if wanted.isascii() and wanted.isdigit():
        return _identity(int(wanted), what)
    try:
        entry = pwd.getpwnam(wanted or "nobody")
    except KeyError:
        if wanted:
            raise UsageError(f"{what}: no such user") from None
        return Identity(NOBODY, NOBODY)
    return _identity(entry.pw_uid, what if wanted else "the user nobody", entry.pw_gid)


def _primary_gid(uid: int) -> int:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid


@dataclass
class Reader:
    """What the confined reader holds: the image and its qcow2 backing files, opened before confinement
    (or why they could not be), and how it was confined."""

    image: str | None
    image_fd: int | None = None
    dir_fd: int | None = None  # closed once the backing chain is open, but for --isconfig
    backing: dict[str, int | OSError] = field(default_factory=dict)  # file name beside the image -> fd
    error: str | None = None
    namespaces: list[str] = field(default_factory=list)
    uid_changed: bool = False
    trees: list[str] = field(default_factory=list)  # what Landlock lets it read
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
        opened = [fd for fd in self.backing.values() if isinstance(fd, int)]
        return [fd for fd in (self.image_fd, self.dir_fd, *opened) if fd is not None]

    def refuse(self, why: str) -> None:
        """Give up every host file: the reader will answer each request with `why`."""
        for fd in self.fds():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.image_fd = self.dir_fd = None
        self.backing = {}
        self.error = why

    def open_host(self, path: str, flags: int) -> int:
        """disk/container.py's way to open host files in the reader: only what was opened before
        confinement, the image and the qcow2 backing files beside it (or the error one gave)."""
        if self.image is not None and self.image_fd is not None and path == self.image:
            return os.dup(self.image_fd)
        image_dir = os.path.dirname(os.path.abspath(self.image or ""))
        if self.image is not None and os.path.dirname(os.path.abspath(path)) == image_dir:
            found = self.backing.get(os.path.basename(path))
            if isinstance(found, int):
                return os.dup(found)
            if found is not None:
                raise OSError(found.errno, found.strerror)
        raise OSError(errno.EACCES, "not opened for the reader (only files beside an image outside /dev are)")


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
    fallback: Identity | None = None,
    debug: bool = False,
    userns: bool = True,
    pid_namespace: bool = False,
    backing: BackingOpener | None = None,
    image_dir: bool = False,
    modules: Sequence[str] | None = None,
) -> Reader:
    """Confine this (freshly forked, single-threaded) process; returns in the reader only.

    `pid_namespace`: this process is already PID 1 of a new PID namespace (fork_in_pid_namespace).
    `fallback`: who to become without a user namespace (None: fallback_identity(), resolved here).
    `backing`: opens the image's qcow2 backing chain, as the reader, once confined (step 11).
    `image_dir`: the image's directory stays readable (--isconfig: a host config file and its friends).
    `modules`: import exactly these and read no file at all afterwards (the kernel judge); by default
    the root-owned Python trees stay readable for lazy imports."""
    parent = os.getppid()
    os.setpgid(0, 0)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with EFBIG, reported
    _stdio(debug)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    from pvboot.sandbox import landlock, native

    reader = Reader(image)
    root = os.geteuid() == 0
    reader.open()  # with the caller's access (root's): the admin or the toolstack named this path
    outer_user_ns = _user_namespace()
    abi = landlock.abi_version()
    complete = True
    if modules is None:  # (owners read before a user namespace shows them all as the overflow uid)
        reader.trees, complete = _grantable(_python_trees(), image)
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
        drop_to = fallback or fallback_identity()  # no user namespace: root must not read guest bytes as root
    if modules is not None:
        _import(modules)
    else:
        if not abi or not complete or (drop_to is not None and not _readable_by(reader.trees, drop_to)):
            preimport()  # what it could not import lazily afterwards (≈0.3 s; only then)
        _import(NATIVE_MODULES)
    if drop_to is not None:
        os.setgroups([])
        os.setresgid(drop_to.gid, drop_to.gid, drop_to.gid)
        os.setresuid(drop_to.uid, drop_to.uid, drop_to.uid)
        reader.uid_changed = True
    native.prctl(native.PR_SET_NO_NEW_PRIVS, 1)
    native.prctl(native.PR_SET_DUMPABLE, 0)
    if forked_pid_namespace:
        _fork_reader(parent)  # the reader's parent (the keeper) is outside its namespace
    native.prctl(native.PR_SET_PDEATHSIG, signal.SIGKILL)  # (after the last uid change: that clears it)
    problem = identity_problem(drop_to, outer_user_ns if "user" in reader.namespaces else None)
    if problem is not None:
        log.debug("refusing to read: %s", problem)
        reader.refuse(f"the process reading the guest disk is not the unprivileged identity it must be "
                      f"({problem}): it reads nothing")  # fmt: skip
    _close_fds({0, 1, 2, channel_fd, *keep_fds, *reader.fds()})
    if _orphaned(parent, channel_fd, in_pid_namespace=forked_pid_namespace or pid_namespace):
        os._exit(EXIT_ORPHANED)  # the parent died before PR_SET_PDEATHSIG took effect
    _restrict(reader, abi, backing, image_dir, address_space, cpu_seconds, file_size)
    return reader


def identity_problem(target: Identity | None, outer_user_ns: int | None) -> str | None:
    """Why this process is not the unprivileged identity it meant to become; None when it is.

    Read from getresuid/getresgid and /proc/self/status (which adds the fs ids, the groups, the
    capability sets and no_new_privs). With a uid change (`target`: --runas, the fallback): real,
    effective, saved and fs uid and gid are the target's, neither is 0, no supplementary group, and
    CapInh, CapPrm, CapEff and CapAmb are empty. In a user namespace (`outer_user_ns`: the one it left):
    it is a new one with nothing written to uid_map or gid_map, so its (full) capabilities there reach
    nothing outside it and no id it holds maps back to anyone. Neither (an unprivileged caller without
    namespaces): no uid 0 and no capability."""
    try:
        with open("/proc/self/status") as fh:
            status = dict(line.split(":", 1) for line in fh.read().splitlines() if ":" in line)
        uids = tuple(int(v) for v in status["Uid"].split())
        gids = tuple(int(v) for v in status["Gid"].split())
        caps = {name: int(status[name], 16) for name in ("CapInh", "CapPrm", "CapEff", "CapAmb")}
    except (OSError, KeyError, ValueError) as exc:
        return f"cannot read its credentials: {exc}"
    if uids[:3] != os.getresuid() or gids[:3] != os.getresgid():
        return f"/proc/self/status says uids {uids}, gids {gids}; getresuid/getresgid disagree"
    if status.get("NoNewPrivs", "").strip() != "1":
        return "no_new_privs is not set"
    if outer_user_ns is not None:
        if _user_namespace() in (None, outer_user_ns):
            return "it is not in a user namespace of its own"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/self/{name}") as fh:
                if fh.read().strip():
                    return f"ids are mapped into its user namespace ({name})"
        return None
    if 0 in uids or 0 in gids:
        return f"uids {uids}, gids {gids} include root's"
    if target is not None:
        if set(uids) != {target.uid} or set(gids) != {target.gid}:
            return f"uids {uids}, gids {gids} are not all {target.uid}:{target.gid}"
        if status.get("Groups", "").split():
            return f"it keeps the groups {status['Groups'].strip()}"
    held = [f"{name} {value:#x}" for name, value in caps.items() if value]
    return f"it holds capabilities: {', '.join(held)}" if held else None


def _user_namespace() -> int | None:
    """The inode of this process's user namespace (None without /proc)."""
    try:
        return os.stat("/proc/self/ns/user").st_ino
    except OSError:
        return None


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


def _restrict(
    reader: Reader,
    abi: int,
    backing: BackingOpener | None,
    image_dir: bool,
    address_space: int,
    cpu_seconds: int,
    file_size: int,
) -> None:
    """rlimits, Landlock, seccomp; then, so confined, the qcow2 backing chain is opened through the
    image's directory, and a second Landlock layer without that directory (without Landlock: a second
    filter that refuses every open) takes it away for good. The filters are built (libseccomp loaded,
    rules added) before the address-space limit applies, so that only absence, never a lack of memory,
    can leave them out."""
    from pvboot.sandbox import landlock, seccomp

    walk = backing is not None and reader.image_fd is not None and _grantable_dir(reader.image)
    directory = reader.dir_fd if walk or image_dir else None
    if reader.dir_fd is not None and directory is None:
        os.close(reader.dir_fd)
        reader.dir_fd = None
    has_seccomp = seccomp.kernel_has_filters()
    refusal: seccomp.Filter | None = None
    try:
        syscall_filter: seccomp.Filter | None = seccomp.build(
            os.getpid(), landlock=bool(abi), stack=not abi and not image_dir
        )
        refusal = None if abi or image_dir else seccomp.refuse_opens()
    except seccomp.SeccompUnavailable as exc:  # only a missing library; any other failure is fatal
        log.debug("seccomp unavailable: %s", exc)
        syscall_filter = None
    _rlimits(address_space, cpu_seconds, file_size)
    rules: list[str | int] = [*reader.trees, *([directory] if directory is not None else [])]
    reader.landlock_abi = landlock.restrict(rules, abi) if abi else 0  # any failure is fatal
    if not reader.landlock_abi:
        log.debug("no Landlock in this kernel")
    if syscall_filter is not None:
        try:
            syscall_filter.load(has_seccomp)
            reader.seccomp = True
        except seccomp.SeccompUnavailable as exc:  # only a kernel without seccomp; else fatal
            log.debug("seccomp unavailable: %s", exc)
    if walk and reader.image is not None and reader.image_fd is not None and directory is not None:
        assert backing is not None
        reader.backing = backing(reader.image, reader.image_fd, directory)  # with the reader's access
    if directory is not None and not image_dir:
        os.close(directory)
        reader.dir_fd = None
        if reader.landlock_abi:
            landlock.restrict(reader.trees, abi)  # the second layer: the first without the directory
    if refusal is not None and reader.seccomp:
        refusal.load(has_seccomp)
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


def _within(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def _image_dirs(image: str | None) -> list[str]:
    """The image's directories, resolved: the one its directory handle opens (Reader.open) and the one
    that holds the file itself (when the image is a symlink)."""
    if image is None:
        return []
    return sorted(
        {os.path.realpath(os.path.dirname(os.path.abspath(image))), os.path.dirname(os.path.realpath(image))}
    )


def _grantable_dir(image: str | None) -> bool:
    """Whether the image's directory may be readable while the backing chain is opened: not /dev,
    /proc, /sys, anything inside them or holding them ("/")."""
    dirs = _image_dirs(image)
    return bool(dirs) and not any(_within(d, h) or _within(h, d) for d in dirs for h in NEVER_GRANTED)


def _grantable(trees: list[str], image: str | None) -> tuple[list[str], bool]:
    """The trees Landlock may open to the reader, and whether that is all of them: each must be owned
    by root, writable by no one else, and neither hold nor lie inside the image's directory, /dev,
    /proc or /sys. (A Python installation elsewhere is imported before confinement instead.)"""
    held = [*NEVER_GRANTED, *_image_dirs(image)]
    granted, complete = [], True
    for tree in trees:
        real = os.path.realpath(tree)
        try:
            st = os.stat(real)
        except OSError:
            continue  # nothing to import from there
        if st.st_uid != 0 or st.st_mode & 0o022 or any(_within(h, real) or _within(real, h) for h in held):
            log.debug("not readable in the sandbox: %s", real)
            complete = False
        else:
            granted.append(real)
    return granted, complete


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
# Extension modules the readers import whose shared libraries lie outside the Python trees (dissect's
# Rust codecs and crc32c need libgcc_s): imported before confinement, since Landlock grants no system
# library directory. (Without it dissect would fall back, silently, to its pure-Python versions.)
NATIVE_MODULES = ("dissect.util._native",)


def preimport() -> None:
    """Import every module a reader may need, for a uid that cannot read the Python installation or a
    sandbox that cannot read it (≈0.3 s; only then)."""
    import pvboot

    try:
        import pkgutil

        names = [m.name for m in pkgutil.walk_packages(pvboot.__path__, "pvboot.")]
    except Exception as exc:  # a caller that cannot read its own Python: nothing more can be imported
        log.debug("preimport: %s", exc)
        return
    _import([n for n in names if not n.endswith("__main__") and not n.startswith("pvboot.tui")])
    _import(LAZY_MODULES)


def _import(names: Sequence[str]) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # an optional dependency: the reader reports it if it needs it
            log.debug("preimport %s: %s", name, exc)
