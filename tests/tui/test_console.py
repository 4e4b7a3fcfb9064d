"""The console menu in a real terminal (tmux, TERM=vt100): what the admin sees and what libxl gets."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tuihelp import ALICE_PW, ROOT_PW, Images, StartConsole, booted, stopped

import pvrun

ALPHA = ("/boot/vmlinuz-a", "root=/dev/xvda1 ro quiet", "/boot/initrd-a")


def test_menu_shows_entries_and_submenu_and_down_down_enter_boots_the_third(console: StartConsole) -> None:
    run = console("menu")
    screen = run.wait_for("Gamma")
    lines = screen.splitlines()
    assert any(line.startswith(" |*Alpha") for line in lines), screen  # the default, highlighted
    assert "Advanced options for Alpha" in screen
    assert "Use the ^ and v keys to select which entry is highlighted." in screen
    run.keys("Down", "Down")
    assert any(line.startswith(" |*Gamma") for line in run.screen().splitlines())
    run.keys("Enter")
    booted(run.result(), "/boot/vmlinuz-g", "root=/dev/xvda1 ro gamma")


def test_submenu_enter_esc_and_its_second_entry(console: StartConsole) -> None:
    run = console("menu")
    run.wait_for("Gamma")
    run.keys("Down", "Enter")
    screen = run.wait_for("Alpha (recovery mode)")
    assert "ESC to return previous" in screen
    assert "Gamma" not in screen
    run.keys("Escape")
    run.wait_for("Gamma")
    run.keys("Enter")  # the submenu again (the highlight stayed on it)
    run.wait_for("Beta")
    run.keys("Down", "Enter")
    booted(run.result(), "/boot/vmlinuz-b", "root=/dev/xvda1 ro beta", "/boot/initrd-b")


def test_edit_ctrl_e_append_ctrl_x_boots_the_edited_entry(console: StartConsole) -> None:
    run = console("menu")
    run.wait_for("Gamma")
    run.keys("e")
    screen = run.wait_for("setparams 'Alpha'")
    assert "linux /boot/vmlinuz-a root=/dev/xvda1 ro quiet" in screen
    assert "Press Ctrl-x or F10" in screen.replace("\n", " ").replace("      ", " ")
    run.keys("C-e")
    run.type(" edited=1")
    run.wait_for("ro quiet edited=1")
    run.keys("C-x")
    booted(run.result(), ALPHA[0], ALPHA[1] + " edited=1", ALPHA[2])


def test_editor_keys_and_esc_discards(console: StartConsole) -> None:
    run = console("menu")
    run.wait_for("Gamma")
    run.keys("e")
    run.wait_for("setparams 'Alpha'")
    run.keys("End", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace")  # drop " quiet"
    time.sleep(0.3)
    assert "ro quiet" not in run.screen() and "xvda1 ro " in run.screen()
    run.keys("Escape")  # discard: back to the menu, the entry unchanged
    run.wait_for("Gamma")
    run.keys("e")
    run.wait_for("ro quiet")
    run.keys("Home", "C-k")  # kill the linux line's text, then write another
    run.type("linux /boot/vmlinuz-g single")
    run.keys("Down", "C-a", "C-k")  # and the initrd line's
    run.wait_for("linux /boot/vmlinuz-g single")
    run.keys("F10")
    booted(run.result(), "/boot/vmlinuz-g", "single")


def test_countdown_boots_the_default_untouched(console: StartConsole) -> None:
    run = console("countdown")
    screen = run.wait_for("executed automatically in")
    assert "The highlighted entry will be executed automatically in " in screen
    assert any(line.startswith(" |*Advanced options for Alpha") for line in screen.splitlines()), screen
    # the default is `advanced>beta`: exactly what -q boots, with GRUB's rules
    booted(run.result(timeout=8), "/boot/vmlinuz-b", "root=/dev/xvda1 ro beta", "/boot/initrd-b")


def test_any_key_stops_the_countdown(console: StartConsole) -> None:
    run = console("countdown")
    run.wait_for("executed automatically in")
    run.keys("Up")
    time.sleep(2.6)
    screen = run.screen()
    assert "executed automatically" not in screen
    assert any(line.startswith(" |*Alpha") for line in screen.splitlines()), screen
    assert not (run.work / "rc").exists()
    run.keys("Enter")
    booted(run.result(), *ALPHA)


def test_hidden_timeout_esc_shows_the_menu_without_countdown(console: StartConsole) -> None:
    run = console("hidden")
    time.sleep(0.8)
    assert run.screen().strip() == ""  # hidden: nothing drawn
    run.keys("Escape")
    screen = run.wait_for("Gamma")
    assert "executed automatically" not in screen
    assert any(line.startswith(" |*Gamma") for line in screen.splitlines()), screen  # default=gamma
    run.keys("Enter")
    booted(run.result(), "/boot/vmlinuz-g", "root=/dev/xvda1 ro gamma")


def test_countdown_style_shows_seconds_and_a_hotkey_boots(console: StartConsole) -> None:
    run = console("quiet-countdown")
    screen = run.wait_for("30")
    assert "Alpha" not in screen
    run.keys("x")  # not a hotkey: ignored
    run.keys("t")  # --hotkey=t
    booted(run.result(), "/boot/vmlinuz-t", "root=/dev/xvda1 ro long")


def test_guest_strings_are_sanitised_cut_and_degraded(console: StartConsole) -> None:
    run = console("menu")
    screen = run.wait_for("Gamma")
    title = run.tmux("display-message", "-p", "-t", "pv", "#{pane_title}")
    assert "pwned" not in title  # the OSC title sequence never reached the terminal
    lines = screen.splitlines()
    long = next(line for line in lines if "Tres long" in line)  # vt100: no UTF-8, the accent drops
    assert long.rstrip(" |").endswith("...") and len(long) <= 80
    evil = next(line for line in lines if "Evil" in line)
    assert "[2J" in evil and "red" in evil  # shown as text, ESC and BEL as spaces
    assert all(ch.isprintable() for ch in screen.replace("\n", ""))
    run.keys("End", "Enter")  # the last entry is a Xen (multiboot2) entry: refused, back to the menu
    run.wait_for("Press any key to continue")
    assert "cannot boot as a PV guest" in run.screen()
    run.keys("space")
    run.wait_for("Gamma")
    run.keys("Home", "Enter")
    booted(run.result(), *ALPHA)


def test_command_line_runs_grub_commands_and_boots(console: StartConsole) -> None:
    run = console("menu")
    run.wait_for("Gamma")
    run.keys("c")
    run.wait_for("grub>")
    run.type("ls")
    run.keys("Enter")
    run.wait_for("(hd0) (hd0,msdos1)")
    run.type("ls /boot/")
    run.keys("Enter")
    run.wait_for("vmlinuz-a")
    run.type("set greeting=hello; echo $greeting $root")
    run.keys("Enter")
    run.wait_for("hello hd0,msdos1")
    run.type("cat /boot/vmlinuz-g")
    run.keys("Enter")
    run.wait_for("PVBOOT-TEST-KERNEL:/boot/vmlinuz-g")
    run.type("linux /boot/vmlinuz-b console=hvc0")
    run.keys("Enter")
    run.type("initrd /boot/initrd-b")
    run.keys("Enter")
    run.type("boot")
    run.keys("Enter")
    booted(run.result(), "/boot/vmlinuz-b", "console=hvc0", "/boot/initrd-b")


def test_command_line_esc_returns_to_the_menu(console: StartConsole) -> None:
    run = console("menu")
    run.wait_for("Gamma")
    run.keys("c")
    run.wait_for("grub>")
    run.type("boot")  # nothing loaded: GRUB's error, stays at the prompt
    run.keys("Enter")
    run.wait_for("grub>")
    run.keys("Escape")
    run.wait_for("Gamma")
    run.keys("Down", "Down", "Enter")
    booted(run.result(), "/boot/vmlinuz-g", "root=/dev/xvda1 ro gamma")


def test_ctrl_c_leaves_no_files_and_a_sane_terminal(console: StartConsole) -> None:
    run = console("menu")
    run.wait_for("Gamma")
    run.keys("Down", "C-c")
    result = run.result()
    stopped(result)
    assert result.code == 130 and result.stderr == "pvboot: RuntimeError: interrupted\n"


def test_sigterm_mid_menu_leaves_no_files_and_a_sane_terminal(console: StartConsole) -> None:
    run = console("menu")
    run.wait_for("Gamma")
    run.keys("e")
    run.wait_for("setparams")
    os.kill(run.pvboot_pid(), signal.SIGTERM)
    result = run.result()
    stopped(result)
    assert "SIGTERM" in result.stderr and result.stderr.count("\n") == 1


def test_hangup_mid_menu_leaves_no_files(console: StartConsole) -> None:
    """The console's pty goes away (the domain died, xenconsoled closed it): SIGHUP, files removed."""
    run = console("menu")
    run.wait_for("Gamma")
    pid = run.pvboot_pid()
    assert len(list(run.out.iterdir())) == 2  # the output files exist while the menu shows
    run.tmux("kill-session", "-t", "pv")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("pvboot still runs after the hang-up")
    assert list(run.out.iterdir()) == [] and run.answer.read_bytes() == b""


