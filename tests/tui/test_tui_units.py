"""The console's parts without a terminal: text cleaning, key decoding, GRUB's layout, the editor buffer,
password checks against GRUB's own tools, GRUB legacy's access rules, `ls`/`cat`, and the menu logic
driven through a scripted screen."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
from tuihelp import ROOT_PW, Images, pbkdf2_hash

from pvboot.config.grub_legacy import grub_legacy_menu
from pvboot.config.legacyauth import legacy_auth
from pvboot.errors import GuestDataError, NotFoundError
from pvboot.tui import keys, layout
from pvboot.tui.auth import Auth, check_md5crypt, check_pbkdf2, check_secret, strword
from pvboot.tui.console import Session
from pvboot.tui.editor import Buffer, kernel_line
from pvboot.tui.text import Charset, choose_charset, words_wrap
from pvboot.tui.tty import Abort

ASCII, UTF8 = Charset(False), Charset(True)


# -- text -------------------------------------------------------------------------------------------


def test_clean_removes_every_control_and_format_character() -> None:
    evil = "a\x1b[2Jb\x1b]0;t\x07c\x9b1md\u202e\u0435\x00\x7f\u200b"
    for charset in (ASCII, UTF8):
        shown = charset.clean(evil)
        assert len(shown) == len(evil)  # one cell per character
        assert all(ch.isprintable() for ch in shown)
        assert "\x1b" not in shown and "\x9b" not in shown and "\u202e" not in shown
    assert ASCII.clean("Très ñ 中") == "Tres n ?"
    assert UTF8.clean("Très ñ 中") == "Très ñ 中"


def test_fit_cuts_with_an_ellipsis() -> None:
    assert ASCII.fit("short", 10) == "short"
    assert ASCII.fit("a long title here", 10) == "a long ..."
    assert UTF8.fit("a long title here", 10) == "a long ti\u2026"
    assert UTF8.width(UTF8.fit("中文标题很长很长", 7)) <= 7
    assert ASCII.fit("abc", 0) == "" and ASCII.fit("abcdef", 2) == "ab"


def test_charset_choice() -> None:
    assert choose_charset("vt100", "UTF-8") == ASCII  # libxl's terminal: no UTF-8 whatever the locale
    assert choose_charset("xterm-256color", "UTF-8") == UTF8
    assert choose_charset("xterm", "ANSI_X3.4-1968") == ASCII


def test_words_wrap() -> None:
    assert words_wrap("aa bb cc", 5) == ["aa bb", "cc"]
    assert words_wrap("abcdefgh", 3) == ["abc", "def", "gh"]


# -- keys -------------------------------------------------------------------------------------------


def decode(data: bytes) -> list[str]:
    stream = list(data)

    def read(_ms: int) -> int | None:
        return stream.pop(0) if stream else None

    reader, out = keys.KeyReader(read), []
    while stream or reader._unread is not None:
        key = reader.get(0)
        if key is not None:
            out.append(key)
    return out


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x1b[A\x1bOB\x1b[C\x1bOD", [keys.UP, keys.DOWN, keys.RIGHT, keys.LEFT]),
        (
            b"\x1b[5~\x1b[6~\x1b[1~\x1b[4~\x1b[H\x1b[F\x1bOH\x1b[7~",
            ["PGUP", "PGDN", "HOME", "END", "HOME", "END", "HOME", "HOME"],
        ),
        (b"\x1b[21~\x1bOx\x1b[12~\x1bOQ\x1b[3~\x1bOS", ["F10", "F10", "F2", "F2", "DELETE", "F4"]),
        (b"\x1b[1;5A", [keys.UP]),
        (b"\x1b", [keys.ESC]),
        (b"\x1bx", [keys.ESC, "x"]),
        (b"\x1b\x1b[B", [keys.ESC, keys.DOWN]),
        (b"\r\n\x7f\x08\x05\x18", [keys.ENTER, keys.ENTER, keys.BACKSPACE, keys.BACKSPACE, "\x05", "\x18"]),
        ("é中".encode(), ["é", "中"]),
        (b"\xff\x80a", ["a"]),
    ],
)
def test_key_decoding(data: bytes, expected: list[str]) -> None:
    assert decode(data) == expected


def test_hotkeys() -> None:
    assert keys.hotkey_of("t") == "t"
    assert keys.hotkey_of("backspace") == keys.BACKSPACE
    assert keys.hotkey_of("f10") == keys.F10
    assert keys.hotkey_of("nonsense") is None and keys.hotkey_of(None) is None


# -- layout -----------------------------------------------------------------------------------------


def test_layout_80x24_is_grubs() -> None:
    geo = layout.compute(80, 24, [layout.MENU_HELP, layout.MENU_HELP_2])
    assert (geo.first_x, geo.first_y, geo.entry_width, geo.border, geo.title_y) == (2, 4, 75, True, 1)
    assert geo.rows == 12 and geo.help_y == 18 and len(geo.help_lines) == 3 and geo.timeout_y == 21
    assert layout.timeout_text(geo, 5) == ["   The highlighted entry will be executed automatically in 5s."]


@pytest.mark.parametrize(("width", "height"), [(40, 12), (50, 15), (30, 8), (132, 50), (10, 4)])
def test_layout_small_screens_fit(width: int, height: int) -> None:
    geo = layout.compute(width, height, [layout.MENU_HELP, layout.MENU_HELP_2])
    assert geo.rows >= 1
    assert geo.first_y + geo.rows <= height
    assert geo.first_x + geo.entry_width <= width
    assert geo.timeout_y + (1 if geo.timeout_lines else 0) <= height + 1
    if (width, height) == (40, 12):
        assert geo.rows >= 3 and layout.timeout_text(geo, 5) == ["   5s"]


# -- editor buffer ----------------------------------------------------------------------------------


def test_buffer_editing() -> None:
    buf = Buffer.of("setparams 'A'\n\tlinux /vmlinuz ro\n\tinitrd /initrd")
    buf.row = kernel_line(buf.lines)
    assert buf.row == 1
    buf.key(keys.CTRL_E)
    for ch in " x=1":
        buf.key(ch)
    assert buf.lines[1] == "\tlinux /vmlinuz ro x=1"
    buf.key(keys.CTRL_A)
    buf.key(keys.BACKSPACE)  # joins with the line above
    assert buf.lines[0] == "setparams 'A'\tlinux /vmlinuz ro x=1" and buf.col == len("setparams 'A'")
    buf.key(keys.ENTER)  # and splits again
    assert buf.lines[:2] == ["setparams 'A'", "\tlinux /vmlinuz ro x=1"]
    buf.key(keys.CTRL_K)
    buf.key(keys.CTRL_K)  # the line's text, then its newline: one kill
    assert buf.lines == ["setparams 'A'", "\tinitrd /initrd"]
    buf.key(keys.DOWN)
    buf.key(keys.END)
    buf.key(keys.ENTER)
    buf.key(keys.CTRL_Y)
    assert buf.text() == "setparams 'A'\n\tinitrd /initrd\n\tlinux /vmlinuz ro x=1\n"
    buf.key(keys.UP)
    buf.key(keys.UP)
    buf.key(keys.CTRL_O)  # opens a line before the cursor's text; the cursor stays
    assert buf.lines[1:3] == ["", "\tinitrd /initrd"] and (buf.row, buf.col) == (1, 0)
    buf.key(keys.DELETE)  # at the end of the empty line: joins the next
    assert buf.lines[1] == "\tinitrd /initrd"
    buf.key(keys.LEFT)  # at column 0: to the end of the line above
    assert (buf.row, buf.col) == (0, len("setparams 'A'"))
    buf.key(keys.RIGHT)
    assert (buf.row, buf.col) == (1, 0)


# -- passwords --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grub_hash() -> str:
    if shutil.which("grub-mkpasswd-pbkdf2") is None:
        pytest.skip("needs grub-mkpasswd-pbkdf2")
    return pbkdf2_hash(ROOT_PW)


def test_pbkdf2_against_grub_mkpasswd(grub_hash: str) -> None:
    assert check_pbkdf2(ROOT_PW, grub_hash)
    assert not check_pbkdf2(ROOT_PW + "x", grub_hash)
    assert not check_pbkdf2(ROOT_PW, grub_hash.replace(".1000.", ".99999999999."))  # bounded work
    assert not check_pbkdf2(ROOT_PW, "grub.pbkdf2.sha512.1000.zz.zz")


def test_md5crypt_against_openssl() -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    for password, salt in (("secret", "abcdefgh"), ("a password longer than sixteen chars", "xy"), ("", "s")):
        digest = subprocess.run(
            ["openssl", "passwd", "-1", "-salt", salt, password], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert check_md5crypt(password, digest)
        assert not check_md5crypt(password + "!", digest)
    assert not check_md5crypt("x", "$1$nohash") and not check_md5crypt("x", "$1$s$!!!!")


def test_secrets_and_access_rules() -> None:
    assert check_secret("plain", "pw", "pw") and not check_secret("plain", "pw", "pw2")
    assert not check_secret("deny", "", "") and not check_secret("unknown", "x", "x")
    assert strword("root, alice;bob|eve&mallory carol", "bob") and not strword("roots", "root")
    everyone = Auth(None, {})
    assert everyone.allowed(None) and everyone.allowed("")
    auth = Auth("root", {"root": ["plain", "r"], "alice": ["plain", "a"]})
    assert not auth.allowed("") and not auth.allowed("alice") and not auth.allowed(None)
    assert not auth.login("alice", "wrong") and auth.login("alice", "a")
    assert (
        auth.allowed("alice")
        and auth.allowed("bob,alice")
        and not auth.allowed("")
        and not auth.allowed(None)
    )
    assert auth.login("root", "r") and auth.allowed("") and auth.allowed(None) and auth.allowed("zed")
    nobody = Auth("", {"alice": ["plain", "a"]})  # superusers set but empty
    nobody.login("alice", "a")
    assert not nobody.allowed(None) and nobody.allowed("alice")
    assert [auth.failed(), auth.failed(), auth.failed()] == [1, 2, 4]


# -- GRUB legacy --------------------------------------------------------------------------------------


class NoFiles:
    def read(self, path: str) -> str:
        raise NotFoundError(path)

    def listdir(self, path: str) -> list[str]:
        raise NotFoundError(path)

    def exists(self, path: str) -> bool:
        return False


LEGACY = """timeout 5
password --md5 $1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1
title one
  kernel /vmlinuz-1 ro
title two
  password topsecret
  kernel /vmlinuz-2 ro
title three
  lock
  kernel /vmlinuz-3 ro
"""


def test_legacy_passwords_map_to_grub2_rules() -> None:
    fields = legacy_auth(grub_legacy_menu(LEGACY, NoFiles(), "/boot/grub/menu.lst"))
    assert fields == {
        "superusers": "legacy",
        "passwords": {"legacy": ["md5crypt", "$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1"]},
        "entry_auth": {"1": {"password": ["plain", "topsecret"]}, "2": {"lock": True}},
    }
    assert check_secret(*fields["passwords"]["legacy"], "secret")  # openssl passwd -1 -salt abcdefgh secret
    plain = legacy_auth(grub_legacy_menu("password pw\ntitle a\n kernel /k\n", NoFiles(), "/m"))
    assert plain["passwords"] == {"legacy": ["plain", "pw"]}
    odd = legacy_auth(grub_legacy_menu("password --encrypted x\ntitle a\n kernel /k\n", NoFiles(), "/m"))
    assert odd["passwords"] == {"legacy": ["deny", ""]}
    assert legacy_auth(grub_legacy_menu("title a\n kernel /k\n", NoFiles(), "/m")) == {}


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
