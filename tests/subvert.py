"""A subverted reader, for the tests: pvboot's real CLI (cli.main: the real fork, the real confinement),
with the code that runs in the confined reader (boot.serve), or in the kernel judge
(kernel.judge._serve_judge), replaced by attacker code. That code runs exactly where a parser exploit
would: after sandbox/confine.py's enter() returned, with the fds the reader holds.

Run as `python subvert.py ATTACK_JSON PVBOOT_ARGS...`; `run()` does that and returns what the attacker
found (it reports in its error reply, which pvboot prints as its one `RuntimeError:` line). The attack:

- "open": paths to open read-only; each gives "opened" or the errno's name;
- "listdir": directories to list, the same way;
- "image": read the first bytes of the image through the fd the reader was handed ("read N" or errno);
- "scan": a marker, reversed (so that this text itself does not hold it): "found" when any str or bytes
  object in the process's memory holds it;
- "in": "reader" (default) or "judge": where the attacker runs; in the judge, the reader is honest;
- "reply": instead of reporting, answer the boot/extract request with this reply, after writing the
  bytes of the host file "kernel" into the kernel output file (a reader lying about its kernel);
- "no_landlock": behave as on a kernel without Landlock; "honest": run no attacker code at all.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).resolve().parent.parent / "src")
MARK = "SUBVERTED "


def run(
    attack: dict[str, Any], *args: str, env: dict[str, str] | None = None
) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """What the attacker found (empty when it did not report), and how pvboot ended."""
    full_env = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    proc = subprocess.run(
        [sys.executable, __file__, json.dumps(attack), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )
    _, found, report = proc.stderr.partition(MARK)
    return (json.loads(report.strip()) if found else {}), proc


def _try(action: Any) -> str:
    try:
        return str(action())
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))


def _findings(attack: dict[str, Any], image: str | None) -> dict[str, str]:
    from pvboot.disk import container

    out: dict[str, str] = {}
    for path in attack.get("open", []):
        out[path] = _try(lambda path=path: os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)))
        out[path] = "opened" if out[path] == "None" else out[path]
    for path in attack.get("listdir", []):
        out[f"listdir {path}"] = _try(lambda path=path: f"listed {len(os.listdir(path))}")
    if attack.get("image") and image is not None:
        fd = container.host_opener(image, os.O_RDONLY)
        out["image"] = _try(lambda: f"read {len(os.pread(fd, 512, 0))}")
    if attack.get("scan"):
        marker = attack["scan"][::-1]
        found = any(
            marker in obj if isinstance(obj, str) else marker.encode() in obj
            for obj in _objects()
            if isinstance(obj, str | bytes) and obj is not marker
        )
        out["scan"] = "found" if found else "absent"
    return out


def _objects() -> list[object]:
    """Every object the collector tracks, and the str/bytes they hold directly."""
    tracked = gc.get_objects()
    held: list[object] = []
    for obj in tracked:
        if isinstance(obj, dict):
            held += [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set | frozenset):
            held += list(obj)
        else:
            held += list(getattr(obj, "__dict__", {}).values())
    return tracked + held


def _attacker(attack: dict[str, Any], kernel: bytes) -> Any:
    from pvboot.sandbox.channel import ChannelClosed

    def serve(session: Any, channel: Any) -> None:
        while True:
            try:
                request = channel.recv()
            except ChannelClosed:
                return
            op = request.get("op")
            if op == "xenkernel":
                channel.send({"type": "xenkernel", "found": None})
            elif "reply" in attack and op in ("boot", "extract"):
                os.pwrite(session.fds.kernel, kernel, 0)
                channel.send(attack["reply"])
            else:
                found = _findings(attack, session.image)
                channel.send({"type": "error", "message": MARK + json.dumps(found)})

    return serve


def _judge_attacker(attack: dict[str, Any]) -> Any:
    def serve(channel: Any, fd: int, limits: Any) -> None:
        channel.recv()
        channel.send({"type": "error", "message": MARK + json.dumps(_findings(attack, None))})

    return serve


def main() -> int:
    attack = json.loads(sys.argv[1])
    kernel = Path(attack["kernel"]).read_bytes() if "kernel" in attack else b""  # (before confinement)
    from pvboot import boot, cli
    from pvboot.kernel import judge
    from pvboot.sandbox import landlock

    if attack.get("no_landlock"):
        landlock.abi_version = lambda: 0
    if attack.get("honest"):
        pass
    elif attack.get("in") == "judge":
        judge._serve_judge = _judge_attacker(attack)
    else:
        boot.serve = _attacker(attack, kernel)
    return cli.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
