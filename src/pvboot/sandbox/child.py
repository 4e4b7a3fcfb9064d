"""Fork a confined child that serves requests over a Channel, and stop it for sure.

The child confines itself (sandbox/confine.py) before it reads one guest byte: namespaces or an
unprivileged uid, no new privileges, every fd closed but the image, the output files and the channel,
rlimits, Landlock and seccomp. The parent keeps a wall-clock deadline per request and kills the child's
whole process group when it passes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
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
from pvboot.sandbox.confine import Identity, enter, fork_in_pid_namespace

log = logging.getLogger(__name__)

EXIT_INTERNAL = 70


@dataclass
class Confinement:
    """What the child may use."""

    address_space: int
    cpu_seconds: int
    file_size: int
    keep_fds: list[int] = field(default_factory=list)
    runas: Identity | None = None  # resolved in the parent: sandbox.confine.resolve_runas
    debug: bool = False
    image: str | None = None  # opened by the child before it confines itself further
    userns: bool = True  # False: behave as on a kernel without user namespaces (tests)


def _serve_error(channel: Channel, message: str) -> None:
    """Answer every request with the reason the child could not start (e.g. the image did not open)."""
    while True:
        try:
            channel.recv()
        except ChannelClosed:
            return
        channel.send({"type": "error", "message": message})


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
        pid, pid_namespace = fork_in_pid_namespace()
        if pid == 0:  # the child
            code = EXIT_INTERNAL
            try:
                parent_end.close()
                reader = enter(
                    conf.image,
                    child_end.fileno(),
                    conf.keep_fds,
                    address_space=conf.address_space,
                    cpu_seconds=conf.cpu_seconds,
                    file_size=conf.file_size,
                    runas=conf.runas,
                    debug=conf.debug,
                    userns=conf.userns,
                    pid_namespace=pid_namespace,
                )
                warnings.simplefilter("ignore")
                sys.setrecursionlimit(4000)
                from pvboot.disk import container

                container.host_opener = reader.open_host
                log.debug("confined: %s", reader)
                if reader.error is not None:
                    _serve_error(child_end, reader.error)
                else:
                    serve(child_end)
                code = 0
            except BaseException:
                if conf.debug:
                    traceback.print_exc()
            finally:
                os._exit(code)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also here: killpg must find the group even before the child runs
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
        if grace > 0:
            _wait_exit(self.pid, grace)
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid:
            return _status_text(status)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        return _status_text(status)


def _wait_exit(pid: int, timeout: float) -> None:
    """Return when child `pid` has exited (without reaping it) or after `timeout` seconds."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3: poll
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
            time.sleep(0.005)
        return
    try:
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        reason = {
            signal.SIGXCPU: "CPU time limit",
            signal.SIGKILL: "killed",
            signal.SIGSEGV: "crashed",
            signal.SIGSYS: "a system call the sandbox forbids",
        }
        name = signal.Signals(sig)
        return f"signal {name.name}: {reason.get(name, 'terminated')}"
    return f"exit status {os.WEXITSTATUS(status)}"
