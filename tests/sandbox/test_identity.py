"""The identity the reader drops to is validated where it is named and checked where it is taken.

`--runas` and $PVBOOT_SANDBOX_USER must name a uid in 1..2^32-2 that is not root's (setresuid takes
(uid_t)-1 as "no change", so -1 would leave the reader root with every capability); a name must resolve
to such a uid. After the switch the reader checks its real, effective, saved and fs ids and its
capability sets, and when they are not what they must be it reads nothing and answers every request
with the reason."""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

import pytest
from test_confine import IMAGE_BYTES, run_confined

import pvrun
from pvboot.errors import GuestDataError
from pvboot.sandbox.child import Child, Confinement
from pvboot.sandbox.confine import USER_ENV, Identity, Reader

MINUS_ONE = (1 << 32) - 1
PR_SET_KEEPCAPS = 8


@pytest.fixture
def root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("changing uid needs root")


def one_error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and not proc.stdout, (proc.returncode, lines)
    assert lines[0].startswith("pvboot: RuntimeError: "), lines
    return lines[0]


@pytest.mark.parametrize("uid", ["4294967295", "0", "-1", "4294967296", "99999999999999999999"])
def test_runas_outside_the_unprivileged_range_is_refused(tmp_path: Path, uid: str) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(1 << 20))
    for argv in (["-q", f"--runas={uid}", str(image)], ["-l", f"--runas={uid}", str(image)]):
        line = one_error_line(pvrun.pvboot(*argv))
        assert f"--runas={uid}: the disk reader's uid must be a number in 1..4294967294" in line, line


@pytest.mark.usefixtures("root_only")
@pytest.mark.parametrize("user", ["0", "root", "4294967295", "no-such-user-here"])
def test_a_sandbox_user_that_is_root_or_minus_one_is_refused(tmp_path: Path, user: str) -> None:
    """Refused on every run, not only on the kernels without user namespaces that would use it."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(1 << 20))
    line = one_error_line(pvrun.pvboot("-q", str(image), env={USER_ENV: user}))
    assert f"{USER_ENV}={user}: " in line, line
    assert ("no such user" if user.startswith("no-") else "must be a number in 1..4294967294") in line


def _status_of_reader(reader: Reader) -> str:
    return f"{reader.error} | image fd {reader.image_fd}"


@pytest.mark.usefixtures("root_only")
@pytest.mark.parametrize(
    "target", [Identity(MINUS_ONE, MINUS_ONE), Identity(0, 0)], ids=["minus-one", "root"]
)
def test_a_reader_left_root_refuses_to_read(tmp_path: Path, target: Identity) -> None:
    """What the parent refuses, handed to enter() anyway: setresuid(-1) changes nothing, setresuid(0)
    keeps root; the reader sees it and gives up its image."""
    result, sig = run_confined(tmp_path, lambda r, o: _status_of_reader(r), runas=target)
    assert sig is None
    assert "not the unprivileged identity it must be" in result and "include root's" in result, result
    assert result.endswith("| image fd None"), result


@pytest.mark.usefixtures("root_only")
def test_a_uid_change_that_did_not_happen_is_refused(tmp_path: Path) -> None:
    def no_setresuid() -> None:
        os.setresuid = lambda *ids: None

    result, _ = run_confined(
        tmp_path, lambda r, o: _status_of_reader(r), runas=Identity(4444, 4444), setup=no_setresuid
    )
    assert "not the unprivileged identity" in result and "(0, 0, 0, 0)" in result, result
    assert result.endswith("| image fd None"), result


@pytest.mark.usefixtures("root_only")
def test_capabilities_kept_across_the_uid_change_are_refused(tmp_path: Path) -> None:
    """PR_SET_KEEPCAPS keeps the permitted set when root changes uid: the ids are right, the
    capabilities are not."""

    def keep_caps() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0

    result, _ = run_confined(
        tmp_path, lambda r, o: _status_of_reader(r), runas=Identity(4444, 4444), setup=keep_caps
    )
    assert "it holds capabilities: CapPrm" in result, result


@pytest.mark.usefixtures("root_only")
@pytest.mark.parametrize("mode", ["userns", "runas", "fallback"])
def test_the_check_passes_where_the_switch_happened(tmp_path: Path, mode: str) -> None:
    options = {"runas": Identity(4444, 4444)} if mode == "runas" else {"userns": mode == "userns"}
    result, _ = run_confined(
        tmp_path, lambda r, o: f"{r.error} {os.pread(r.image_fd or -1, 5, 0)!r}", **options
    )
    assert result == "None b'guest'", result


@pytest.mark.usefixtures("root_only")
def test_the_refusing_reader_answers_every_request_with_why(tmp_path: Path) -> None:
    """The real fork and sandbox (sandbox/child.py): each request gets the refusal, none reaches serve."""
    image = tmp_path / "disk.img"
    image.write_bytes(IMAGE_BYTES)
    served = tmp_path / "served"
    conf = Confinement(
        address_space=1 << 30,
        cpu_seconds=10,
        file_size=1 << 20,
        runas=Identity(MINUS_ONE, MINUS_ONE),
        image=str(image),
    )
    child = Child(lambda channel: served.write_text("serve ran"), conf)
    try:
        for op in ("inspect", "menu", "boot"):
            with pytest.raises(GuestDataError, match="not the unprivileged identity it must be"):
                child.request({"op": op}, 20)
    finally:
        child.stop()
    assert not served.exists()
