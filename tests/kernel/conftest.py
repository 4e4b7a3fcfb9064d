"""Real Debian kernels for the kernel-stage tests, fetched once per session.

x86: the host's /boot/vmlinuz-* when its /boot/config-* says CONFIG_XEN_PV=y, else the package that
`linux-image-amd64` depends on. arm64: the package `linux-image-arm64` depends on (its Image and DTBs).
Packages come from Debian with `apt-get download` (never installed), through a private apt state
directory so that the host's package lists are left alone; only ./boot/vmlinuz-* and a few DTBs are
extracted. $PVBOOT_TEST_CACHE, when set, keeps them across sessions. Without apt or network the tests
that need them skip, saying so.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

DTB_GLOBS = ("./usr/lib/linux-image-*/arm/*.dtb", "./usr/lib/linux-image-*/rockchip/rk3399-rock*.dtb")


class AptUnavailable(Exception):
    pass


@dataclass
class DebianKernel:
    version: str  # the release, 6.1.0-18-amd64
    image: Path  # /boot/vmlinuz-<version>
    dtbs: list[Path]


class DebianKernels:
    """Downloads on first use, remembers failures (so a missing network costs one try, not one per test)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.apt_root = root / "apt"
        self._cache: dict[str, DebianKernel | str] = {}
        self._updated: bool | str = False
        self.last_stderr = ""

    def _apt(self, *args: str) -> str:
        env = {**os.environ, "APT_CONFIG": str(self.apt_root / "apt.conf")}
        proc = subprocess.run(
            ["apt-get" if args[0] != "cache" else "apt-cache", *args[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=self.root,
            check=False,
        )
        self.last_stderr = " ".join(proc.stderr.split())
        if proc.returncode != 0:
            raise AptUnavailable(f"{' '.join(args)}: {proc.stderr.strip().splitlines()[-1:]}")
        return proc.stdout

    def _update(self) -> None:
        if self._updated is True:
            return
        if isinstance(self._updated, str):
            raise AptUnavailable(self._updated)
        if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
            self._updated = "apt-get and dpkg-deb are not installed (not a Debian host)"
            raise AptUnavailable(self._updated)
        state = self.apt_root / "state"
        (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.apt_root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (state / "status").touch()
        (self.apt_root / "apt.conf").write_text(
            'APT::Architectures { "amd64"; "arm64"; };\n'
            f'Dir::State "{state}";\nDir::State::status "{state}/status";\n'
            f'Dir::Cache "{self.apt_root}/cache";\nAPT::Sandbox::User "root";\n'
        )
        try:
            self._apt("get", "update", "-q")
            if not any((state / "lists").glob("*Packages*")):  # apt-get update exits 0 on fetch errors
                raise AptUnavailable(f"no package lists fetched ({self.last_stderr[-300:]})")
        except (AptUnavailable, subprocess.TimeoutExpired) as exc:
            self._updated = f"apt has no network or no Debian sources: {exc}"
            raise AptUnavailable(self._updated) from None
        self._updated = True

    def get(self, arch: str) -> DebianKernel:
        if arch not in self._cache:
            try:
                self._cache[arch] = self._fetch(arch)
            except (AptUnavailable, subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
                self._cache[arch] = str(exc)
        found = self._cache[arch]
        if isinstance(found, str):
            pytest.skip(f"no Debian {arch} kernel: {found}")
        return found

    def _fetch(self, arch: str) -> DebianKernel:
        done = self.root / f"{arch}.done"
        if done.exists():
            return self._load(arch, done.read_text().strip())
        if arch == "amd64":
            host = _host_xen_kernel()
            if host is not None:
                return host
        self._update()
        deps = self._apt("cache", "depends", f"linux-image-{arch}:{arch}")
        match = re.search(r"Depends: (linux-image-[0-9][^\s:]*)", deps)
        if not match:
            raise AptUnavailable(f"linux-image-{arch} names no kernel package")
        package = match.group(1)
        self._apt("get", "download", f"{package}:{arch}")
        debs = sorted(self.root.glob(f"{package}_*_{arch}.deb"))
        if not debs:
            raise AptUnavailable(f"apt-get download {package} left no .deb")
        out = self.root / arch
        out.mkdir(exist_ok=True)
        patterns = ["./boot/vmlinuz-*"] + (list(DTB_GLOBS) if arch == "arm64" else [])
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(out), "--wildcards", *patterns], stdin=tar.stdout, check=True)
        tar.wait()
        debs[0].unlink()
        version = package.removeprefix("linux-image-")
        done.write_text(version)
        return self._load(arch, version)

    def _load(self, arch: str, version: str) -> DebianKernel:
        out = self.root / arch
        dtbs = sorted(Path(p) for p in glob.glob(str(out / "usr/lib/linux-image-*/*/*.dtb")))
        return DebianKernel(version, out / "boot" / f"vmlinuz-{version}", dtbs)


def _host_xen_kernel() -> DebianKernel | None:
    """The host's own kernel, when it is readable and built with CONFIG_XEN_PV."""
    for image in sorted(Path("/boot").glob("vmlinuz-*"), reverse=True):
        version = image.name.removeprefix("vmlinuz-")
        config = Path("/boot") / f"config-{version}"
        try:
            if os.access(image, os.R_OK) and "CONFIG_XEN_PV=y" in config.read_text():
                return DebianKernel(version, image, [])
        except OSError:
            continue
    return None


@pytest.fixture(scope="session")
def debian_kernels(tmp_path_factory: pytest.TempPathFactory) -> DebianKernels:
    cache = os.environ.get("PVBOOT_TEST_CACHE")
    root = Path(cache) / "debian-kernels" if cache else tmp_path_factory.mktemp("debian-kernels")
    root.mkdir(parents=True, exist_ok=True)
    return DebianKernels(root)


@pytest.fixture(scope="session")
def amd64_kernel(debian_kernels: DebianKernels) -> DebianKernel:
    return debian_kernels.get("amd64")


@pytest.fixture(scope="session")
def arm64_kernel(debian_kernels: DebianKernels) -> DebianKernel:
    kernel = debian_kernels.get("arm64")
    if not kernel.dtbs:
        pytest.skip("the arm64 kernel package holds no DTBs under usr/lib/linux-image-*/arm/")
    return kernel
