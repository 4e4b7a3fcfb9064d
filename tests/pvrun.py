"""Run pvboot exactly as libxl does and read back its answer and files."""

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


def pvboot(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pvboot", *args],
        capture_output=True,
        env=full_env,
        timeout=timeout,
        check=False,
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
