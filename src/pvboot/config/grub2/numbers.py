"""GRUB's number parsing (kern/misc.c grub_strtoull, and the C casts its callers apply).

Every GRUB 2 command pvboot implements that reads a number (break, shift, return, test, regexp, the
`fallback` list) goes through `strtoull`, so that all of them accept and reject the same text.
"""

from __future__ import annotations

from enum import IntEnum


class GrubErr(IntEnum):
    """The grub_err_t numbers that end up in $?."""

    NONE = 0
    TEST_FAILURE = 1
    FILE_NOT_FOUND = 5
    BAD_FILENAME = 7
    BAD_NUMBER = 10
    OUT_OF_RANGE = 11
    UNKNOWN_DEVICE = 12
    UNKNOWN_COMMAND = 16
    INVALID_COMMAND = 17
    BAD_ARGUMENT = 18


ULL_MAX = (1 << 64) - 1
ERRMSG = {GrubErr.BAD_NUMBER: "unrecognized number", GrubErr.OUT_OF_RANGE: "overflow is detected"}


def strtoull(s: str, base: int = 0) -> tuple[int, int, int]:
    """grub_strtoull: (value, index where parsing stopped, grub_errno it would set or 0)."""
    i, n = 0, len(s)
    while i < n and s[i] in " \t\n\r":
        i += 1
    if s[i : i + 1] == "0":
        if s[i + 1 : i + 2] == "x":
            if base in (0, 16):
                base, i = 16, i + 2
        elif base == 0 and "0" <= s[i + 1 : i + 2] <= "7" and s[i + 1 : i + 2]:
            base = 8
    base = base or 10
    num, found = 0, False
    while i < n:
        c = s[i]
        if "0" <= c <= "9":
            digit = ord(c) - 48
        elif "a" <= c.lower() <= "z" and c.isascii():
            digit = ord(c.lower()) - 87
        else:
            break
        if digit >= base:
            break
        found = True
        if num > (ULL_MAX - digit) // base:
            return ULL_MAX, i, GrubErr.OUT_OF_RANGE
        num = num * base + digit
        i += 1
    if not found:
        return 0, i, GrubErr.BAD_NUMBER
    return num, i, 0


def to_int(value: int) -> int:
    """What a C `int` (a grub_err_t, test's grub_strtosl) keeps of an unsigned long."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def strtoul(s: str) -> tuple[int | None, int]:
    """i386-pc's grub_strtoul(s, &end, 0) as its callers keep it in an `int`: (the number, or None when
    there is none, -1 past 32 bits; the index where parsing stopped)."""
    number, end, err = strtoull(s, 0)
    if err == GrubErr.BAD_NUMBER:
        return None, end
    if err or number > 0xFFFFFFFF:
        return -1, end
    return to_int(number), end
