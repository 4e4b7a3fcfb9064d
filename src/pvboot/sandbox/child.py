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
from pvboot.limits import Limits, ReplyBounds
from pvboot.sandbox.channel import Channel, ChannelClosed, pair
from pvboot.sandbox.confine import BackingOpener, Identity, enter, fallback_identity, fork_in_pid_namespace

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
    backing: Limits | None = None  # declared qcow2: the reader opens its backing chain (confine.py step 11)
    image_dir: bool = False  # the image's directory stays readable (--isconfig)
    modules: tuple[str, ...] | None = None  # import these, then read no file at all (the kernel judge)
    lazy: bool = False  # fork at once, but confine (and cost CPU) only when the first request comes
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

    def __init__(
        self,
        serve: Callable[[Channel], None],
        conf: Confinement,
        reply_bounds: Callable[[object], ReplyBounds] | None = None,
    ) -> None:
        self.conf = conf
        # request op -> what the parent decodes of its reply (the default Limits' bounds when not given)
        self.reply_bounds = reply_bounds or Limits().reply_bounds
        # the uid without user namespaces, resolved (and refused when root or -1) here, in the parent
        fallback = fallback_identity() if os.geteuid() == 0 and conf.runas is None else None
        backing: BackingOpener | None = None
        if conf.backing is not None:
            from pvboot.disk.container import open_backing_chain

            chain_limits = conf.backing
            backing = lambda image, fd, dir_fd: open_backing_chain(image, fd, dir_fd, chain_limits)  # noqa: E731
        parent_end, child_end = pair()
        sys.stdout.flush()
        sys.stderr.flush()
        pid, pid_namespace = fork_in_pid_namespace()
        if pid == 0:  # the child
            code = EXIT_INTERNAL
            try:
                parent_end.close()
                if conf.lazy and not _first_request(child_end):
                    os._exit(0)
                reader = enter(
                    conf.image,
                    child_end.fileno(),
                    conf.keep_fds,
                    address_space=conf.address_space,
                    cpu_seconds=conf.cpu_seconds,
                    file_size=conf.file_size,
                    runas=conf.runas,
                    fallback=fallback,
                    debug=conf.debug,
                    userns=conf.userns,
                    pid_namespace=pid_namespace,
                    backing=backing,
                    image_dir=conf.image_dir,
                    modules=conf.modules,
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
                if conf.debug:  # (guest text in the message: cleaned as the debug trace is)
                    from pvboot.listing import clean_lines

                    sys.stderr.write(clean_lines(traceback.format_exc()))
            finally:
                os._exit(code)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also here: killpg must find the group even before the child runs
        child_end.close()
        self.pid = pid
        self.channel = parent_end
        self.done = False

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait at most `timeout` seconds for the reply; errors become PvbootError.
        A reply beyond `reply_bounds` or malformed stops the child: the stream is out of step after it."""
        if self.done:
            raise GuestDataError("the process reading the guest disk was stopped after an earlier error")
        deadline = time.monotonic() + timeout
        try:
            self.channel.send(message)
            reply = self.channel.recv(deadline, self.reply_bounds(message.get("op")))
        except TimeoutError:
            self.stop(grace=0)
            raise LimitError(f"reading the guest disk took longer than the limit of {timeout:g} s") from None
        except GuestDataError:
            self.stop(grace=0)
            raise
        except MemoryError:
            self.stop(grace=0)
            raise LimitError(
                "a reply from the process reading the guest disk needs more memory than pvboot's limit"
            ) from None
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


def _first_request(channel: Channel) -> bool:
    """Wait (unconfined, but reading nothing) until the parent sends a request (True) or hangs up."""
    select.select([channel], [], [])
    poller = select.poll()
    poller.register(channel.fileno(), select.POLLIN | select.POLLRDHUP)
    return not any(events & (select.POLLRDHUP | select.POLLHUP) for _, events in poller.poll(0))


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
