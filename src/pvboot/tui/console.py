"""The console menu: GRUB 2's text menu (normal/menu.c run_menu, menu_text.c) on libxl's pty.

Flow, as GRUB's:
- `timeout_style=countdown|hidden` with a timeout: first a quiet wait (countdown shows only the seconds
  left). Esc or F4 shows the menu (without a countdown), an entry's hotkey boots it, other keys are
  ignored; when the time is up the default boots. A missing timeout (GRUB's -1) means style `menu`.
- `timeout=0`: the default boots without drawing anything.
- The menu: the default highlighted, "The highlighted entry will be executed automatically in Ns." while
  counting; any key stops the countdown. Up/Down/Ctrl-p/Ctrl-n/^/v, PgUp/PgDn (10 entries), Home/End;
  Enter (or Right, Ctrl-f) boots the entry or enters the submenu, Esc leaves a submenu; `e` edits, `c`
  opens the command line; an entry's --hotkey boots it. Ctrl-c stops pvboot (GRUB: page down).
- The default boots on timeout exactly as without a terminal (with GRUB's fallbacks); a chosen or edited
  entry boots as chosen. A failed boot shows GRUB's error and "Press any key to continue..." and returns
  to the menu; when the timeout's default fails and nobody presses a key, pvboot fails as it would
  without a terminal rather than wait for ever.
- Access (normal/auth.c): with `superusers` set, editing and the command line need a superuser, an entry
  needs one of its --users or a superuser, --unrestricted entries anyone.
- Unlike GRUB, no wait for a key lasts longer than --max-menu-wait (600 s by default) since the last key:
  then the default boots, as when a countdown ends. A guest's `timeout=-1` would otherwise hold the
  guest (and pvboot, as root) on a console nobody watches for ever; libxl's default mode has no timeout.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from pvboot import __version__
from pvboot.errors import PvbootError
from pvboot.tui import keys, layout
from pvboot.tui.auth import Auth, check_secret, entry_users
from pvboot.tui.cmdline import CommandLine
from pvboot.tui.editor import BOOT, CANCEL, COMMAND_LINE, Editor
from pvboot.tui.page import arrows, frame
from pvboot.tui.screen import Idle, Screen
from pvboot.tui.tty import Abort, Tty

PAGE = 10  # GRUB_MENU_PAGE_SIZE
Entry = dict[str, Any]


class ChildLike(Protocol):
    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]: ...


class Session:
    """One run of the console menu against the confined child."""

    def __init__(
        self,
        screen: Screen,
        child: ChildLike,
        timeout: float,
        menu: dict[str, Any],
        default: dict[str, Any] | None = None,
        max_wait: float | None = None,
    ) -> None:
        self.screen = screen
        if max_wait is not None:
            screen.limit_idle(max_wait)  # (from now: the menu is about to be shown)
        self.default_request = default or {"op": "boot", "entry": None}
        self.child = child
        self.wall_timeout = timeout
        self.menu = menu
        self.entries: list[Entry] = list(menu.get("entries") or [])
        self.default_path: list[int] = [int(i) for i in (menu.get("default") or {}).get("path") or [0]]
        self.auth = Auth(menu.get("superusers"), menu.get("passwords") or {})
        self.entry_auth: dict[str, dict[str, Any]] = dict(menu.get("entry_auth") or {})
        self.tty = Tty(screen)
        self.cmdline = CommandLine(self.tty, self)
        self.title = f"pvboot {__version__}: {menu.get('source') or 'boot menu'}"

    # -- the child
    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        return self.child.request(message, self.wall_timeout)

    def child_gone(self) -> bool:
        """After a failed request: True when the child was stopped (a limit), so nothing more can be
        asked and the error must end pvboot."""
        return bool(getattr(self.child, "done", False))

    def boot_request(
        self, message: dict[str, Any], title: str, tty: Tty, auto: bool = False
    ) -> dict[str, Any] | None:
        """Ask the child to boot; None (after showing why) when it could not. A failed automatic boot
        that nobody acknowledges re-raises: without a human there, pvboot fails as `-q` would."""
        tty.clear()
        tty.write(f"  Booting `{title}'\n\n")
        tty.draw()
        try:
            return self.ask(message)
        except PvbootError as exc:
            if self.child_gone():
                raise
            tty.write(f"error: {exc}.\n")
            if auto:
                tty.write("\n  Failed to boot both default and fallback entries.\n")
            if not tty.wait_after_message() and auto:
                raise
            return None

    # -- access
    def authenticate(self, userlist: str | None) -> bool:
        """grub_auth_check_authentication: ask for a user name and password unless already allowed."""
        if self.auth.allowed(userlist):
            self.auth.succeeded()
            return True
        tty = self.tty
        tty.clear()
        user = tty.read_line("Enter username: ")
        password = tty.read_line("Enter password: ", echo=False) if user is not None else None
        if user is not None and password is not None:
            self.auth.login(user, password)
            if self.auth.allowed(userlist):
                self.auth.succeeded()
                return True
        tty.draw()
        time.sleep(self.auth.failed())
        tty.write("error: access denied.\n")
        tty.wait_after_message()
        return False

    def _legacy_password(self, secret: list[str]) -> bool:
        """legacy_check_password: the entry's own password, no user name, logs no one in."""
        tty = self.tty
        tty.clear()
        entered = tty.read_line("Enter password: ", echo=False)
        if entered is not None and len(secret) == 2 and check_secret(secret[0], secret[1], entered):
            return True
        tty.write("error: access denied.\n")
        tty.wait_after_message()
        return False

    def may_run(self, entry: Entry, path: list[int]) -> bool:
        restricted, users = entry_users(entry)
        if restricted and not self.authenticate(users):
            return False
        rules = self.entry_auth.get(str(path[0])) if len(path) == 1 else None
        if rules:
            if rules.get("lock") and not self.authenticate("legacy"):
                return False
            if rules.get("password") and not self._legacy_password(list(rules["password"])):
                return False
        return True

    # -- the flow
    def run(self) -> dict[str, Any]:
        """The boot reply of what was chosen; the default's when nobody pressed a key for max_wait."""
        try:
            return self._run()
        except Idle:
            self.screen.limit_idle(None)  # (the boot's own error message may wait for a key)
            reply = self._auto_boot()
            if reply is None:  # it failed and someone pressed a key: fail as -q would, not wait again
                raise PvbootError("the default entry failed to boot") from None
            return reply

    def _run(self) -> dict[str, Any]:
        if not self.entries:
            return self.ask(self.default_request)  # the child says what is wrong
        timeout = self.menu.get("timeout")
        timeout = int(timeout) if isinstance(timeout, int) and timeout >= 0 else None
        style = str(self.menu.get("timeout_style") or "menu") if timeout is not None else "menu"
        if style in ("countdown", "hidden") and timeout is not None:
            outcome, index = self._quiet_wait(timeout, style == "countdown")
            if outcome == "hotkey" and index is not None:
                reply = self._choose(self.entries, [], index)
                if reply is not None:
                    return reply
                timeout = None
            elif outcome == "menu":
                timeout = None
            else:
                timeout = 0
        if timeout == 0:
            reply = self._auto_boot()
            if reply is not None:
                return reply
            timeout = None
        while True:
            reply = self._menu(self.entries, [], timeout)
            if reply is not None:
                return reply
            timeout = None

    def _auto_boot(self) -> dict[str, Any] | None:
        titles = (self.menu.get("default") or {}).get("titles") or []
        return self.boot_request(self.default_request, " > ".join(map(str, titles)), self.tty, True)

    def _hotkey(self, entries: list[Entry], key: str) -> int | None:
        for index, entry in enumerate(entries):
            if keys.hotkey_of(entry.get("hotkey")) == key:
                return index
        return None

    def _quiet_wait(self, timeout: int, countdown: bool) -> tuple[str, int | None]:
        """GRUB's interruptible sleep before the menu: ("default"|"menu"|"hotkey", hotkey index)."""
        remaining = timeout
        tick = time.monotonic() + 1
        while remaining > 0:
            self.screen.erase()
            if countdown:
                self.screen.put(0, 0, f"{remaining}    ")
                self.screen.cursor(0, len(str(remaining)))
            self.screen.refresh()
            key = self.screen.key(max(1, int((tick - time.monotonic()) * 1000)))
            if key == keys.CTRL_C:
                raise Abort()
            if key is not None and key != keys.RESIZE:
                index = self._hotkey(self.entries, key)
                if index is not None:
                    return "hotkey", index
                if key in (keys.ESC, keys.F4):
                    return "menu", None
            if time.monotonic() >= tick:
                remaining -= 1
                tick += 1
        return "default", None

    def _start_index(self, entries: list[Entry], prefix: list[int]) -> int:
        path = self.default_path
        index = path[len(prefix)] if path[: len(prefix)] == prefix and len(path) > len(prefix) else 0
        return index if 0 <= index < len(entries) else 0

    def _menu(self, entries: list[Entry], prefix: list[int], timeout: int | None) -> dict[str, Any] | None:
        """run_menu for one level; None when Esc leaves a submenu (or after a failed automatic boot)."""
        if not entries:
            return None
        nested = bool(prefix)
        view = MenuView(self.screen, self.title, nested)
        current = self._start_index(entries, prefix)
        remaining = timeout
        tick = time.monotonic() + 1
        while True:
            view.draw(entries, current, remaining)
            if remaining is not None and remaining <= 0:
                return self._auto_boot()
            wait = max(1, int((tick - time.monotonic()) * 1000)) if remaining is not None else -1
            key = self.screen.key(wait)
            if remaining is not None and time.monotonic() >= tick:
                remaining -= 1
                tick += 1
            if key is None or key == keys.RESIZE:
                continue
            remaining = None  # any key stops the countdown
            if key == keys.CTRL_C:
                raise Abort()
            if key in (keys.HOME, keys.CTRL_A):
                current = 0
            elif key in (keys.END, keys.CTRL_E):
                current = len(entries) - 1
            elif key in (keys.UP, keys.CTRL_P, "^"):
                current = max(0, current - 1)
            elif key in (keys.DOWN, keys.CTRL_N, "v"):
                current = min(len(entries) - 1, current + 1)
            elif key in (keys.PGUP, keys.CTRL_G):
                current = max(0, current - PAGE)
            elif key == keys.PGDN:
                current = min(len(entries) - 1, current + PAGE)
            elif key in (keys.ENTER, keys.RIGHT, keys.CTRL_F):
                reply = self._choose(entries, prefix, current)
                if reply is not None:
                    return reply
            elif key == keys.ESC:
                if nested:
                    return None
            elif key == "c":
                if self.authenticate(None):
                    reply = self.cmdline.run()
                    if reply is not None:
                        return reply
            elif key == "e":
                reply = self._edit(entries[current], [*prefix, current])
                if reply is not None:
                    return reply
            else:
                index = self._hotkey(entries, key)
                if index is not None:
                    reply = self._choose(entries, prefix, index)
                    if reply is not None:
                        return reply

    def _choose(self, entries: list[Entry], prefix: list[int], index: int) -> dict[str, Any] | None:
        """Enter a submenu or boot an entry (grub_menu_execute_entry), after the access checks."""
        entry = entries[index]
        path = [*prefix, index]
        if not self.may_run(entry, path):
            return None
        if "submenu" in entry:
            children = list(entry.get("submenu") or [])
            return self._menu(children, path, None) if children else None
        return self.boot_request({"op": "boot", "path": path}, str(entry.get("title", "")), self.tty)

    def _edit(self, entry: Entry, path: list[int]) -> dict[str, Any] | None:
        """grub_menu_entry_run: superusers only; Ctrl-x boots the edited text, F2 the command line."""
        if not self.authenticate(None):
            return None
        editor = Editor(self.screen, str(entry.get("source", "")), self.title)
        while True:
            action, text = editor.run()
            if action == CANCEL:
                return None
            if action == COMMAND_LINE:
                reply = self.cmdline.run()
            elif action == BOOT and "submenu" in entry:
                self.tty.clear()
                self.tty.write("error: an edited submenu cannot be booted; edit one of its entries.\n")
                self.tty.wait_after_message()
                reply = None
            elif action == BOOT:
                message = {"op": "boot", "path": path, "source": text}
                reply = self.boot_request(message, str(entry.get("title", "")), self.tty)
            else:
                reply = None
            if reply is not None:
                return reply