def test_utf8_terminal_shows_non_ascii(console: StartConsole) -> None:
    run = console("menu", env={"TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
    screen = run.wait_for("Gamma")
    line = next(line for line in screen.splitlines() if "Tr\u00e8s long" in line)
    assert line.rstrip(" \u2502").endswith("\u2026")
    assert "\u250c" in screen  # box drawing
    run.keys("Down", "Down", "Down", "Enter")
    booted(run.result(), "/boot/vmlinuz-t", "root=/dev/xvda1 ro long")


def test_40x12_terminal(console: StartConsole) -> None:
    run = console("menu", width=40, height=12)
    screen = run.wait_for("Alpha")
    assert all(len(line) <= 40 for line in screen.splitlines())
    assert "*Alpha" in screen
    run.keys("Down", "Enter")
    run.wait_for("Beta")
    run.keys("Down", "Enter")
    booted(run.result(), "/boot/vmlinuz-b", "root=/dev/xvda1 ro beta", "/boot/initrd-b")


def test_resize_mid_menu(console: StartConsole) -> None:
    run = console("menu")
    run.wait_for("Gamma")
    run.keys("Down")
    run.tmux("resize-window", "-t", "pv", "-x", "40", "-y", "12")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        screen = run.screen()
        if "*Advanced" in screen and all(len(line) <= 40 for line in screen.splitlines()):
            break
        time.sleep(0.05)
    assert "*Advanced" in screen, screen
    run.tmux("resize-window", "-t", "pv", "-x", "100", "-y", "30")
    run.wait_for("for a command-line.")
    run.keys("Down", "Enter")
    booted(run.result(), "/boot/vmlinuz-g", "root=/dev/xvda1 ro gamma")


def test_passwords_superuser_users_unrestricted(console: StartConsole) -> None:
    run = console("password")
    run.wait_for("For alice")
    run.keys("Down", "Enter")  # Locked: superusers only
    run.wait_for("Enter username:")
    run.type("root")
    run.keys("Enter")
    run.wait_for("Enter password:")
    run.type("wrong")
    run.keys("Enter")
    run.wait_for("error: access denied.", timeout=5)
    assert "wrong" not in run.screen()  # not echoed
    run.keys("Enter")
    run.wait_for("For alice")
    run.keys("Down", "Enter")  # For alice: alice may
    run.wait_for("Enter username:")
    run.type("alice")
    run.keys("Enter")
    run.type(ALICE_PW)
    run.keys("Enter")
    booted(run.result(), "/boot/vmlinuz-g", "alice")


def test_passwords_edit_needs_a_superuser(console: StartConsole) -> None:
    run = console("password")
    run.wait_for("For alice")
    run.keys("Down", "e")
    run.wait_for("Enter username:")
    run.type("root")
    run.keys("Enter")
    run.type(ROOT_PW)
    run.keys("Enter")
    run.wait_for("setparams 'Locked'")
    run.keys("C-e")
    run.type(" edited=1")
    run.keys("C-x")
    booted(run.result(), "/boot/vmlinuz-b", "locked edited=1")


def test_passwords_unrestricted_entry_needs_none(console: StartConsole) -> None:
    run = console("password")
    run.wait_for("For alice")
    run.keys("Enter")
    booted(run.result(), "/boot/vmlinuz-a", "open")


def _no_tty_boot(images: Images, tmp_path: Path, close_stdin: bool) -> None:
    out = tmp_path / "out"
    out.mkdir()
    env = pvrun.environment({"TERM": "vt100"})
    argv = pvrun.command("-i", "--output-format=simple0", f"--output-directory={out}", str(images("menu")))
    proc = subprocess.run(
        argv,
        stdin=None if close_stdin else subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=20,
        check=False,
        preexec_fn=(lambda: os.close(0)) if close_stdin else None,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"args root=/dev/xvda1 ro quiet\0" in proc.stdout
    assert sorted(p.name.split(".")[0] for p in out.iterdir()) == ["boot_kernel", "boot_ramdisk"]


def test_no_terminal_never_blocks_and_boots_the_default(images: Images, tmp_path: Path) -> None:
    """-i with stdin not a tty (the timeout=-1 menu would wait for ever): the default boots at once."""
    _no_tty_boot(images, tmp_path, close_stdin=False)


def test_closed_stdin_boots_the_default(images: Images, tmp_path: Path) -> None:
    _no_tty_boot(images, tmp_path, close_stdin=True)
