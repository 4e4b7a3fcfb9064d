"""The parent↔reader protocol (sandbox/protocol.py): real replies round-trip, hostile ones are refused.

Each reply below is what the reader sends (`reply.to_json()`); the validator must give back the same
typed reply, and must refuse every malformed, oversized, mistyped or unknown one with pvboot's error.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pvboot.errors import GuestDataError, LimitError, PvbootError
from pvboot.limits import Limits
from pvboot.outfiles import OutputFiles
from pvboot.sandbox.protocol import (
    BootEntryRequest,
    BootReply,
    CheckedChild,
    CommandReply,
    CommandRequest,
    DefaultChoice,
    ExtractRequest,
    InspectReply,
    InspectRequest,
    IsconfigReply,
    MenuReply,
    Reader,
    Request,
    XenKernel,
    XenkernelReply,
    copy_size,
    created_file,
    decode_reply,
    decode_request,
    judged_verdict,
    validate_reply,
)

SHA = "ab" * 32
ENTRY = {
    "title": "Debian GNU/Linux",
    "id": "gnulinux-simple",
    "classes": ["debian"],
    "users": None,
    "unrestricted": False,
    "hotkey": None,
    "source": "linux /vmlinuz root=/dev/xvda1",
    "boot": {
        "kind": "linux",
        "loader": "linux",
        "kernel": {"volume": "hd0,msdos1", "path": "/vmlinuz"},
        "initrds": [{"volume": "hd0,msdos1", "path": "/initrd.img"}],
        "args": "root=/dev/xvda1 ro",
        "devicetree": None,
        "errors": [],
    },
    "pv_bootable": True,
}
REAL: dict[str, Any] = {
    "inspect": InspectReply(
        [
            {
                "name": "hd0,msdos1",
                "offset": 1 << 20,
                "size": 63 << 20,
                "fstype": "ext4",
                "uuid": "5a1e",
                "label": None,
            }
        ],
        [
            {
                "kind": "grub2",
                "volume": "hd0,msdos1",
                "path": "/boot/grub/grub.cfg",
                "size": 120,
                "sha256": SHA,
            }
        ],
    ),
    "xenkernel": XenkernelReply(XenKernel("hd0,msdos1", "/xenkernel", None)),
    "isconfig": IsconfigReply("grub2", "Debian", "/vmlinuz", ["/initrd.img"], "ro", True, ""),
    "menu": MenuReply(
        source="(hd0,msdos1)/boot/grub/grub.cfg",
        kind="grub2",
        config={"kind": "grub2", "volume": "hd0,msdos1", "path": "/boot/grub/grub.cfg"},
        timeout=5,
        timeout_style="menu",
        entries=[ENTRY, {"title": "Advanced", "id": "", "submenu": [ENTRY]}],
        superusers="root",
        passwords={"root": ["plain", "secret"]},
        default=DefaultChoice([0], ["Debian GNU/Linux"], ["set default=0 (line 1)"]),
    ),
    "command": CommandReply("(hd0) (hd0,msdos1) \n", 0, False),
    "boot": BootReply(
        kernel_source="(hd0,msdos1)/vmlinuz",
        ramdisk_sources=["(hd0,msdos1)/initrd.img"],
        kernel_size=100,
        ramdisk_size=50,
        args="root=/dev/xvda1 ro",
        title="Debian GNU/Linux",
        path=[0],
        reasons=["the default"],
    ),
    "extract": BootReply(kernel_source="(hd0,msdos1)/xenkernel", kernel_size=100),
}


def wire(op: str) -> dict[str, Any]:
    """The real reply to `op`, as the reader sends it (a fresh copy to spoil)."""
    doc: dict[str, Any] = json.loads(json.dumps(REAL[op].to_json()))
    return doc


@pytest.mark.parametrize("op", sorted(REAL))
def test_real_replies_round_trip(op: str) -> None:
    assert validate_reply(op, wire(op)) == REAL[op]


def test_a_legacy_menu_keeps_its_entry_rules() -> None:
    doc = wire("menu")
    doc["entry_auth"] = {"0": {"password": ["md5", "$1$x$y"], "lock": True}}
    reply = validate_reply("menu", doc)
    assert isinstance(reply, MenuReply) and reply.to_json()["entry_auth"] == doc["entry_auth"]


def spoil(doc: dict[str, Any], where: str, value: object) -> dict[str, Any]:
    """`doc` with the value at `where` (keys and list indexes, dot-separated) replaced."""
    out = copy.deepcopy(doc)
    *path, last = where.split(".")
    node: Any = out
    for key in path:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


HOSTILE = [
    # wrong types
    ("inspect", "volumes", {"hd0": {}}),
    ("inspect", "volumes.0", "hd0"),
    ("inspect", "volumes.0.size", "63"),
    ("inspect", "volumes.0.offset", True),
    ("inspect", "volumes.0.offset", -1),
    ("inspect", "volumes.0.fstype", ["ext4"]),
    ("inspect", "configs.0.path", None),
    ("menu", "entries", "all of them"),
    ("menu", "entries.0.title", 7),
    ("menu", "entries.0.boot", "linux"),
    ("menu", "entries.0.boot.kernel", "/vmlinuz"),
    ("menu", "entries.0.boot.initrds.0.path", {"p": 1}),
    ("menu", "entries.1.submenu", {"title": "x"}),
    ("menu", "timeout", "5"),
    ("menu", "default.path", ["0"]),
    ("menu", "default.path", [-1]),
    ("menu", "default.titles", "Debian"),
    ("menu", "passwords", ["root"]),
    ("isconfig", "title", ["Debian"]),
    ("isconfig", "initrds", "/initrd.img"),
    ("command", "output", {"text": ""}),
    ("command", "boot", "yes"),
    ("command", "status", 0.5),
    ("boot", "kernel_source", ["/vmlinuz"]),
    ("boot", "ramdisk_sources", "/initrd.img"),
    ("boot", "kernel_size", "100"),
    ("boot", "kernel_size", True),
    ("boot", "kernel_size", -5),
    ("boot", "args", ["ro"]),
    ("xenkernel", "found", "/xenkernel"),
    ("xenkernel", "found.kernel", None),
    # oversized strings
    ("inspect", "volumes.0.name", "x" * 70_000),
    ("menu", "config.path", "/" + "a" * 70_000),
    ("boot", "kernel_source", "/" + "a" * 70_000),
    ("inspect", "configs.0.volume", "a" * 70_000),
    # what would reach libxl's answer holds control characters (XSA-198)
    ("boot", "kernel_source", "/boot/vmlinuz\n(hd0)/x"),
    ("boot", "ramdisk_sources.0", "/boot/initrd\u202e.img"),
    ("boot", "args", "quiet\nkernel /etc/shadow"),
    ("xenkernel", "found.volume", "hd0\0"),
    ("xenkernel", "found.kernel", "/xen\x1b]0;pwned\x07kernel"),
    # digests
    ("inspect", "configs.0.sha256", "ab" * 31),
    ("inspect", "configs.0.sha256", "AB" * 32),
    ("inspect", "configs.0.sha256", "zz" * 32),
    ("inspect", "configs.0.sha256", None),
    # the reply type of another request
    ("menu", "type", "inspect"),
    ("boot", "type", "menu"),
    ("inspect", "type", None),
]


@pytest.mark.parametrize(("op", "where", "value"), HOSTILE)
def test_hostile_replies_are_refused(op: str, where: str, value: object) -> None:
    with pytest.raises(GuestDataError):
        validate_reply(op, spoil(wire(op), where, value))


def test_a_bls_directorys_digests_are_checked() -> None:
    doc = spoil(wire("inspect"), "configs.0", {"kind": "bls", "volume": "hd0", "path": "/loader/entries"})
    doc["configs"][0]["files"] = {"a.conf": {"size": 10, "sha256": SHA}}
    assert validate_reply("inspect", doc) is not None
    doc["configs"][0]["files"]["b.conf"] = {"size": 10, "sha256": "not a digest"}
    with pytest.raises(GuestDataError, match="SHA-256"):
        validate_reply("inspect", doc)


def test_a_too_deep_submenu_is_refused() -> None:
    entry: dict[str, Any] = {"title": "leaf"}
    for _ in range(250):
        entry = {"title": "sub", "submenu": [entry]}
    doc = wire("menu")
    doc["entries"] = [entry]
    with pytest.raises(LimitError, match="submenus"):
        validate_reply("menu", doc)


def test_unknown_requests_are_refused_on_both_sides() -> None:
    with pytest.raises(GuestDataError, match="unknown request"):
        validate_reply("format", {"type": "format"})
    with pytest.raises(GuestDataError, match="unknown request"):
        decode_request({"op": "format"})
    with pytest.raises(GuestDataError, match="unknown request"):
        decode_request({})


def test_titles_and_reasons_are_sanitised_not_refused() -> None:
    doc = wire("boot")
    doc.update(title="Linux\x1b[31m\n\x00evil" + "x" * 5000, path=[0, "1"], reasons=["a\x07"] * 100)
    reply = validate_reply("boot", doc)
    assert isinstance(reply, BootReply) and reply.title is not None
    assert reply.title.startswith("Linux?[31m??evil") and len(reply.title) == 1024
    assert reply.path is None and reply.reasons == ["a?"] * 32


def test_the_kernel_verdict_is_cleaned() -> None:
    doc = wire("boot")
    doc["kernel_info"] = {"format": "bzImage\x1b[2J", "pv": 1, "xen_notes": {"X" * 100: "v" * 500}}
    doc["warnings"] = ["w\n"] * 100
    reply = validate_reply("boot", doc)
    assert isinstance(reply, BootReply) and reply.kernel_info is not None
    assert reply.kernel_info["format"] == "bzImage?[2J" and reply.kernel_info["pv"] is True
    assert reply.kernel_info["modes"] == ["pv"] and len(reply.warnings) == 64
    assert all(len(k) <= 32 and len(v) <= 200 for k, v in reply.kernel_info["xen_notes"].items())
    with pytest.raises(GuestDataError, match="no verdict"):
        judged_verdict({"type": "judged", "kernel_info": "bootable"})
    assert judged_verdict({"kernel_info": {"bootable": True}})["bootable"] is True


BOUNDS = Limits().reply_bounds("boot")


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        (b'{"type": "menu", "source": "\xc3\xa9"}', GuestDataError, "not ASCII"),
        (b"[1, 2]", GuestDataError, "not an object"),
        (b'{"type": ', GuestDataError, "malformed reply"),
        (b'{"v": [' + b"0," * 300_000 + b"0]}", LimitError, "values"),
        (b'{"v": ' + b"[" * 500 + b"]" * 500 + b"}", LimitError, "levels deep"),
    ],
)
def test_what_is_refused_before_decoding(payload: bytes, error: type[PvbootError], message: str) -> None:
    with pytest.raises(error, match=message):
        decode_reply(payload, BOUNDS)


def test_requests_round_trip() -> None:
    requests: list[Request] = [
        InspectRequest(),
        InspectRequest(facts=True),
        CommandRequest("ls"),
        ExtractRequest("/xenkernel", ["/xeninitrd"], "hd0,msdos1"),
        ExtractRequest("/vmlinuz"),
        BootEntryRequest(),
        BootEntryRequest(entry="1>2", reason="blacklisted"),
        BootEntryRequest(path=[1, 0], source="linux /vmlinuz"),
        BootEntryRequest(console=True),
    ]
    for request in requests:
        assert decode_request(json.loads(json.dumps(request.to_json()))) == request
    assert BootEntryRequest().to_json() == {"op": "boot", "entry": None}  # (the wire as before)
    assert BootEntryRequest(path=[1]).to_json() == {"op": "boot", "path": [1]}


class FakeChild:
    """A reader that answers every request with one (hostile or real) document."""

    done = False

    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.asked: list[dict[str, Any]] = []

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.asked.append(message)
        return self.reply


def test_the_reader_client_validates_what_it_receives() -> None:
    child = FakeChild(wire("menu"))
    assert Reader(child, 1.0).menu() == REAL["menu"] and child.asked == [{"op": "menu"}]
    with pytest.raises(GuestDataError):
        Reader(FakeChild(wire("menu")), 1.0).inspect()
    with pytest.raises(GuestDataError):
        Reader(FakeChild(spoil(wire("boot"), "kernel_size", "1")), 1.0).boot(BootEntryRequest())
    checked = CheckedChild(FakeChild(spoil(wire("command"), "output", 3)))
    with pytest.raises(GuestDataError):
        checked.request({"op": "command", "line": "ls"}, 1.0)
    assert CheckedChild(FakeChild(wire("command"))).request({"op": "command", "line": "ls"}, 1.0) == wire(
        "command"
    )


def test_sizes_and_paths_are_checked_against_the_output_files(tmp_path: Path) -> None:
    files = OutputFiles(str(tmp_path), False)
    os.write(files.fds["kernel"], b"K" * 100)
    assert copy_size(100, files, "kernel", "kernel") == 100
    with pytest.raises(GuestDataError, match="does not match"):
        copy_size(99, files, "kernel", "kernel")
    with pytest.raises(GuestDataError, match="no valid kernel_size"):
        copy_size(None, files, "kernel", "kernel")
    assert created_file(files, "kernel") == files.paths["kernel"]
    kernel = Path(files.paths["kernel"])
    kernel.unlink()
    kernel.symlink_to("/etc/passwd")  # the path no longer names the file pvboot created and wrote
    with pytest.raises(GuestDataError, match="no longer the kernel file"):
        created_file(files, "kernel")
    files.discard()