class MenuView:
    """Draws one menu level; keeps the first shown entry between draws, as menu_text.c does."""

    def __init__(self, screen: Screen, title: str, nested: bool) -> None:
        self.screen = screen
        self.title = title
        self.nested = nested
        self.first = 0

    def draw(self, entries: list[Entry], current: int, remaining: int | None) -> None:
        screen = self.screen
        charset = screen.charset
        helps = [
            layout.MENU_HELP.format(up=charset.up, down=charset.down),
            layout.NESTED_HELP_2 if self.nested else layout.MENU_HELP_2,
        ]
        geo = layout.compute(screen.width, screen.height, helps)
        if current < self.first:
            self.first = current
        elif current >= self.first + geo.rows:
            self.first = current - geo.rows + 1
        self.first = max(0, min(self.first, max(0, len(entries) - geo.rows)))
        screen.erase()
        frame(screen, geo, self.title)
        for row in range(geo.rows):
            index = self.first + row
            if index >= len(entries):
                break
            chosen = index == current
            marker = ("*" if chosen else " ") if geo.rows > 1 else ""
            text = marker + charset.fit(str(entries[index].get("title", "")), geo.entry_width - len(marker))
            text += " " * max(0, geo.entry_width - charset.width(text))
            screen.put(geo.first_y + row, geo.first_x, text, reverse=chosen)
        arrows(screen, geo, self.first > 0, self.first + geo.rows < len(entries))
        if remaining is not None and remaining > 0:
            for n, line in enumerate(layout.timeout_text(geo, remaining)[: geo.timeout_lines]):
                screen.put(geo.timeout_y + n, 0, line)
        screen.cursor(geo.first_y + current - self.first, geo.first_x + geo.entry_width)
        screen.refresh()
