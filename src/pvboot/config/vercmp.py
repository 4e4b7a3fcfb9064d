"""The version comparisons and the glob that decide which BLS entry boots, ported from their sources.

Fedora/RHEL GRUB's blscfg orders entries with its copy of rpm's rpmvercmp (grub-core/commands/blscfg.c:
vercmp, split_package_string, split_cmp); systemd-boot 252 with strverscmp_improved
(src/fundamental/string-util-fundamental.c) and matches loader.conf's `default` with efi_fnmatch
(src/boot/efi/efi-string.c). Small differences between these decide which kernel a guest boots, so each
is ported as written rather than approximated by a library.
"""

from __future__ import annotations

from typing import Any

_DIGITS = "0123456789"
_ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _isdigit(c: str) -> bool:
    return c != "" and c in _DIGITS


def _isalpha(c: str) -> bool:
    return c != "" and c in _ALPHA


def cmp(a: Any, b: Any) -> int:
    """C's three-way comparison: -1, 0 or 1."""
    return int(a > b) - int(a < b)


def rpmvercmp(a: str, b: str) -> int:
    """blscfg.c vercmp: 1 when `a` is newer, -1 when `b` is, 0 when equal."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        while i < la and not (_isdigit(a[i]) or _isalpha(a[i])) and a[i] not in "~+":
            i += 1
        while j < lb and not (_isdigit(b[j]) or _isalpha(b[j])) and b[j] not in "~+":
            j += 1
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        if ca == "~" or cb == "~":  # tilde sorts before everything else
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if ca == "+" or cb == "+":  # like tilde, but a base version sorts first
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "+":
                return 1
            if cb != "+":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        si, sj = i, j
        isnum = _isdigit(ca)
        test = _isdigit if isnum else _isalpha
        while i < la and test(a[i]):
            i += 1
        while j < lb and test(b[j]):
            j += 1
        one, two = a[si:i], b[sj:j]
        if not two:  # numeric segments are newer than alpha ones
            return 1 if isnum else -1
        if isnum:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        if one != two:
            return -1 if one < two else 1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def _split_nvr(text: str) -> tuple[str, str | None, str | None]:
    """split_package_string with a name: name-version-release split at the last two '-'."""
    release: str | None = None
    cut = text.rfind("-")
    if cut >= 0:
        text, release = text[:cut], text[cut + 1 :]
    version: str | None = None
    cut = text.rfind("-")
    if cut >= 0:
        text, version = text[:cut], text[cut + 1 :]
    if version is None:
        version, release = release, None
    return text, version, release


def blscfg_cmp(name0: str, name1: str) -> int:
    """blscfg.c bls_cmp on two entry file names (without .conf): 1 when name0 is newer."""
    n0, v0, r0 = _split_nvr(name0)
    n1, v1, r1 = _split_nvr(name1)
    return rpmvercmp(n0, n1) or rpmvercmp(v0 or "", v1 or "") or rpmvercmp(r0 or "", r1 or "")


def _is_version_char(c: str) -> bool:
    return _isdigit(c) or _isalpha(c) or c in ("~", "-", "^", ".")


def strverscmp_improved(a: str | None, b: str | None) -> int:
    """systemd's strverscmp_improved (NULL counts as ""): positive when `a` is newer."""
    a, b = a or "", b or ""
    i = j = 0
    la, lb = len(a), len(b)

    def at(s: str, k: int) -> str:
        return s[k] if k < len(s) else ""

    while True:
        while i < la and not _is_version_char(a[i]):
            i += 1
        while j < lb and not _is_version_char(b[j]):
            j += 1
        if at(a, i) == "~" or at(b, j) == "~":  # pre-releases are older
            r = cmp(at(a, i) != "~", at(b, j) != "~")
            if r:
                return r
            i, j = i + 1, j + 1
        if i >= la or j >= lb:
            return cmp(at(a, i), at(b, j))
        for sep in "-^.":
            if at(a, i) == sep or at(b, j) == sep:
                r = cmp(at(a, i) != sep, at(b, j) != sep)
                if r:
                    return r
                i, j = i + 1, j + 1
        if _isdigit(at(a, i)) or _isdigit(at(b, j)):
            ii, jj = i, j
            while _isdigit(at(a, ii)):
                ii += 1
            while _isdigit(at(b, jj)):
                jj += 1
            r = cmp(i != ii, j != jj)
            if r:
                return r
            while at(a, i) == "0":
                i += 1
            while at(b, j) == "0":
                j += 1
            r = cmp(ii - i, jj - j) or cmp(a[i:ii], b[j:jj])
            if r:
                return r
        else:
            ii, jj = i, j
            while _isalpha(at(a, ii)):
                ii += 1
            while _isalpha(at(b, jj)):
                jj += 1
            k = min(ii - i, jj - j)
            r = cmp(a[i : i + k], b[j : j + k]) or cmp(ii - i, jj - j)
            if r:
                return r
        i, j = ii, jj


def efi_fnmatch(pattern: str, haystack: str, max_depth: int = 32) -> bool:
    """systemd-boot's efi_fnmatch: '*', '?', '[...]' with ranges, '\\' escapes; no negation.
    Memoised so a hostile pattern costs at most len(pattern) * len(haystack) * depth steps."""
    memo: dict[tuple[int, int, int], bool] = {}

    def match(p: int, h: int, depth: int) -> bool:
        key = (p, h, depth)
        if key in memo:
            return memo[key]
        result = _match(p, h, depth)
        memo[key] = result
        return result

    def _match(p: int, h: int, depth: int) -> bool:
        if depth <= 0:
            return False
        while True:
            pc = pattern[p] if p < len(pattern) else ""
            hc = haystack[h] if h < len(haystack) else ""
            if pc == "":
                return hc == ""
            if pc == "\\":
                p += 1
                if p >= len(pattern) or pattern[p] != hc:
                    return False
            elif pc == "?":
                if hc == "":
                    return False
            elif pc == "*":
                while p < len(pattern) and pattern[p] == "*":
                    p += 1
                if p >= len(pattern):
                    return True
                return any(match(p, k, depth - 1) for k in range(h, len(haystack)))
            elif pc == "[":
                if hc == "":
                    return False
                ok, p = _bracket(p, hc)
                if not ok:
                    return False
            elif pc != hc:
                return False
            p += 1
            h += 1

    def _bracket(p: int, hc: str) -> tuple[bool, int]:
        first, can_range, found = True, True, False
        while True:
            p += 1
            if p >= len(pattern):
                return False, p
            c = pattern[p]
            if c == "\\":
                p += 1
                if p >= len(pattern):
                    return False, p
                if pattern[p] == hc:
                    found = True
                can_range = True
            elif c == "]" and not first:
                return found, p
            elif c == "-" and can_range and not first and pattern[p + 1 : p + 2] != "]":
                low = pattern[p - 1]
                p += 1
                if p < len(pattern) and pattern[p] == "\\":
                    p += 1
                if p >= len(pattern):
                    return False, p
                if low <= hc <= pattern[p]:
                    found = True
                can_range = False
            else:
                if c == hc:
                    found = True
                can_range = True
            first = False

    return match(0, 0, max_depth)
