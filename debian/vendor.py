#!/usr/bin/python3
"""The dissect.* readers pvboot needs and Debian does not package: fetch them, check them, install them.

    debian/vendor.py fetch             download the wheels of vendor-requirements.txt into debian/vendor/
                                       (skipped when they are all there: build offline after one fetch)
    debian/vendor.py install DESTDIR   check every wheel's sha256 against vendor-requirements.txt and unpack
                                       it into DESTDIR (/usr/share/pvboot/site-packages in the package); their
                                       LICENSE/COPYRIGHT files go to DOCDIR/vendor/<name>/ (--docdir)

Only pure-Python wheels (py3-none-any) are accepted, so the package stays Architecture: all.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "vendor-requirements.txt"
WHEELS = HERE / "vendor"


def pins() -> dict[str, tuple[str, str]]:
    """name -> (version, sha256) from vendor-requirements.txt."""
    found = {}
    for line in REQUIREMENTS.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)\s+--hash=sha256:([0-9a-f]{64})\s*$", line)
        if m:
            found[m.group(1)] = (m.group(2), m.group(3))
    return found


def wheel_for(name: str, version: str) -> Path:
    stem = re.sub(r"[-_.]+", "_", name).lower()
    return WHEELS / f"{stem}-{version}-py3-none-any.whl"


def fetch() -> int:
    missing = [(n, v) for n, (v, _) in pins().items() if not wheel_for(n, v).exists()]
    if not missing:
        return 0
    WHEELS.mkdir(exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--only-binary=:all:", "--platform", "any", "--implementation", "py", "--python-version", "3.11",
        "--require-hashes", "-r", str(REQUIREMENTS), "-d", str(WHEELS),
    ]  # fmt: skip
    print("vendor: fetching", ", ".join(f"{n}=={v}" for n, v in missing), flush=True)
    return subprocess.run(cmd, check=False).returncode


def install(dest: Path, docdir: Path | None) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    for name, (version, digest) in pins().items():
        wheel = wheel_for(name, version)
        if not wheel.exists():
            print(f"vendor: {wheel} is missing: run debian/vendor.py fetch", file=sys.stderr)
            return 1
        actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if actual != digest:
            print(f"vendor: {wheel.name}: sha256 {actual}, want {digest}", file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                parts = Path(member).parts
                if member.endswith("/") or ".." in parts or member.startswith("/"):
                    continue
                if parts[0].endswith(".dist-info"):
                    if docdir is not None and parts[-1] in ("LICENSE", "COPYRIGHT"):
                        target = docdir / "vendor" / name / parts[-1]
                    elif parts[-1] in ("METADATA", "top_level.txt"):
                        target = dest / member  # keeps importlib.metadata answers right
                    else:
                        continue
                else:
                    target = dest / member
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
        print(f"vendor: {name} {version} -> {dest}")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"]:
        return fetch()
    if argv[:1] == ["install"] and len(argv) in (2, 4):
        docdir = Path(argv[3]) if len(argv) == 4 and argv[2] == "--docdir" else None
        return install(Path(argv[1]), docdir)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
