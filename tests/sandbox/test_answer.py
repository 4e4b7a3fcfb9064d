"""What the parent accepts from the reading process before it answers libxl (protocol.validate_reply, then
boot._answer against the files themselves)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pvboot import boot
from pvboot.errors import GuestDataError
from pvboot.outfiles import OutputFiles
from pvboot.output import BootAnswer
from pvboot.sandbox.protocol import BootReply, validate_reply


@pytest.fixture
def files(tmp_path: Path) -> OutputFiles:
    out = OutputFiles(str(tmp_path), False)
    os.write(out.fds["kernel"], b"K" * 100)
    os.write(out.fds["ramdisk"], b"R" * 50)
    return out


def reply(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "extracted",
        "kernel_source": "(hd0,msdos1)/boot/vmlinuz",
        "ramdisk_sources": ["(hd0,msdos1)/boot/initrd.img"],
        "kernel_size": 100,
        "ramdisk_size": 50,
        "title": "Debian GNU/Linux",
        "path": [0],
    }
    base.update(changes)
    return base


def _answer(raw: dict[str, Any], files: OutputFiles, initrds: list[str], args: str | None) -> BootAnswer:
    """The parent's path: the reply validated, then checked against the output files."""
    reply = validate_reply("boot", raw)
    assert isinstance(reply, BootReply)
    return boot._answer(reply, files, initrds, args)


def test_a_good_reply_names_the_created_files(files: OutputFiles) -> None:
    answer = _answer(reply(), files, ["/boot/initrd.img"], "root=/dev/xvda1 ro")
    assert answer.kernel == files.paths["kernel"]
    assert answer.ramdisk == files.paths["ramdisk"]
    assert answer.args == "root=/dev/xvda1 ro"


@pytest.mark.parametrize(
    "changes",
    [
        {"kernel_source": "/boot/vmlinuz\n(hd0)/x"},
        {"kernel_source": "/boot/vmlinuz\0"},
        {"kernel_source": "/boot/\x1b]0;pwned\x07vmlinuz"},
        {"kernel_source": ["/boot/vmlinuz"]},
        {"kernel_source": "/" + "a" * 70_000},
        {"ramdisk_sources": "/boot/initrd.img"},
        {"ramdisk_sources": ["/boot/initrd\u202e.img"]},
        {"kernel_size": 99},
        {"kernel_size": "100"},
        {"kernel_size": True},
        {"ramdisk_size": None},
    ],
)
def test_bad_replies_are_refused(files: OutputFiles, changes: dict[str, Any]) -> None:
    with pytest.raises(GuestDataError):
        _answer(reply(**changes), files, ["/boot/initrd.img"], None)


@pytest.mark.parametrize("args", ["quiet\nkernel /etc/shadow", "a\0b", "console=\x1b[2J"])
def test_command_lines_with_control_characters_are_refused(files: OutputFiles, args: str) -> None:
    with pytest.raises(GuestDataError, match="control characters"):
        _answer(reply(), files, [], args)


def test_titles_are_sanitised_not_refused(files: OutputFiles) -> None:
    answer = _answer(reply(title="Linux\x1b[31m\n\x00evil" + "x" * 5000, path=[0, "1"]), files, [], None)
    entry = answer.extra["entry"]
    assert entry["title"].startswith("Linux?[31m??evil")
    assert all(ch.isprintable() for ch in entry["title"]) and len(entry["title"]) <= 1024
    assert entry["path"] is None


def test_an_empty_kernel_is_refused(tmp_path: Path) -> None:
    out = OutputFiles(str(tmp_path), False)
    with pytest.raises(GuestDataError, match="empty"):
        _answer(reply(kernel_size=0), out, [], None)


def test_a_replaced_output_file_is_refused(files: OutputFiles, tmp_path: Path) -> None:
    kernel = Path(files.paths["kernel"])
    kernel.unlink()
    kernel.symlink_to("/etc/passwd")
    with pytest.raises(GuestDataError, match="no longer the kernel file"):
        _answer(reply(), files, ["/boot/initrd.img"], None)
