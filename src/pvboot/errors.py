"""The one error type pvboot reports: every failure becomes a single `pvboot: ` line on stderr."""

from __future__ import annotations


class PvbootError(Exception):
    """A failure to report to the admin as one line; the message names what was wrong and where."""

    exit_code = 1


class GuestDataError(PvbootError):
    """The guest's disk or config is malformed, hostile or unsupported."""


class NotFoundError(GuestDataError):
    """A file, volume or config the request needs is not on the guest disk."""


class LimitError(GuestDataError):
    """A bound (size, count, depth, time) was hit; the message names the limit."""


class UsageError(PvbootError):
    """The command line is wrong."""

    exit_code = 2


def is_codec_panic(exc: BaseException) -> bool:
    """Whether `exc` is a Rust panic from a native codec (dissect.util's lzo, lz4): pyo3 raises
    PanicException, a BaseException, so that `except Exception` cannot swallow it by accident; for
    pvboot it is corrupt guest data like any other decoding error."""
    return type(exc).__name__ == "PanicException"
