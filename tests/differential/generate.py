"""Hypothesis strategies for grub.cfg programs (and the disk they sit on) to boot in GRUB and pvboot.

A program is built from a grammar of what real configs do: menu entries and submenus (titles with
spaces, quotes and `>`, `--id`, extra arguments read back as $1/$2), `set default` by number (also octal
and hex), title, id or `a>b` path (with `>>` escapes), `fallback`, functions that define entries, `for`
and `while` loops, `if` on `[ … ]`/`regexp`, `load_env` with saved_entry/next_entry, `search` by
UUID/label/file, `$root` and `(hd0,N)` paths, `source`, variables bound late (read when an entry runs),
and entry bodies with `linux`/`linux16`/`initrd`/`initrd16` (present and missing files, several
initrds, loader-state corners), `multiboot2`/`module2`, `boot`.

What the grammar leaves out, and why (each is a documented difference of the oracle or a GRUB hang):
- `fallback` naming a non-existent entry: GRUB 2.06 dereferences a NULL entry (menu.c
  grub_menu_execute_with_fallback) — undefined behaviour, grub-emu crashes.
- `--hint-bios`/`--hint-efi` that would change a `search` result: grub-emu ignores them (not PCBIOS).
- `$grub_platform`, `$grub_cpu`, numbers beyond 32 bits: emu differs from i386-pc.
- `linuxefi`/`initrdefi`: not in Debian's GRUB (pvboot accepts them for Fedora configs); `chainloader`:
  not in grub-emu.
- tabs/newlines/non-ASCII in arguments: pvboot refuses control characters in the answer (XSA-198).
- superusers/--users: GRUB would wait for a password.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from .harness import LABELS, LAYOUTS, UUIDS, Case

TITLES = ["Linux", "Linux 2", "Debian GNU/Linux", "a>b", "it's", "x  y", "rescue", "Linux (old)", "z"]
IDS = ["lin", "lin-2", "gnulinux-6.1-advanced", "id>x", "r"]
WORDS = ["ro", "quiet", "root=/dev/xvda1", "console=hvc0", "a=b=c", "x", "single", "--", "-v", "=", "9"]
VARS = ["kopts", "ver", "extra"]


def quote(text: str) -> str:
    """A GRUB word that expands to exactly `text`."""
    if text and all(c.isalnum() or c in "-_./=,:+" for c in text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


@dataclass
class Ctx:
    """What the generator knows while it writes one program."""

    label: str  # dos, gpt, none
    parts: int
    lines: list[str] = field(default_factory=list)
    top: list[tuple[str, str, list[tuple[str, str]]]] = field(default_factory=list)  # title, id, children
    maybe_entries: int = 0  # entries that may or may not exist (conditional); fallback avoids them
    empty_entries: int = 0  # entries with an empty body, which GRUB refuses: no `fallback` then
    functions: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    extra: dict[tuple[int, str], str] = field(default_factory=dict)

    def devices(self) -> list[str]:
        if self.label == "none":
            return ["hd0"]
        kind = "msdos" if self.label == "dos" else "gpt"
        names = [f"hd0,{kind}{i}" for i in range(1, self.parts + 1)]
        return names + [f"hd0,{i}" for i in range(1, self.parts + 1)]


def kernel_paths(draw: st.DrawFn, ctx: Ctx, n: int | None = None) -> str:
    num = draw(st.sampled_from(["1", "2", "3", "9"])) if n is None else str(n)
    base = draw(st.sampled_from(["/boot/vmlinuz-", "/vmlinuz-", "/boot/vmlinuz-"]))
    form = draw(st.integers(0, 6))
    if form == 6:  # symbolic links, odd spellings
        return draw(
            st.sampled_from(
                [
                    "/vmlinuz",
                    "/boot/vmlinuz",
                    "/boot/vmlinuz-dangling",
                    "boot/vmlinuz-1",
                    "/boot/../vmlinuz-2",
                    "//boot/vmlinuz-3/",
                    "/boot/./vmlinuz-1",
                ]
            )
        )
    path = base + num
    if form == 0:
        return f"($root){path}"
    if form == 1:
        return f"({draw(st.sampled_from(ctx.devices()))}){path}"
    if form == 2:
        return "/boot/vmlinuz-$ver" if draw(st.booleans()) else "/boot/vmlinuz-${ver}"
    if form == 3:
        return "$kernel"
    return path


def initrd_path(draw: st.DrawFn, ctx: Ctx) -> str:
    num = draw(st.sampled_from(["1", "2", "3", "1", "2", "9"]))
    base = draw(st.sampled_from(["/boot/initrd-", "/initrd-"]))
    form = draw(st.integers(0, 6))
    if form == 0:
        return f"({draw(st.sampled_from(ctx.devices()))}){base}{num}"
    if form == 1:
        return f"($root){base}{num}"
    if form == 2:
        return "/boot/initrd-*" if draw(st.booleans()) else '"/boot/sub dir/vmlinuz-4"'
    if form == 3:
        return draw(st.sampled_from(["/initrd.img", "/boot/initrd.img", "initrd-1", "/boot/sub\\ dir"]))
    return base + num


def arg_words(draw: st.DrawFn) -> str:
    words = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 7))
        if kind <= 3:
            words.append(quote(draw(st.sampled_from(WORDS))))
        elif kind == 4:
            words.append(
                draw(
                    st.sampled_from(
                        [
                            "$kopts",
                            '"$kopts"',
                            "${extra}",
                            "$1",
                            '"$2"',
                            "$ver",
                            "c=$chosen",
                            '"d=$default"',
                            '"$@"',
                            "$#",
                            "fb=$fallback",
                        ]
                    )
                )
            )
        elif kind == 5:
            words.append(quote(draw(st.sampled_from(["a b", "it's", 'q"x', "back\\slash", ""]))))
        elif kind == 6:
            words.append("root=$root")
        else:
            words.append(draw(st.sampled_from(["\\$x", "'$kopts'", "a'b'\"c\"", "x\\ y"])))
    return " ".join(words)


def body(draw: st.DrawFn, ctx: Ctx, depth: int = 0) -> list[str]:
    """The commands of one menu entry."""
    out: list[str] = []
    for _ in range(draw(st.integers(0, 2))):  # preamble
        kind = draw(st.integers(0, 6))
        if kind == 0:
            out.append(f"set root={quote(draw(st.sampled_from(ctx.devices())))}")
        elif kind == 1:
            out.append(f"set root=({draw(st.sampled_from(ctx.devices()))})")
        elif kind == 2:
            out.append(search(draw, ctx))
        elif kind == 3:
            out.append("insmod gzio; insmod part_msdos; insmod ext2")
        elif kind == 4:
            out.append(f"set ver={draw(st.sampled_from(['1', '2', '3', '9']))}")
        elif kind == 5:
            out.append(
                draw(
                    st.sampled_from(
                        [
                            "echo 'Loading Linux ...'",
                            "root=" + draw(st.sampled_from(ctx.devices())),
                            "unset kopts",
                            'set kopts="$kopts entry"',
                            'if [ "$chosen" = lin ]; then set ver=3; fi',
                        ]
                    )
                )
            )
        else:
            out.append("load_video; set gfxpayload=keep; insmod gzio")
    loader = draw(st.sampled_from(["linux", "linux", "linux", "linux16", "multiboot2", "none"]))
    if loader in ("linux", "linux16"):
        out.append(f"{loader} {kernel_paths(draw, ctx)} {arg_words(draw)}".rstrip())
        rd = "initrd" if loader == "linux" else "initrd16"
        if draw(st.integers(0, 9)) == 0:
            rd = "initrd16" if rd == "initrd" else "initrd"
        for _ in range(draw(st.integers(0, 2))):
            files = [initrd_path(draw, ctx) for _ in range(draw(st.integers(1, 3)))]
            out.append(f"{rd} {' '.join(files)}")
    elif loader == "multiboot2":
        out.append(f"multiboot2 /boot/xen.gz {arg_words(draw)}".rstrip())
        out.append(f"module2 {kernel_paths(draw, ctx)} {arg_words(draw)}".rstrip())
    for _ in range(draw(st.integers(0, 1))):  # an afterthought: a second kernel, a `boot`, an if
        kind = draw(st.integers(0, 3))
        if kind == 0:
            out.append(f"linux {kernel_paths(draw, ctx)} second")
        elif kind == 1:
            out.append("boot")
        elif kind == 2:
            op = draw(st.sampled_from(["-f", "-e", "-d", "-s", "! -f"]))
            out.append(f"if [ {op} {kernel_paths(draw, ctx)} ]; then initrd {initrd_path(draw, ctx)}; fi")
        else:
            out.append(f"initrd {initrd_path(draw, ctx)}")
    return out


def search(draw: st.DrawFn, ctx: Ctx, var: str = "root") -> str:
    how = draw(st.integers(0, 3))
    setters = [f"--set={var}", f"--set {var}", f"-s {var}"]
    setters += ["--set", "--set", "-s"] if var == "root" else []
    setter = draw(st.sampled_from(setters))
    hint = ""
    if draw(st.booleans()):
        hint = f" --hint-bios={draw(st.sampled_from(ctx.devices()))}"  # ignored by emu: never decisive
    parts = range(1, (1 if ctx.label == "none" else ctx.parts) + 1)
    part = draw(st.sampled_from(list(parts)))
    if how == 0:
        uuid = fs_uuid(ctx, part)
        return f"search --no-floppy --fs-uuid {setter}{hint} {uuid}"
    if how == 1:
        return f"search --no-floppy --label {setter}{hint} {LABELS[part - 1]}"
    if how == 2:
        targets = ["/boot/vmlinuz-2", "/vmlinuz-3", "/boot/grub/grub.cfg", "/grub/grub.cfg"]
        target = draw(st.sampled_from(targets))
        # several partitions match, so a hint decides: only `--hint` (emu ignores --hint-bios), and
        # GRUB's search cache (the first device found for a key) comes before it
        hint = f" --hint {draw(st.sampled_from(ctx.devices()))}" if draw(st.booleans()) else ""
        return f"search --file {setter}{hint} {target}"
    return f"search.fs_uuid {fs_uuid(ctx, part)} {var}"


def fs_uuid(ctx: Ctx, part: int) -> str:
    if ctx.label == "none":
        return UUIDS[0]
    return UUIDS[part - 1]


def title_and_id(draw: st.DrawFn) -> tuple[str, str, str]:
    """(title, id, the menuentry options text)."""
    title = draw(st.sampled_from(TITLES))
    ident = draw(st.sampled_from([*IDS, "", "", ""]))
    opts = f"--id {quote(ident)} " if ident else ""
    if draw(st.booleans()):
        opts += draw(
            st.sampled_from(
                [
                    "--class gnu-linux --class os ",
                    "--unrestricted ",
                    "--users '' ",
                    "--hotkey=x ",
                    "$menuentry_id_option 'mid' ",
                ]
            )
        )
    return title, ident, opts


def entry(draw: st.DrawFn, ctx: Ctx, indent: str = "") -> tuple[str, str, list[str]]:
    title, ident, opts = title_and_id(draw)
    extras = draw(st.lists(st.sampled_from(["1", "2", "arg two", "x"]), max_size=2))
    extra = " ".join(quote(w) for w in extras)
    head = indent + " ".join(w for w in ("menuentry", quote(title), extra, opts.strip(), "{") if w)
    commands = body(draw, ctx)
    if not commands:
        # `{ }` is a syntax error in GRUB: the entry is not created (a `fallback` must not count on it)
        ctx.empty_entries += 1
    lines = [head] + [f"{indent}  {line}" for line in commands] + [f"{indent}}}"]
    return title, ident, lines


def submenu(draw: st.DrawFn, ctx: Ctx) -> tuple[str, str, list[str], list[tuple[str, str]]]:
    title, ident, opts = title_and_id(draw)
    lines = [f"submenu {quote(title)} {opts}{{"]
    children: list[tuple[str, str]] = []
    if draw(st.integers(0, 3)) == 0:
        lines.append(f"  set default={quote(draw(st.sampled_from(['1', '0', 'Linux', 'lin', '5'])))}")
    count = draw(st.integers(1, 3))
    own_fallback = draw(st.integers(0, 3)) == 0  # the submenu's own fallback list
    empty_before = ctx.empty_entries
    for _ in range(count):
        ctitle, cid, clines = entry(draw, ctx, "  ")
        children.append((ctitle, cid))
        lines += clines
    if own_fallback and ctx.empty_entries == empty_before:  # only entries that surely exist
        picks = draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=2))
        lines.insert(1, f"  set fallback={quote(' '.join(map(str, picks)))}")
    lines.append("}")
    return title, ident, lines, children


def default_spec(draw: st.DrawFn, ctx: Ctx) -> str:
    """A value for `default` that names (or fails to name) an entry in one of GRUB's ways."""
    kind = draw(st.integers(0, 7))
    if not ctx.top or kind == 0:
        return draw(st.sampled_from(["0", "1", "2", "7", "01", "0x1", "2junk", "nosuch", ""]))
    index = draw(st.integers(0, len(ctx.top) - 1))
    title, ident, children = ctx.top[index]
    if kind <= 2:
        first = str(index)
    elif kind <= 4:
        first = title.replace(">", ">>") if draw(st.integers(0, 3)) else title
    else:
        first = (ident or title).replace(">", ">>")
    if children and draw(st.booleans()):
        cindex = draw(st.integers(0, len(children) - 1))
        ctitle, cid = children[cindex]
        names = [str(cindex), ctitle.replace(">", ">>"), (cid or ctitle).replace(">", ">>")]
        second = draw(st.sampled_from(names))
        return f"{first}>{second}"
    return first


