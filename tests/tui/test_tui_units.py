"""The console's menu logic without a terminal (tui/console.py's Session on a scripted screen) and the
command line's `ls`/`cat`."""

from __future__ import annotations

from typing import Any

import pytest
from tuihelp import Images

from diskbuild import LEGACY, NoFiles
from pvboot.config.grub_legacy import grub_legacy_menu
from pvboot.config.legacyauth import legacy_auth
from pvboot.errors import GuestDataError
from pvboot.tui import keys
from pvboot.tui.console import Session
from pvboot.tui.text import Charset
from pvboot.tui.tty import Abort

ASCII, UTF8 = Charset(False), Charset(True)


# -- the menu logic on a scripted screen ----------------------------------------------------------------


class ScriptedScreen:
    """Screen's interface: keys from a script, drawing into a grid."""

    def __init__(self, script: list[str], width: int = 80, height: int = 24) -> None:
        self.script = list(script)
        self.width, self.height = width, height
        self.charset = ASCII
        self.grid = [[" "] * width for _ in range(height)]
        self.shown: list[str] = []

    def key(self, timeout_ms: int = -1) -> str | None:
        if not self.script:
            raise AssertionError("the console wanted more keys; screen:\n" + "\n".join(self.shown[-1:]))
        return self.script.pop(0)

    def erase(self) -> None:
        self.grid = [[" "] * self.width for _ in range(self.height)]

    def put(self, y: int, x: int, text: str, reverse: bool = False) -> None:
        for i, ch in enumerate(self.charset.clean(text)):
            if 0 <= y < self.height and 0 <= x + i < self.width:
                self.grid[y][x + i] = ch

    def cursor(self, y: int, x: int) -> None:
        pass

    def show_cursor(self, visible: bool) -> None:
        pass

    def refresh(self) -> None:
        self.shown.append("\n".join("".join(row) for row in self.grid))


class FakeChild:
    done = False

    def __init__(self, fail_paths: tuple[tuple[int, ...], ...] = ()) -> None:
        self.asked: list[dict[str, Any]] = []
        self.fail_paths = fail_paths

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.asked.append(message)
        if message.get("op") == "boot" and tuple(message.get("path") or ()) in self.fail_paths:
            raise GuestDataError("it loads no kernel")
        return {"type": "extracted", "asked": message}


def legacy_menu_reply() -> dict[str, Any]:
    menu = grub_legacy_menu(LEGACY, NoFiles(), "/boot/grub/menu.lst")
    reply = {
        "type": "menu",
        "source": "/boot/grub/menu.lst",
        "timeout": None,
        "timeout_style": "menu",
        "entries": [e.to_json() for e in menu.entries],
        "superusers": None,
        "passwords": {},
        "default": {"path": [0], "titles": ["one"], "reasons": []},
    }
    reply.update(legacy_auth(menu))
    return reply


def run_session(menu: dict[str, Any], script: list[str], child: FakeChild | None = None) -> dict[str, Any]:
    screen = ScriptedScreen(script)
    session = Session(screen, child or FakeChild(), 5.0, menu)  # type: ignore[arg-type]
    session.auth.punishment = 0.0
    return session.run()


def test_legacy_entry_password_and_lock() -> None:
    menu = legacy_menu_reply()
    typed = [*"secret", keys.ENTER]
    # entry "two": --users legacy (a login), then its own password (no user name)
    reply = run_session(
        menu, [keys.DOWN, keys.ENTER, *"legacy", keys.ENTER, *typed, *"topsecret", keys.ENTER]
    )
    assert reply["asked"] == {"op": "boot", "path": [1]}
    # entry "three" is the last: unrestricted, but `lock` asks for the legacy user
    reply = run_session(menu, [keys.END, keys.ENTER, *"legacy", keys.ENTER, *typed])
    assert reply["asked"] == {"op": "boot", "path": [2]}
    # a wrong entry password: refused, back to the menu
    script = [keys.DOWN, keys.ENTER, *"legacy", keys.ENTER, *typed, *"nope", keys.ENTER, " "]
    reply = run_session(menu, [*script, keys.UP, keys.ENTER, *"legacy", keys.ENTER, *typed])
    assert reply["asked"] == {"op": "boot", "path": [0]}


