"""The child's system-call filter, through a small ctypes binding to libseccomp.so.2.

Why not a PyPI binding: `pyseccomp` (the only pure-Python one) finds the library with
`ctypes.util.find_library`, which runs `/sbin/ldconfig -p` in two subprocesses at import time (25 ms,
and a fork+exec from inside the sandbox set-up); Debian's `python3-seccomp` exists only for the system
Python. libseccomp itself is what every container runtime uses: it knows each architecture's syscall
numbers and guards the filter against the other ABIs of the machine (x32 and i386 calls on x86_64 are
killed), which a hand-written BPF program would have to get right by itself. Loading it by soname costs
nothing measurable.

The allow-list is what a Python process needs to read already-open files (the image, its backing files),
write already-open files (the output files, the channel), manage its memory, import modules read-only,
and exit. See docs/security.md for the list and the reasons.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterable

ALLOW = 0x7FFF0000
KILL_PROCESS = 0x80000000
_ACT_ERRNO = 0x00050000

_CMP_EQ = 4
_CMP_MASKED_EQ = 7
_ATTR_ACT_BADARCH = 2
_ATTR_CTL_NNP = 3
_SECCOMP_SET_MODE_FILTER = 1
# The same numbers on every architecture; added by number where libseccomp predates their names.
LANDLOCK_SYSCALLS = (
    ("landlock_create_ruleset", 444),
    ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446),
)


def errno_action(value: int) -> int:
    return _ACT_ERRNO | (value & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class SeccompUnavailable(OSError):
    """No libseccomp on this host, or a kernel without seccomp filters."""


_lib: ctypes.CDLL | None = None


def _library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as exc:
            if "No such file" in str(exc) or "cannot open shared object" in str(exc):
                raise SeccompUnavailable(errno.ENOSYS, f"libseccomp.so.2 not found: {exc}") from None
            raise  # present but not loadable (out of memory...): fail closed
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_release.restype = None
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        lib.seccomp_load.restype = ctypes.c_int
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_attr_set.restype = ctypes.c_int
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
        lib.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(_ArgCmp),
        ]
        lib.seccomp_rule_add_array.restype = ctypes.c_int
        _lib = lib
    return _lib


Cond = tuple[int, int, int]  # (argument index, mask, value): allowed when args[i] & mask == value


class Filter:
    """pvboot's own narrow interface: a default action, rules by syscall name, load."""

    def __init__(self, default_action: int, set_no_new_privs: bool = True) -> None:
        self.lib = _library()
        ctx = self.lib.seccomp_init(default_action)
        if not ctx:
            raise SeccompUnavailable(errno.EINVAL, "seccomp_init failed")
        self.ctx = ctx
        self._check(self.lib.seccomp_attr_set(ctx, _ATTR_ACT_BADARCH, KILL_PROCESS), "seccomp_attr_set")
        if not set_no_new_privs:  # (a second filter: prctl is refused by then, and the flag is set)
            self._check(self.lib.seccomp_attr_set(ctx, _ATTR_CTL_NNP, 0), "seccomp_attr_set")

    @staticmethod
    def _check(rc: int, what: str) -> None:
        if rc < 0:
            raise OSError(-rc, f"{what}: {os.strerror(-rc)}")

    def add(self, action: int, name: str | int, *conds: Cond) -> bool:
        """One rule, by name or number; False when this architecture has no such syscall (e.g. `open`
        on arm64)."""
        number = name if isinstance(name, int) else self.lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            return False
        args = (_ArgCmp * max(1, len(conds)))()
        for i, (index, mask, value) in enumerate(conds):
            if mask == 0xFFFFFFFFFFFFFFFF:
                args[i].arg, args[i].op, args[i].datum_a, args[i].datum_b = index, _CMP_EQ, value, 0
            else:
                args[i].arg, args[i].op, args[i].datum_a, args[i].datum_b = index, _CMP_MASKED_EQ, mask, value
        self._check(self.lib.seccomp_rule_add_array(self.ctx, action, number, len(conds), args), str(name))
        return True

    def add_all(self, action: int, names: Iterable[str]) -> None:
        for name in names:
            self.add(action, name)

    def load(self, kernel_has_filters: bool = True) -> None:
        try:
            rc = self.lib.seccomp_load(self.ctx)
            if rc in (-errno.EINVAL, -errno.ENOSYS) and not kernel_has_filters:
                raise SeccompUnavailable(-rc, "this kernel has no seccomp filters")
            self._check(rc, "seccomp_load")
        finally:
            self.lib.seccomp_release(self.ctx)
            self.ctx = None


EQ = 0xFFFFFFFFFFFFFFFF

