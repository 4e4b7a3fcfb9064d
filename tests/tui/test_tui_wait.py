"""--max-menu-wait: the host's bound on a console nobody answers. A guest's `set timeout=-1` makes GRUB wait
for ever; pvboot boots the default after that many seconds without a key (a deliberate difference from
GRUB: libxl's default mode gives the bootloader no timeout), and a key starts the wait again."""

from __future__ import annotations

import time

from tuihelp import StartConsole, booted

ALPHA = ("/boot/vmlinuz-a", "root=/dev/xvda1 ro quiet", "/boot/initrd-a")  # the `menu` image's default


def test_a_menu_that_waits_for_ever_boots_the_default_after_max_menu_wait(console: StartConsole) -> None:
    run = console("menu", extra=("--max-menu-wait=2",))
    run.wait_for("Gamma")
    shown = time.monotonic()
    result = run.result(timeout=15)
    assert time.monotonic() - shown >= 1.5
    booted(result, *ALPHA)


def test_a_key_restarts_the_wait_and_the_default_still_boots(console: StartConsole) -> None:
    """The highlight moved, then nobody chose: what boots is the default, as when a countdown ends."""
    run = console("menu", extra=("--max-menu-wait=3",))
    run.wait_for("Gamma")
    time.sleep(1.5)
    run.keys("Down", "Down")
    pressed = time.monotonic()
    time.sleep(1.5)  # past the first key's deadline, not past the last one's
    assert not (run.work / "rc").exists(), run.screen()
    result = run.result(timeout=15)
    assert time.monotonic() - pressed >= 2.5
    booted(result, *ALPHA)


def test_the_bound_covers_the_command_line_too(console: StartConsole) -> None:
    run = console("menu", extra=("--max-menu-wait=2",))
    run.wait_for("Gamma")
    run.keys("c")
    run.wait_for("grub>")
    booted(run.result(timeout=15), *ALPHA)


def test_zero_waits_as_grub_does(console: StartConsole) -> None:
    run = console("menu", extra=("--max-menu-wait=0",))
    run.wait_for("Gamma")
    time.sleep(3)
    assert not (run.work / "rc").exists()
    run.keys("Down", "Down", "Enter")
    booted(run.result(), "/boot/vmlinuz-g", "root=/dev/xvda1 ro gamma")
