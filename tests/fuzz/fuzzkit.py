"""The fuzzing harness: run pvboot on one (mutated) guest disk and check the invariant.

The invariant, for every input: exit 0 with a correct answer, or non-zero with exactly one `pvboot: ` line
on stderr -- never a traceback, a hang past the timeout, RSS past the cap, a file outside the output
directory, or anything on `--output` after a failure.

Two ways to run one case:

* `run_inprocess` -- the child side (pvboot.reader.GuestSession) in a forked process, with output files
  standing in for the ones the parent would create. Only pvboot.errors.PvbootError may leave a request;
  anything else is a crash. Fast (no interpreter start-up), so the bulk of the fuzzing runs this way.
* `run_cli` -- the real command line as libxl runs it (`pvboot -q --output=F --output-format=simple0
  --output-directory=D IMG`), under a wrapper process that reports wall time and the peak RSS of the
  whole pvboot process tree (getrusage(RUSAGE_CHILDREN) in the wrapper).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pvrun
from layouts import sha256_file

SRC = Path(__file__).resolve().parents[2] / "src"

MIB = 1 << 20
GIB = 1 << 30
WALL_CAP = 30.0  # seconds: what the issue allows one run
RSS_CAP = GIB  # peak RSS of the pvboot process tree
INPROCESS_TIMEOUT = 25.0  # as the wall-clock limit of a real run (pvboot.limits.Limits.wall_timeout)


# -- outcomes ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one in-process case did."""

    status: str  # ok | error | crash | timeout | died
    message: str = ""  # the PvbootError text, or the crash summary
    detail: str = ""  # the traceback of a crash
    kernel_sha: str | None = None
    ramdisk_sha: str | None = None
    kernel_source: str = ""
    seconds: float = 0.0
    maxrss: int = 0  # bytes, of the forked child (includes the pages it shares with the test process)
    ops: list[str] = field(default_factory=list)  # per request: ok/error


def _child_run(image: str, requests: Sequence[dict[str, object]], kfd: int, rfd: int) -> dict[str, object]:
    from pvboot.errors import PvbootError
    from pvboot.limits import Limits
    from pvboot.reader import GuestSession, OutputFds

    session = GuestSession(image, Limits.from_env(), OutputFds(kfd, rfd))
    result: dict[str, object] = {"status": "ok", "ops": []}
    ops: list[str] = []
    for request in requests:
        try:
            reply = session.handle(dict(request))
        except PvbootError as exc:
            ops.append("error")
            result.update(status="error", message=str(exc))
            continue
        except BaseException as exc:  # anything else escaping the child side is a bug
            ops.append("crash")
            result.update(
                status="crash",
                message=f"{request.get('op')}: {type(exc).__name__}: {str(exc)[:300]}",
                detail=traceback.format_exc(),
            )
            break
        ops.append("ok")
        if request.get("op") in ("boot", "extract"):
            result["status"] = "ok"
            result["kernel_source"] = str(reply.get("kernel_source", ""))
            for name, fd in (("kernel_sha", kfd), ("ramdisk_sha", rfd)):
                os.lseek(fd, 0, os.SEEK_SET)
                digest = hashlib.sha256()
                while chunk := os.read(fd, MIB):
                    digest.update(chunk)
                result[name] = digest.hexdigest() if os.fstat(fd).st_size or name == "kernel_sha" else None
    result["ops"] = ops
    return result


