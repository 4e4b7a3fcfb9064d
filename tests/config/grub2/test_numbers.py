"""grub_strtoull (config/grub2/numbers.py)."""

from __future__ import annotations

from pvboot.config.grub2.numbers import GrubErr, strtoull, to_int


def test_strtoull_like_grub() -> None:
    assert strtoull("0x1f") == (31, 4, 0)
    assert strtoull("017") == (15, 3, 0)
    assert strtoull("08") == (8, 2, 0)
    assert strtoull("  12abc", 10) == (12, 4, 0)
    assert strtoull("abc") == (0, 0, GrubErr.BAD_NUMBER)
    assert strtoull("99999999999999999999")[2] == GrubErr.OUT_OF_RANGE


def test_to_int_keeps_a_c_int() -> None:
    assert [to_int(v) for v in (5, 0xFFFFFFFF, 0x1_0000_0003)] == [5, -1, 3]
