"""Landlock (Linux 5.13+), through its three system calls: read-only access to a few trees, nothing else.

Every filesystem right the running kernel knows is "handled" and only READ_FILE/READ_DIR are granted,
beneath the given directories (and READ_FILE on the given files): no writing, creating, removing,
renaming, truncating or executing anywhere. Files opened before the restriction (the image, the output
files) keep the access they were opened with. From ABI 4 on, TCP bind/connect are handled (and so denied);
from ABI 6 on, signals and abstract unix sockets are scoped to the sandbox itself.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterable

from pvboot.sandbox import native

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # the same on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_V1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
_FS_BY_ABI = {1: _FS_V1, 2: _FS_V1 | 1 << 13, 3: _FS_V1 | 3 << 13, 4: _FS_V1 | 3 << 13}  # REFER, TRUNCATE
_FS_V5 = _FS_V1 | 7 << 13  # + IOCTL_DEV
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | 1 << 14 | 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is not built in or is disabled."""
    try:
        version = ctypes.c_uint32(_CREATE_RULESET_VERSION)
        return native.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), version)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EOPNOTSUPP):
            return 0
        raise


def restrict(read_trees: Iterable[str | int], abi: int | None = None) -> int:
    """Allow only reading beneath `read_trees` (paths, or fds of directories/files), for good.

    Returns the ABI version applied, 0 when the kernel has no Landlock (then nothing is restricted).
    Paths that do not exist are skipped."""
    abi = abi_version() if abi is None else abi
    if abi <= 0:
        return 0
    attr = _RulesetAttr(_FS_BY_ABI.get(abi, _FS_V5), 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net, size = _NET_BIND_TCP | _NET_CONNECT_TCP, 16
    if abi >= 6:
        attr.scoped, size = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL, 24
    ruleset = native.syscall(
        _SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    try:
        for tree in read_trees:
            _allow_read(ruleset, tree)
        native.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return abi


def _allow_read(ruleset: int, tree: str | int) -> None:
    if isinstance(tree, int):
        fd, owned = tree, False
    else:
        try:
            fd, owned = os.open(tree, os.O_PATH | os.O_CLOEXEC), True
        except OSError:
            return
    try:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        rule = _PathBeneathAttr(READ_FILE | READ_DIR if is_dir else READ_FILE & _FILE_RIGHTS, fd)
        kind = ctypes.c_int(_RULE_PATH_BENEATH)
        native.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), kind, ctypes.byref(rule), ctypes.c_uint32(0))
    finally:
        if owned:
            os.close(fd)
