"""Fork a confined child that serves requests over a Channel, and stop it for sure.

Confinement here: own process group (so the whole tree can be killed), rlimits on address space, CPU,
file size, open files and core dumps, stdin/stdout on /dev/null, every other fd closed but the channel and
the output files, and the optional switch to an unprivileged uid before any guest byte is read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pvboot.errors import GuestDataError, LimitError, PvbootError
from pvboot.sandbox.channel import Channel, ChannelClosed, pair

log = logging.getLogger(__name__)

EXIT_INTERNAL = 70


@dataclass
class Confinement:
    """What the child may use."""

    address_space: int
    cpu_seconds: int
    file_size: int
    keep_fds: list[int] = field(default_factory=list)
    runas: int | None = None
    debug: bool = False


def _confine(conf: Confinement, channel_fd: int) -> None:
    """Runs in the child before it touches the guest image."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with EFBIG, reported as an error
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    keep = {0, 1, 2, channel_fd, *conf.keep_fds}
    os.close(devnull) if devnull not in keep else None
    for fd in _open_fds():
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (conf.address_space, conf.address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (conf.cpu_seconds, conf.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (conf.file_size, conf.file_size))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    if conf.runas is not None:
        os.setgroups([])
        os.setresgid(conf.runas, conf.runas, conf.runas)
        os.setresuid(conf.runas, conf.runas, conf.runas)
    warnings.simplefilter("ignore")
    sys.setrecursionlimit(4000)


def _open_fds() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 1024))


def describe_failure(exc: BaseException, address_space: int) -> str:
    """One line for an exception raised while handling guest data in the child."""
    if isinstance(exc, PvbootError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"guest data needs more than the memory limit of {address_space >> 20} MiB"
    if isinstance(exc, RecursionError):
        return "guest data nests too deeply"
    return f"internal error while reading the guest disk: {type(exc).__name__}: {exc}"


class Child:
    """A confined child process serving `serve(channel)`; the parent sends requests with `request`."""

    def __init__(self, serve: Callable[[Channel], None], conf: Confinement) -> None:
        self.conf = conf
        parent_end, child_end = pair()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child
            code = EXIT_INTERNAL
            try:
                parent_end.close()
                _confine(conf, child_end.fileno())
                serve(child_end)
                code = 0
            except BaseException:
                if conf.debug:
                    traceback.print_exc()
            finally:
                os._exit(code)
        child_end.close()
        self.pid = pid
        self.channel = parent_end
        self.done = False

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait at most `timeout` seconds for the reply; errors become PvbootError."""
        deadline = time.monotonic() + timeout
        try:
            self.channel.send(message)
            reply = self.channel.recv(deadline)
        except TimeoutError:
            self.stop(grace=0)
            raise LimitError(f"reading the guest disk took longer than the limit of {timeout:g} s") from None
        except (ChannelClosed, BrokenPipeError, ConnectionResetError):
            status = self.stop()
            raise GuestDataError(f"the process reading the guest disk died ({status})") from None
        if reply.get("type") == "error":
            raise GuestDataError(str(reply.get("message", "unknown error")))
        return reply

    def stop(self, grace: float = 0.5) -> str:
        """End the child (given `grace` seconds to leave by itself) and its process group."""
        if self.done:
            return "already stopped"
        self.done = True
        self.channel.close()
        for _ in range(int(grace * 100)):
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return _status_text(status)
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        return _status_text(status)


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        reason = {signal.SIGXCPU: "CPU time limit", signal.SIGKILL: "killed", signal.SIGSEGV: "crashed"}
        name = signal.Signals(sig)
        return f"signal {name.name}: {reason.get(name, 'terminated')}"
    return f"exit status {os.WEXITSTATUS(status)}"
