"""`ls` (config/grub2/commands/ls.py)."""

from __future__ import annotations

from pvboot.config.grub2.commands.ls import human_size


def test_human_size() -> None:
    assert [human_size(n) for n in (1023, 1536, 3 << 20)] == ["1023", "1.50K", "3.00M"]