def top_statement(draw: st.DrawFn, ctx: Ctx) -> None:
    kind = draw(st.integers(0, 15))
    if kind <= 3:
        title, ident, lines = entry(draw, ctx)
        ctx.top.append((title, ident, []))
        ctx.lines += lines
    elif kind == 4:
        title, ident, lines, children = submenu(draw, ctx)
        ctx.top.append((title, ident, children))
        ctx.lines += lines
    elif kind == 5:
        ctx.lines.append(f"set default={quote(default_spec(draw, ctx))}")
    elif kind == 6:  # a function that defines entries, called once or twice
        name = f"mk{len(ctx.functions)}"
        ctx.functions.append(name)
        ctx.lines += [
            f"function {name} {{",
            '  menuentry "$1" "$2" --id "id-$2" {',
            f"    linux /boot/vmlinuz-$2 fn=$1 {arg_words(draw)}".rstrip(),
            "    initrd /boot/initrd-$2",
            "  }",
            "}",
        ]
        for _ in range(draw(st.integers(1, 2))):
            title = draw(st.sampled_from(TITLES))
            num = draw(st.sampled_from(["1", "2", "3", "9"]))
            ctx.lines.append(f"{name} {quote(title)} {num}")
            ctx.top.append((title, f"id-{num}", []))
    elif kind == 7:  # a loop that defines entries
        nums = draw(st.lists(st.sampled_from(["1", "2", "3", "9"]), min_size=1, max_size=3))
        ctx.lines += [
            f"for k in {' '.join(nums)}; do",
            '  menuentry "kernel $k" $k { linux /boot/vmlinuz-$2 k=$2; initrd /boot/initrd-$2 }',
            "done",
        ]
        ctx.top += [(f"kernel {n}", "", []) for n in nums]
    elif kind == 8:  # late binding: entries read these when they run
        var = draw(st.sampled_from(VARS))
        value = draw(st.sampled_from(["1", "2", "3", "quiet splash", "console=hvc0  ro", ""]))
        ctx.lines.append(f"set {var}={quote(value)}")
        if draw(st.booleans()):
            kernel = draw(st.sampled_from(["/boot/vmlinuz-3", "/vmlinuz-2", "/boot/vmlinuz-9"]))
            ctx.lines.append(f"set kernel={kernel}")
    elif kind == 9:
        ctx.lines.append(search(draw, ctx, draw(st.sampled_from(["root", "root", "bootdev"]))))
    elif kind == 10:  # a condition that is known when the program is written
        cond = draw(
            st.sampled_from(
                [
                    "[ -f /boot/vmlinuz-2 ]",
                    "[ -e /nonexistent ]",
                    '[ "$ver" = 2 ]',
                    '[ -n "$kopts" ]',
                    "[ -f /boot/vmlinuz-dangling ]",
                    "[ -d /vmlinuz ]",
                    "[ -s /initrd.img ]",
                    "[ -e vmlinuz ]",
                    "[ -d ($root) ]",
                    "[ -f /boot/vmlinuz-1/ ]",
                    "regexp '^([0-9])' \"$ver\"",
                    "! [ -d /boot ]",
                    "[ 2 -lt 10 ]",
                    "[ a \\< b ]",
                ]
            )
        )
        title, ident, lines = entry(draw, ctx, "  ")
        otherwise = f"  set default={quote(default_spec(draw, ctx))}"
        ctx.lines += [f"if {cond}; then", *lines, "else", otherwise, "fi"]
        ctx.maybe_entries += 1
        ctx.top.append((title, ident, []))  # may be absent: defaults naming it then name another
    elif kind == 11:
        if draw(st.booleans()):
            ctx.lines.append("set root=" + quote(draw(st.sampled_from(ctx.devices()))))
        else:
            what = draw(st.sampled_from(["--fs", "--fs-uuid", "--label"]))
            ctx.lines.append(f"probe --set=kopts {what} ({draw(st.sampled_from(ctx.devices()))})")
    elif kind == 12:  # a sourced file adding an entry
        title, ident, lines = entry(draw, ctx)
        ctx.extra[(1, "/extra.cfg")] = "\n".join(lines) + "\n"
        ctx.lines.append(f"source ({ctx.devices()[0]})/extra.cfg")
        ctx.top.append((title, ident, []))
    elif kind == 13:
        ctx.lines.append(
            draw(
                st.sampled_from(
                    [
                        "export kopts",
                        "export ver",
                        "export default",
                        "export fallback",
                        "unset default",
                        "set menuentry_id_option=--id",
                        "search --file /boot/vmlinuz-1",
                        "load_env -f $prefix/grubenv kopts",
                        "save_env kopts",
                        "set root=($root)",
                    ]
                )
            )
        )
    elif kind == 14:  # a loop or a while that builds an entry per round
        ctx.lines += [
            "set n=1",
            "while [ $n -le 2 ]; do",
            '  menuentry "round $n" $n { linux /boot/vmlinuz-$2 round=$2 }',
            "  if [ $n = 1 ]; then n=2; else n=3; fi",
            "done",
        ]
        ctx.top += [("round 1", "", []), ("round 2", "", [])]
    else:
        ctx.lines.append(
            draw(
                st.sampled_from(
                    [
                        "insmod part_gpt",
                        "set timeout=5",
                        "set timeout_style=menu",
                        "terminal_output console",
                        "set gfxpayload=keep",
                    ]
                )
            )
        )