# Reading and writing open fds, file metadata, read-only path look-ups (imports), memory, time,
# signals to oneself, identity queries, the channel (a connected socketpair), exit.
ALLOWED_SYSCALLS = (
    "read", "pread64", "readv", "preadv", "preadv2",
    "write", "pwrite64", "writev", "pwritev", "pwritev2",
    "lseek", "close", "close_range", "dup", "dup2", "dup3",
    "fstat", "newfstatat", "stat", "lstat", "statx", "fstatfs",
    "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents64", "getcwd",
    "copy_file_range", "sendfile", "fadvise64", "readahead", "ftruncate", "fallocate", "fsync", "fdatasync",
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
    "futex", "set_robust_list", "rseq", "sched_yield", "sched_getaffinity",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep",
    "getrandom", "uname",
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
    "getgroups", "getpgrp", "getpgid", "getsid", "getrusage", "times",
    "sendto", "recvfrom", "select", "pselect6", "poll", "ppoll",
    "exit", "exit_group",
)  # fmt: skip

# A reader that calls one of these has been subverted: end it at once.
KILLED_SYSCALLS = (
    "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendmsg", "recvmsg",
    "clone", "fork", "vfork", "unshare", "setns",
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "fsconfig", "move_mount", "open_tree",
    "mount_setattr", "open_by_handle_at", "name_to_handle_at",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid",
    "setgroups", "capset", "personality",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module",
    "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "quotactl",
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "iopl", "ioperm",
)  # fmt: skip

# ioctl requests Python makes on its own fds: isatty (TCGETS), terminal size, (non)blocking, close-on-exec.
IOCTLS = (0x5401, 0x5413, 0x5421, 0x5450, 0x5451)
# fcntl commands: F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC.
FCNTLS = (0, 1, 2, 3, 4, 1030)


def write_flags() -> int:
    """Open flags that would write, create or truncate: such opens fail with EACCES."""
    tmpfile = getattr(os, "O_TMPFILE", 0) & ~os.O_DIRECTORY
    return os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | tmpfile


def build(self_pid: int, *, landlock: bool = False, stack: bool = False) -> Filter:
    """The reader's filter; `self_pid` is its own pid as it sees it (1 inside a PID namespace).
    `landlock`: the Landlock calls are allowed (so that a second layer can narrow the first; they can
    only ever take access away); `stack`: so is loading one more filter (refuse_opens)."""
    f = Filter(errno_action(errno.EPERM))
    f.add_all(ALLOW, ALLOWED_SYSCALLS)
    f.add_all(KILL_PROCESS, KILLED_SYSCALLS)
    f.add(errno_action(errno.ENOSYS), "clone3")  # arguments are a struct: refuse so libc falls back
    f.add(errno_action(errno.ENOSYS), "openat2")
    f.add(errno_action(errno.EACCES), "creat")
    wflags = write_flags()
    for name, flags_arg in (("openat", 2), ("open", 1)):
        if f.add(ALLOW, name, (flags_arg, wflags, 0)):
            for bit in _bits(wflags):
                f.add(errno_action(errno.EACCES), name, (flags_arg, bit, bit))
    for request in IOCTLS:
        f.add(ALLOW, "ioctl", (1, EQ, request))
    for command in FCNTLS:
        f.add(ALLOW, "fcntl", (1, EQ, command))
    f.add(ALLOW, "prlimit64", (0, EQ, 0), (2, EQ, 0))  # read one's own limits, never set them
    f.add(ALLOW, "getrlimit")
    f.add(ALLOW, "kill", (0, EQ, self_pid))  # signals to oneself only (abort(), raise())
    f.add(ALLOW, "tgkill", (0, EQ, self_pid))
    for name, number in LANDLOCK_SYSCALLS if landlock else ():
        f.add(ALLOW, name) or f.add(ALLOW, number)
    if stack:  # seccomp(SECCOMP_SET_MODE_FILTER, 0, ...) only: a further filter can only narrow
        f.add(ALLOW, "seccomp", (0, EQ, _SECCOMP_SET_MODE_FILTER), (1, EQ, 0))
    return f


def refuse_opens() -> Filter:
    """A second filter, for a kernel without Landlock: every open fails with EACCES (loaded once the
    reader has opened all it may; everything it imports was imported before)."""
    f = Filter(ALLOW, set_no_new_privs=False)
    for name in ("openat", "open"):
        f.add(errno_action(errno.EACCES), name)
    return f


def kernel_has_filters() -> bool:
    """Whether this kernel has seccomp (its /proc status has a Seccomp line). Ask before Landlock hides
    /proc."""
    try:
        with open("/proc/self/status") as fh:
            return "\nSeccomp:" in fh.read()
    except OSError:
        return True


def _bits(mask: int) -> list[int]:
    return [1 << i for i in range(mask.bit_length()) if mask >> i & 1]


def install(self_pid: int, kernel_has_filters: bool = True) -> None:
    """Build and load the filter (needs PR_SET_NO_NEW_PRIVS already set). Raises SeccompUnavailable
    only when libseccomp is not installed or the kernel has no seccomp; any other failure is an error."""
    build(self_pid).load(kernel_has_filters)
