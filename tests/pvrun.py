"""The one way tests run pvboot: `python -m pvboot` on this checkout's src, as libxl calls it, with its
answer and files read back (`boot`). Other runners (the fuzzers' resource-measuring wrapper, strace) build
on `command()` and `environment()`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SRC = str(Path(__file__).resolve().parent.parent / "src")


@dataclass
class Result:
    code: int
    stderr: str
    answer: dict[str, str]
    kernel: bytes | None
    ramdisk: bytes | None
    leftover: list[str]


def command(*args: str) -> list[str]:
    """The argv that runs pvboot with `args`."""
    return [sys.executable, "-m", "pvboot", *args]


def environment(env: dict[str, str] | None = None, inherit: bool = True) -> dict[str, str]:
    """The environment pvboot runs in: this process's (unless not `inherit`), then `env`, with this
    checkout's src first on PYTHONPATH."""
    full = {**(os.environ if inherit else {}), **(env or {})}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, full.get("PYTHONPATH")]))
    return full


def pvboot(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, inherit: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """pvboot with `args`; never raises on a failure exit."""
    return subprocess.run(
        command(*args), capture_output=True, env=environment(env, inherit), timeout=timeout, check=False
    )


def boot(image: Path, workdir: Path, *extra: str, env: dict[str, str] | None = None) -> Result:
    """`pvboot -q [extra] --output=F --output-format=simple0 --output-directory=D IMAGE`, parsed."""
    outdir = workdir / "out"
    outdir.mkdir(parents=True, exist_ok=True)
    for old in outdir.iterdir():
        old.unlink()
    answer_file = workdir / "answer"
    answer_file.write_bytes(b"")
    proc = pvboot(
        "-q",
        *extra,
        f"--output={answer_file}",
        "--output-format=simple0",
        f"--output-directory={outdir}",
        str(image),
        env=env,
    )
    raw = answer_file.read_bytes()
    answer: dict[str, str] = {}
    for item in raw.split(b"\0"):
        if item:
            key, _, value = item.decode().partition(" ")
            answer[key] = value
    kernel = Path(answer["kernel"]).read_bytes() if "kernel" in answer else None
    ramdisk = Path(answer["ramdisk"]).read_bytes() if "ramdisk" in answer else None
    files = sorted(str(p) for p in outdir.iterdir())
    expected = sorted(v for k, v in answer.items() if k in ("kernel", "ramdisk"))
    leftover = [f for f in files if f not in expected]
    return Result(proc.returncode, proc.stderr.decode(errors="replace"), answer, kernel, ramdisk, leftover)