def test_failed_choice_returns_to_the_menu_and_ctrl_c_aborts() -> None:
    entries = [
        {"title": "broken", "users": None, "source": "", "boot": {}},
        {"title": "fine", "users": None, "source": "", "boot": {}},
    ]
    menu = {"entries": entries, "timeout": None, "default": {"path": [0]}, "superusers": None}
    child = FakeChild(fail_paths=((0,),))
    reply = run_session(menu, [keys.ENTER, " ", keys.DOWN, keys.ENTER], child)
    assert reply["asked"] == {"op": "boot", "path": [1]}
    with pytest.raises(Abort):
        run_session(menu, [keys.DOWN, keys.CTRL_C])


def test_navigation_keys_and_hotkeys() -> None:
    entries = [{"title": f"entry {i}", "users": None, "hotkey": "x" if i == 7 else None} for i in range(25)]
    menu = {"entries": entries, "timeout": None, "default": {"path": [3]}}
    moves = [keys.PGDN, keys.PGDN, keys.PGDN, keys.PGUP, keys.HOME, keys.END, "^", "^", "v", keys.UP]
    script = [*moves, keys.CTRL_G, keys.DOWN, keys.CTRL_N, keys.CTRL_P, keys.RIGHT]
    assert run_session(menu, script)["asked"] == {"op": "boot", "path": [13]}
    assert run_session(menu, [keys.DOWN, "x"])["asked"] == {"op": "boot", "path": [7]}
    assert run_session(menu, [keys.ESC, keys.CTRL_E, keys.CTRL_A, keys.CTRL_F])["asked"]["path"] == [0]


def test_submenu_default_path_and_escape() -> None:
    sub = [{"title": "s0", "users": None}, {"title": "s1", "users": None}, {"title": "s2", "users": None}]
    entries = [{"title": "top", "users": None}, {"title": "sub", "users": None, "submenu": sub}]
    menu = {"entries": entries, "timeout": None, "default": {"path": [1, 2]}}
    # the submenu opens on the default's child; Esc leaves it; entering again starts there again
    script = [keys.ENTER, keys.UP, keys.ESC, keys.ENTER, keys.ENTER]
    assert run_session(menu, script)["asked"] == {"op": "boot", "path": [1, 2]}
    menu["default"] = {"path": [0]}
    assert run_session(menu, [keys.DOWN, keys.ENTER, keys.ENTER])["asked"] == {"op": "boot", "path": [1, 0]}


def test_timeout_zero_boots_the_default_without_a_key() -> None:
    menu = {
        "entries": [{"title": "a", "users": None}],
        "timeout": 0,
        "default": {"path": [0], "titles": ["a"]},
    }
    assert run_session(menu, [])["asked"] == {"op": "boot", "entry": None}


# -- ls and cat -------------------------------------------------------------------------------------


def test_ls_and_cat_at_the_command_line(images: Images) -> None:
    from diskbuild import marker_initrd, marker_kernel
    from pvboot.limits import Limits
    from pvboot.reader import GuestSession, OutputFds
    from pvboot.sandbox.protocol import CommandRequest

    session = GuestSession(str(images("menu")), Limits(), OutputFds(None, None))

    def out(line: str) -> str:
        return session.command(CommandRequest(line)).output

    assert out("ls") == "(hd0) (hd0,msdos1) \n"
    assert out("ls (hd0,msdos1)").startswith("\tPartition hd0,msdos1: Filesystem type ext*, UUID 5a1e0b2c")
    assert "Partition start at 1024KiB - Total size " in out("ls (hd0,1)")
    assert out("ls (hd0)").startswith("Device hd0: No known filesystem detected - Sector size 512B")
    assert set(out("ls /boot").split()) >= {"grub/", "vmlinuz-a", "initrd-a"}
    size = len(marker_kernel("/boot/vmlinuz-a"))  # the stand-in kernel's own size, padded as GRUB pads it
    assert "DIR         grub/\n" in out("ls -l /boot/") and f"{size:<12}vmlinuz-a\n" in out("ls -l /boot")
    assert out("ls /boot/vmlinuz-a") == "vmlinuz-a \n"
    assert out("ls /nope") == "error: file `/nope' not found.\n"
    assert out("ls (hd9)/") == "error: disk `hd9' not found.\n"
    assert out("cat (hd0,msdos1)/boot/initrd-b") == marker_initrd("/boot/initrd-b").decode()
    assert out("cat /boot") == "error: not a regular file.\n"
    assert out("cat") == "error: filename expected.\n"
    assert out("set root=hd0,msdos1; cat /boot/grub/grub.cfg").startswith("set default=0\n")
