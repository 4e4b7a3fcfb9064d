"""Bounds on the root parent itself, which is not confined: its address space, and a wall clock on each
step it takes over guest data (rendering a listing, redacting a report, matching title rules).

The reader's replies are bounded before they are decoded (sandbox/channel.py) and the work done on them
is meant to be linear, so these are backstops: whatever slips past them ends as one `pvboot:` error
line, a MemoryError or LimitError, instead of a root process that grows or spins for minutes.
"""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Iterator
from types import FrameType

from pvboot.errors import LimitError


def cap_address_space(limit: int) -> None:
    """Lower the soft RLIMIT_AS to `limit` (never raise it). The hard limit stays, so that the forked
    reader can still set its own cap (Limits.child_address_space), which may be higher than this one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


class _Expired(BaseException):
    """Raised by the alarm inside the guarded block only; a BaseException, so no `except Exception`
    in the guarded code can swallow it."""


@contextlib.contextmanager
def wall_clock(seconds: float, what: str) -> Iterator[None]:
    """Run the block for at most `seconds` of wall time, else raise LimitError naming `what`.

    SIGALRM interrupts pure-Python loops and the regular-expression engine (which checks for signals), so
    a guest string that makes some step slow cannot keep the root parent busy. Not for blocks that wait
    on the child or write files: those have their own deadlines. Nesting is not supported."""
    if seconds <= 0:
        yield
        return

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise _Expired()

    previous = signal.signal(signal.SIGALRM, expire)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Expired:
        raise LimitError(f"{what} took longer than the limit of {seconds:g} s") from None
    finally:
        signal.signal(signal.SIGALRM, previous)