def warm(image: Path | str, requests: Sequence[dict[str, object]]) -> dict[str, object]:
    """Run `requests` in this process once, so that every lazily imported parser is loaded before the
    forks of `run_inprocess` (which would otherwise each import it again)."""
    import importlib
    import pkgutil

    import pvboot

    for info in pkgutil.walk_packages(pvboot.__path__, "pvboot."):
        if info.name.endswith("__main__"):
            continue
        with contextlib.suppress(ImportError):
            importlib.import_module(info.name)
    with tempfile.TemporaryDirectory(prefix="pvfz-") as tmp:
        kfd = os.open(os.path.join(tmp, "k"), os.O_RDWR | os.O_CREAT, 0o600)
        rfd = os.open(os.path.join(tmp, "r"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            return _child_run(str(image), requests, kfd, rfd)
        finally:
            os.close(kfd)
            os.close(rfd)


def _vm_size() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def run_inprocess(
    image: Path | str,
    requests: Sequence[dict[str, object]],
    timeout: float = INPROCESS_TIMEOUT,
    mem_cap: int = RSS_CAP,
) -> Outcome:
    """Run `requests` against `image` in a forked child; every request gets fresh output files' content."""
    with tempfile.TemporaryDirectory(prefix="pvfz-") as tmp:
        kfd = os.open(os.path.join(tmp, "k"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        rfd = os.open(os.path.join(tmp, "r"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        rpipe, wpipe = os.pipe()
        baseline = _vm_size()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                os.close(rpipe)
                limit = baseline + mem_cap
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
                sys.setrecursionlimit(4000)  # as the real sandbox child
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                try:
                    result = _child_run(str(image), requests, kfd, rfd)
                except BaseException as exc:  # opening the session itself
                    result = {"status": "crash", "message": f"{type(exc).__name__}: {exc}"[:300],
                              "detail": traceback.format_exc()}  # fmt: skip
                data = json.dumps(result).encode()
                view = memoryview(data)
                while view:
                    view = view[os.write(wpipe, view) :]
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        os.close(wpipe)
        chunks: list[bytes] = []
        deadline = start + timeout
        timed_out = False
        try:
            while True:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    timed_out = True
                    break
                ready, _, _ = select.select([rpipe], [], [], wait)
                if not ready:
                    continue
                chunk = os.read(rpipe, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(rpipe)
            if timed_out:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            os.close(kfd)
            os.close(rfd)
        seconds = time.monotonic() - start
        maxrss = usage.ru_maxrss * 1024
        if timed_out:
            return Outcome("timeout", f"no answer within {timeout:g} s", seconds=seconds, maxrss=maxrss)
        if not chunks:
            how = (
                f"signal {os.WTERMSIG(status)}"
                if os.WIFSIGNALED(status)
                else f"exit {os.WEXITSTATUS(status)}"
            )
            return Outcome(
                "died", f"the child died without an answer ({how})", seconds=seconds, maxrss=maxrss
            )
        raw = json.loads(b"".join(chunks))
        return Outcome(
            status=raw["status"],
            message=raw.get("message", ""),
            detail=raw.get("detail", ""),
            kernel_sha=raw.get("kernel_sha"),
            ramdisk_sha=raw.get("ramdisk_sha"),
            kernel_source=raw.get("kernel_source", ""),
            seconds=seconds,
            maxrss=maxrss,
            ops=raw.get("ops", []),
        )


# -- the real command line -----------------------------------------------------------------------------

_WRAPPER = r"""
import json, os, resource, signal, subprocess, sys, time
argv, timeout, env = json.loads(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
start = time.monotonic()
proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        env=env, start_new_session=True)
timed_out = False
try:
    out, err = proc.communicate(timeout=timeout)
except subprocess.TimeoutExpired:
    timed_out = True
    for pid in os.listdir("/proc"):  # the whole session: pvboot and its confined child
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[3]) == proc.pid:
                    os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass
    out, err = proc.communicate()
wall = time.monotonic() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": proc.returncode, "timed_out": timed_out, "wall": wall,
                  "maxrss": usage.ru_maxrss * 1024, "stdout": out.hex(), "stderr": err.hex()}))
"""


@dataclass
class CliOutcome:
    code: int
    stdout: bytes
    stderr: bytes
    wall: float
    maxrss: int
    timed_out: bool
    answer: bytes
    out_files: list[str]
    strays: list[str]  # new files next to (not inside) the output directory

    @property
    def message(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def parsed(self) -> dict[str, str]:
        """The simple0 answer as {kernel, ramdisk, args}."""
        items: dict[str, str] = {}
        for item in self.answer.split(b"\0"):
            if item:
                key, _, value = item.decode("utf-8", "surrogateescape").partition(" ")
                items[key] = value
        return items


def run_cli(
    image: Path | str,
    workdir: Path,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 90.0,
    argv: Sequence[str] | None = None,
) -> CliOutcome:
    """`pvboot -q [extra] --output=F --output-format=simple0 --output-directory=D IMAGE`, measured.

    `argv` replaces the whole argument list (the answer file and output directory still exist)."""
    workdir.mkdir(parents=True, exist_ok=True)
    out_dir = workdir / "out"
    out_dir.mkdir(exist_ok=True)
    for old in out_dir.iterdir():
        old.unlink()
    answer = workdir / "answer"
    answer.write_bytes(b"")  # libxl pre-creates it
    before = set(os.listdir(workdir))
    args = (
        list(argv)
        if argv is not None
        else [
            "-q",
            *extra,
            f"--output={answer}",
            "--output-format=simple0",
            f"--output-directory={out_dir}",
            str(image),
        ]
    )
    full_env = pvrun.environment(env)
    full_env.setdefault("TERM", "vt100")
    command = pvrun.command(*args)
    wrapper = subprocess.run(
        [sys.executable, "-c", _WRAPPER, json.dumps(command), str(timeout), json.dumps(full_env)],
        capture_output=True,
        check=True,
        timeout=timeout + 30,
    )
    report = json.loads(wrapper.stdout)
    strays = sorted(set(os.listdir(workdir)) - before)
    return CliOutcome(
        code=report["code"],
        stdout=bytes.fromhex(report["stdout"]),
        stderr=bytes.fromhex(report["stderr"]),
        wall=report["wall"],
        maxrss=report["maxrss"],
        timed_out=report["timed_out"],
        answer=answer.read_bytes(),
        out_files=sorted(str(p) for p in out_dir.iterdir()),
        strays=strays,
    )


def cli_violations(
    res: CliOutcome,
    out_dir: Path,
    expect: dict[str, str | None] | None = None,
    wall_cap: float = WALL_CAP,
) -> list[str]:
    """Every way `res` breaks the invariant ([] when it holds).

    `expect` maps 'kernel'/'ramdisk' to the sha256 a successful run must produce (None: no ramdisk)."""
    bad: list[str] = []
    err = res.message
    if res.timed_out:
        bad.append(f"hang: killed after {res.wall:.1f} s")
    elif res.wall > wall_cap:
        bad.append(f"took {res.wall:.1f} s (cap {wall_cap:g} s)")
    if res.maxrss > RSS_CAP:
        bad.append(f"peak RSS {res.maxrss >> 20} MiB (cap {RSS_CAP >> 20} MiB)")
    if res.strays:
        bad.append(f"files left next to the output directory: {res.strays}")
    if "Traceback" in err:
        bad.append(f"traceback on stderr: {err[-800:]}")
    if res.code == 0:
        answer = res.parsed()
        named = sorted(v for k, v in answer.items() if k in ("kernel", "ramdisk"))
        if "kernel" not in answer:
            bad.append(f"exit 0 without a kernel in the answer: {res.answer!r}")
        for path in named:
            if os.path.dirname(os.path.realpath(path)) != os.path.realpath(out_dir):
                bad.append(f"answer names a file outside the output directory: {path!r}")
        if sorted(res.out_files) != named:
            bad.append(f"output directory holds {res.out_files}, the answer names {named}")
        if err:
            bad.append(f"exit 0 with stderr {err!r}")
        for role in ("kernel", "ramdisk"):
            if expect is None or role not in expect:
                continue
            path = answer.get(role)
            got = sha256_file(Path(path)) if path and os.path.exists(path) else None
            if got != expect[role]:
                bad.append(f"exit 0 but the {role} is not the guest's file (sha256 {got} != {expect[role]})")
    else:
        if not (err.startswith("pvboot: ") and err.endswith("\n") and err.count("\n") == 1):
            bad.append(f"not exactly one 'pvboot: ' line on stderr: {err[-800:]!r}")
        if "internal error" in err:
            bad.append(f"internal error: {err.strip()}")
        if res.answer:
            bad.append(f"--output written after a failure: {res.answer[:200]!r}")
        if res.out_files:
            bad.append(f"files left in the output directory after a failure: {res.out_files}")
        if res.stdout:
            bad.append(f"stdout after a failure: {res.stdout[:200]!r}")
    return bad


# -- mutations ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """Metadata bytes of a guest image worth mutating.

    `protected`: the on-disk format checksums these bytes (ext4 metadata_csum, XFS v5 CRCs, Btrfs tree
    checksums, GPT and LVM CRCs), so a mutation that still boots must boot the original files. In an
    unprotected region (ext2, FAT, ISO9660, MBR, qcow2 tables) a flipped pointer can redirect a file to
    other bytes that no reader -- GRUB included -- can tell from the real ones."""

    label: str
    offset: int  # in `file`
    length: int
    protected: bool
    file: str = ""  # relative to the image's directory; "" is the image itself
    sign: str = ""  # how to recompute its checksum after a mutation (fuzz_targets.resign); "" if not
    meta: tuple[int, ...] = ()  # what `sign` needs (seeds, offsets)


@dataclass(frozen=True)
class Mutation:
    region: Region
    rel: int  # offset inside the region
    data: bytes
    kind: str

    @property
    def offset(self) -> int:
        return self.region.offset + self.rel

    def describe(self) -> str:
        where = f"{self.region.file or 'image'}:{self.region.label}+{self.rel:#x}"
        return f"{self.kind} at {where} (byte {self.offset:#x}) <- {self.data.hex()}"


def describe_all(mutations: Sequence[Mutation]) -> str:
    """The mutations, in order; checksum fix-ups are mentioned, not spelled out."""
    parts = []
    for mut in mutations:
        if mut.kind == "csum":
            if parts and not parts[-1].endswith("(checksum recomputed)"):
                parts[-1] += " (checksum recomputed)"
        else:
            parts.append(mut.describe())
    return "; then ".join(parts)


_INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF)
_WORDS = (0, 1, 2, 3, 0x10, 0x7F, 0x80, 0xFF, 0x100, 0x1000, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
          0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 1 << 32, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)  # fmt: skip


def random_mutation(rng: random.Random, region: Region, current: bytes) -> Mutation:
    """One mutation of `region`, whose bytes are `current`."""
    size = len(current)
    kind = rng.choice(("bitflip", "bitflip", "byte", "word", "word", "run", "zero", "multiflip"))
    if kind == "bitflip":
        rel = rng.randrange(size)
        return Mutation(region, rel, bytes([current[rel] ^ (1 << rng.randrange(8))]), kind)
    if kind == "byte":
        rel = rng.randrange(size)
        value = rng.choice((*_INTERESTING, rng.randrange(256)))
        return Mutation(region, rel, bytes([value]), kind)
    if kind == "word":
        width = min(rng.choice((2, 4, 8)), size)
        rel = rng.randrange(0, size - width + 1, width) if size >= width else 0
        old = int.from_bytes(current[rel : rel + width], "little")
        value = rng.choice((*_WORDS, old + 1, old - 1, old * 2, old + (1 << rng.randrange(width * 8))))
        value %= 1 << (8 * width)
        order = rng.choice(("little", "big"))
        return Mutation(region, rel, value.to_bytes(width, order), f"word{width * 8}{order[0]}e")
    if kind == "run":
        length = min(rng.randint(2, 16), size)
        rel = rng.randrange(size - length + 1)
        return Mutation(region, rel, rng.randbytes(length), kind)
    if kind == "zero":
        length = min(rng.randint(4, 64), size)
        rel = rng.randrange(size - length + 1)
        return Mutation(region, rel, bytes(length), kind)
    # multiflip: a few flips inside one 16-byte window, as one contiguous patch
    rel = rng.randrange(size)
    end = min(size, rel + 16)
    patch = bytearray(current[rel:end])
    for _ in range(rng.randint(2, 4)):
        patch[rng.randrange(len(patch))] ^= 1 << rng.randrange(8)
    return Mutation(region, rel, bytes(patch), kind)


def read_at(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def write_at(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


@contextlib.contextmanager
def applied(image_dir: Path, image: Path, mutations: Sequence[Mutation]) -> Iterator[None]:
    """The mutations written into the image files, restored afterwards."""
    saved: list[tuple[Path, int, bytes]] = []
    try:
        for mut in mutations:
            target = image_dir / mut.region.file if mut.region.file else image
            saved.append((target, mut.offset, read_at(target, mut.offset, len(mut.data))))
            write_at(target, mut.offset, mut.data)
        yield
    finally:
        for target, offset, old in reversed(saved):
            write_at(target, offset, old)


def sparse_copy(src: Path, dst: Path) -> Path:
    subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
    return dst


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


SEED = env_int("PVBOOT_FUZZ_SEED", 20240611)


def report_finding(text: str) -> None:
    """Append a finding to $PVBOOT_FUZZ_REPORT (the long runs of scripts/fuzz.sh collect them)."""
    path = os.environ.get("PVBOOT_FUZZ_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(text.rstrip("\n") + "\n\n")