@st.composite
def program(draw: st.DrawFn) -> Case:
    layout_name = draw(st.sampled_from(["mbr1", "mbr1", "mbr2", "gpt2", "mbr3", "gpt3", "bare"]))
    layout = LAYOUTS[layout_name]
    ctx = Ctx(layout.label, layout.parts)
    if draw(st.integers(0, 3)) == 0:  # a grubenv, read the way update-grub's header does
        saved = draw(st.sampled_from(["0", "1", "Linux", "lin", "kernel 2", "a>>b", "1>0", ""]))
        ctx.env = {"saved_entry": saved}
        if draw(st.booleans()):
            ctx.env["next_entry"] = draw(st.sampled_from(["1", "rescue", "kernel 3"]))
        if draw(st.booleans()):
            ctx.env["kopts"] = draw(st.sampled_from(["root=UUID=abc ro", "quiet  splash", "x"]))
        ctx.lines += [
            "if [ -s $prefix/grubenv ]; then",
            "  load_env",
            "fi",
            'if [ "${next_entry}" ] ; then',
            '   set default="${next_entry}"',
            "   set next_entry=",
            "else",
            '   set default="${saved_entry}"',
            "fi",
        ]
    for _ in range(draw(st.integers(1, 7))):
        top_statement(draw, ctx)
    if draw(st.integers(0, 9)) == 0:  # hand over to another config (GRUB shows its menu at once)
        inner = Ctx(ctx.label, ctx.parts)
        inner.lines.append(f"set timeout={draw(st.sampled_from(['0', '3']))}")
        for _ in range(draw(st.integers(0, 3))):
            top_statement(draw, inner)
        if inner.top and draw(st.booleans()):
            inner.lines.append(f"set default={quote(default_spec(draw, inner))}")
        ctx.extra[(1, "/next.cfg")] = "\n".join(inner.lines) + "\n"
        ctx.extra.update({k: v for k, v in inner.extra.items() if k != (1, "/next.cfg")})
        ctx.lines.append(f"configfile ({ctx.devices()[0]})/next.cfg")
        if inner.top:
            ctx.top, ctx.maybe_entries = inner.top, inner.maybe_entries
            ctx.empty_entries = inner.empty_entries
    if draw(st.booleans()):
        ctx.lines.append(f"set default={quote(default_spec(draw, ctx))}")
    static = len(ctx.top) - ctx.maybe_entries
    if static >= 2 and draw(st.integers(0, 2)) == 0:
        # only entries that surely exist (ahead of any conditional one): see the module docstring
        picks = draw(st.lists(st.integers(0, static - 1), min_size=1, max_size=3))
        if ctx.maybe_entries == 0 and ctx.empty_entries == 0:
            ctx.lines.append(f"set fallback={quote(' '.join(map(str, picks)))}")
    return Case("generated", "\n".join(ctx.lines) + "\n", layout_name, ctx.env, ctx.extra)
