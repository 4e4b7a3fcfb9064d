"""The verdict on a compressed kernel, settled in the parent after the copy (kernel/verdicts.py says why).

With remembered verdicts on, the reader copies a kernel that would need decoding without judging it
(kernel/files.py: `kernel_deferred`). Then the parent, once the reader has stopped:

1. forks a judge, lazily (sandbox/child.py: it confines itself only when asked), before it reads the
   verdicts file, so that nothing of the file is in the judge's memory either;
2. hashes its own copy of the kernel (SHA-256) and looks that one digest up;
3. remembered: uses that verdict and kills the judge unasked;
4. else asks the judge, which holds only a read-only fd on that copy, imports its decoders, then
   confines itself so that it can open no file at all, and decodes and judges exactly those bytes; a
   positive verdict is stored under the parent's digest.

So a stored verdict is what pvboot's own check says of exactly the bytes it is stored for (a kernel
that subverts the decoder can make it say what it likes about itself, as on any boot of it), no reader
writes or reads an entry or learns whether there was one, and a kernel Xen cannot start is refused as
before, with the same message, only after its copy.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pvboot.errors import PvbootError
from pvboot.kernel.check import KernelInfo, check_kernel
from pvboot.kernel.files import KernelNotBootable, describe, refusal
from pvboot.kernel.verdicts import VerdictCache, fd_chunks, file_digest
from pvboot.limits import Limits
from pvboot.sandbox.channel import Channel, ChannelClosed
from pvboot.sandbox.child import Child, Confinement, describe_failure
from pvboot.sandbox.confine import Identity
from pvboot.sandbox.protocol import BootReply, judged_verdict, with_verdict

trace = logging.getLogger("pvboot.trace")

# What decoding imports lazily (kernel/decompress.py): the judge imports it before it confines itself.
DECODERS = (
    "compression.zstd",
    "backports.zstd",
    "dissect.util.compression.lz4",
    "dissect.util.compression.lzo",
)


def settle(
    reply: BootReply,
    kernel_fd: int,
    limits: Limits,
    *,
    runas: Identity | None = None,
    debug: bool = False,
) -> BootReply:
    """`reply`, whose kernel the reader copied unjudged, with its verdict (`kernel_info`, and the
    kernel's warnings): the one remembered for the SHA-256 of the copy at `kernel_fd`, else the judge's
    on that copy, remembered when positive. Raises KernelNotBootable for a kernel Xen could not start."""
    judge = _fork_judge(kernel_fd, limits, runas, debug)
    try:
        digest = file_digest(fd_chunks(kernel_fd))
        cache = VerdictCache.load()  # only now: the reader has stopped, the judge was forked before
        remembered = cache.lookup(digest)
        if remembered is not None:
            answer: dict[str, Any] = {"kernel_info": KernelInfo.from_json(remembered).to_json()}
        else:
            answer = judge.request({"op": "judge"}, limits.wall_timeout)
    finally:
        judge.stop(grace=0)
    verdict = judged_verdict(answer)
    kernel = reply.kernel_source[:1000]  # (checked printable by the protocol)
    trace.info("kernel %s: %s", kernel, describe(verdict))
    if not verdict["bootable"]:
        raise KernelNotBootable(refusal(verdict["problems"], kernel, (reply.title or "")[:1000] or None))
    if remembered is None:
        cache.remember(digest, verdict)  # (positive verdicts without problems only; never fatal)
    return with_verdict(reply, verdict, [f"kernel {kernel}: {w}" for w in verdict["warnings"]])


def _fork_judge(kernel_fd: int, limits: Limits, runas: Identity | None, debug: bool) -> Child:
    """The judge, forked now but confined only when asked, with a read-only fd on the kernel copy (so it
    cannot change the bytes the parent hashed)."""
    copy = os.open(f"/proc/self/fd/{kernel_fd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        conf = Confinement(
            address_space=limits.child_address_space,
            cpu_seconds=limits.child_cpu_seconds,
            file_size=0,  # it writes no file
            keep_fds=[copy],
            runas=runas,
            debug=debug,
            modules=DECODERS,
            lazy=True,
        )
        return Child(lambda channel: _serve_judge(channel, copy, limits), conf)
    finally:
        os.close(copy)


def _serve_judge(channel: Channel, fd: int, limits: Limits) -> None:
    """In the judge: the verdict on the kernel copy at `fd`, for each request."""
    while True:
        try:
            channel.recv()
        except ChannelClosed:
            return
        try:
            with open(fd, "rb", closefd=False) as stream:
                info = check_kernel(stream, os.fstat(fd).st_size, limits)
            answer: dict[str, Any] = {"type": "judged", "kernel_info": info.to_json()}
        except PvbootError as exc:
            answer = {"type": "error", "message": str(exc)}
        except Exception as exc:
            answer = {"type": "error", "message": describe_failure(exc, limits.child_address_space)}
        channel.send(answer)
