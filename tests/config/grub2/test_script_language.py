"""GRUB 2.06 script language: lexer, parser and interpreter (pvboot.config.grub2).

Two kinds of tests:

- `CASES` are differential: each script's echo output, as printed by real GRUB 2.06 (Debian's grub-emu,
  run by conftest.grub_emu_batch), is written down in `expected`. `test_case_matches_grub` checks pvboot
  against it, and `test_case_expectation_is_real_grub` re-checks the expectation against grub-emu
  whenever grub-emu is installed, so the expectations cannot drift from GRUB. Several scripts come from
  GRUB's own tests/grub_script_*.in (whose expected output is GRUB's and bash's).
- The rest test what grub-emu cannot show (the host API, the decision-trace log, limits, hostile input),
  with expectations taken from GRUB's sources (script/execute.c, normal/main.c, normal/context.c, …).

echo output is captured through `Interpreter.console`; without a console it goes to host.log.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvboot.config.grub2 import (
    CommandFn,
    GrubErr,
    Interpreter,
    ScriptLimits,
)
from pvboot.config.grub2.ere import EREError, compile_ere
from pvboot.errors import LimitError, NotFoundError, PvbootError

EmuBatch = Callable[[list["Case"]], dict[str, str]]
PLACEHOLDER_DIR = "/d"  # what @D@ in a case becomes on the pvboot side (conftest maps it for grub-emu)


class FakeHost:
    """Files in a dict; `glob` follows GRUB's translator for one path ('*'/'?' never match '/')."""

    def __init__(self, files: dict[str, str] | None = None) -> None:
        self.files = dict(files or {})
        self.dirs = {"/"}
        for path in self.files:
            parts = path.split("/")
            for k in range(2, len(parts)):
                self.dirs.add("/".join(parts[:k]))
        self.logs: list[str] = []
        self.globbed: list[str] = []

    def read_file(self, path: str) -> str:
        if path not in self.files:
            raise NotFoundError(f"{path}: file not found")
        return self.files[path]

    def file_test(self, op: str, path: str) -> bool:
        path = path.rstrip("/") or "/"
        is_file, is_dir = path in self.files, path in self.dirs
        return {
            "-f": is_file,
            "-d": is_dir,
            "-e": is_file or is_dir,
            "-s": is_file and self.files.get(path, "") != "",
        }[op]

    def glob(self, pattern: str) -> list[str]:
        self.globbed.append(pattern)
        rx = ""
        i = 0
        while i < len(pattern):
            c = pattern[i]
            if c == "\\" and i + 1 < len(pattern):
                rx += re.escape(pattern[i + 1])
                i += 2
                continue
            rx += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
            i += 1
        regex = re.compile(rx)
        return sorted(p for p in (*self.files, *self.dirs) if regex.fullmatch(p))

    def log(self, message: str) -> None:
        self.logs.append(message)


@dataclass
class Run:
    output: str
    host: FakeHost
    interp: Interpreter
    status: int = 0


def _insmod(interp: Interpreter, args: list[str], block: str | None) -> int:
    if args and args[0] == "regexp":
        interp.wildcards = True
    return 0


def _configfile(interp: Interpreter, args: list[str], block: str | None) -> int:
    """GRUB's configfile: a new context around read_config_file (commands/configfile.c)."""
    if len(args) != 1:
        return interp.error(GrubErr.BAD_ARGUMENT, "filename expected")
    interp.context_open()
    try:
        interp.execute_file(args[0])
    finally:
        interp.context_close()
    return 0


def run_script(
    script: str,
    files: dict[str, str] | None = None,
    *,
    limits: ScriptLimits | None = None,
    mode: str = "config",
    filename: str = "grub.cfg",
) -> Run:
    """Run `script` in pvboot with echo captured; files are keyed by absolute path."""
    host = FakeHost(files)
    interp = Interpreter(host, limits or ScriptLimits())
    out: list[str] = []
    interp.console = out.append
    interp.register("insmod", _insmod)
    interp.register("configfile", _configfile)
    run = interp.run_config if mode == "config" else interp.run_source
    status = run(script, filename)
    return Run("".join(out), host, interp, status)


@dataclass(frozen=True)
class Case:
    """A script, its files (paths relative to @D@) and the echo output real GRUB 2.06 gives."""

    name: str
    script: str
    expected: str
    files: dict[str, str] = field(default_factory=dict)

    def pvboot_output(self) -> str:
        files = {f"{PLACEHOLDER_DIR}/{k}": v for k, v in self.files.items()}
        return run_script(self.script.replace("@D@", PLACEHOLDER_DIR), files).output


CASES = [
    # ---- words and quoting -------------------------------------------------------------------------
    Case(
        "quotes_concatenate",
        r"""echo 'it''s' "a"'b'c one"two"three'four'
echo 'one two' "three  four"
""",
        """\
its abc onetwothreefour
one two three  four
""",
    ),
    Case(
        "backslash_escapes",
        r"""echo \a\b\ \c x\\y x\*y \# \$x
echo "\a\$\\\"z" '\n' "a\'b"
""",
        "ab c x\\y x*y # $x\n\\a$\\\"z \\n a\\'b\n",
    ),
    Case(
        "escape_comma_and_dollar",
        r"""x=1\\,1
echo $x \,a
y='$'
echo $y '$x' '${x}'
z='\'
echo $z
""",
        "1\\,1 ,a\n$ $x ${x}\n\\\n",
    ),
    Case(
        "empty_arguments",
        r"""function count { echo "[$#]"; }
count a "" b
count a '' b
count a $nothing b
count "$nothing"
count $nothing
count ""$nothing''
""",
        """\
[3]
[3]
[2]
[1]
[0]
[1]
""",
    ),
    Case(
        "multiline_quotes",
        r"""echo "one
two" 'three
four' x"five
"six
echo $"seven
eight"
""",
        """\
one
two three
four xfive
six
seven
eight
""",
    ),
    Case(
        "hash_line_inside_quote_dropped",
        r"""echo '1
#x
2'
""",
        """\
1
2
""",
    ),
    Case(
        "backslash_newline_continuation",
        r"""echo one \
 two
echo x\
y
echo "dq\
uote"
\
 echo leading-empty-word
""",
        """\
one two
xy
dquote
leading-empty-word
""",
    ),
    Case(
        "comments",
        r"""echo a###b
echo a# #b
echo #
echo \#
echo '#' "#" '\#' "\#"
   # indented comment
echo x #trailing
""",
        "a###b\na#\n\n#\n# # \\# \\#\nx\n",
    ),
    Case(
        "keywords_as_arguments",
        r"""echo if then else elif fi for in do done while until
echo function case esac select [ ] ! [[x
""",
        """\
if then else elif fi for in do done while until
function case esac select [ ] ! [[x
""",
    ),
    Case(
        "block_argument_is_a_word",
        r"""echo a { b }
echo {c}
echo x{ y; z }
echo a{b}c
echo after
""",
        """\
a { b }
{c}
x { y; z }
after
""",
    ),
    # ---- variables -------------------------------------------------------------------------------------
    Case(
        "variable_forms",
        r"""var=foo
echo $var "$var" ${var} "${var}" a${var}b a$varb [$var2] ${var}_x
""",
        """\
foo foo foo foo afoob a [] foo_x
""",
    ),
    Case(
        "positional_parameters_at_top_level",
        r"""echo [$1] [$#] [$*] [$@] [$0] ["$@"]
""",
        """\
[] [] [] [] [] []
""",
    ),
    Case(
        "word_splitting",
        r"""x=" 1  2 "
echo a${x}b
for w in a${x}b; do echo "[$w]"; done
for w in "a${x}b"; do echo "[$w]"; done
y="   "
for w in a $y b; do echo "<$w>"; done
z="p
q"
for w in $z; do echo "{$w}"; done
""",
        """\
a1 2b
[a1]
[2b]
[a 1  2 b]
<a>
<b>
{p}
{q}
""",
    ),
    Case(
        "variable_with_backslashes",
        r"""x='a\b'
echo $x "$x"
z='\*'
echo $z "$z"
v='\?'
echo $v
""",
        "a\\b a\\b\n\\* \\*\n\\?\n",
    ),
    Case(
        "status_variable",
        r"""true
echo $?
false
echo $?
echo $?
nosuchcommand
echo $?
""",
        """\
0
1
0
0
""",
    ),
    Case(
        "assignment_forms",
        r"""x=1
echo $x
x=a=b
echo $x
foo=bar echo ignored-args
echo $foo
1=2
echo $?
set y=2 z=3
echo $y [$z]
set w
echo $?
set e=
echo [$e]
""",
        """\
1
a=b
bar
0
2 []
18
[]
""",
    ),
    Case(
        "unset_and_export",
        r"""x=1
unset x
echo [$x]
export y
echo [$y]
unset
echo $?
""",
        """\
[]
[]
18
""",
    ),
    Case(
        "gettext_strings",
        r"""echo $"foo" $"foo   bar"
x=5
echo $"$x" $"${x}y" $"\$x" $"a\\b" $"\q" $"$"
echo $"\x\\y\$x$x\\$xx${x}x\"$x\""
set 1=one
function f { echo $"[$1] [$#]"; }
f a b
echo a$"b"c one$"two"\*three
""",
        'foo foo   bar\n5 5y $x a\\b \\q $\n\\x\\y$x5\\5x"5"\n[one] [2]\nabc onetwo*three\n',
    ),
    Case(
        "multi_digit_positionals",
        r"""function f { echo $10 ${10} $1x $01 ${1}0; }
f a b c d e f g h i j k
""",
        """\
j j ax a a0
""",
    ),
    Case(
        "dollar_at_and_star",
        r"""function fat {
  for v in $@; do echo "@ [$v]"; done
  for v in "$@"; do echo "q@ [$v]"; done
}
function fstar {
  for v in $*; do echo "* [$v]"; done
  for v in "$*"; do echo "q* [$v]"; done
}
fat a "1 2" "" b
fstar a "1 2" "" b
fat
fstar
for v in aaa"$@"bbb; do echo "[$v]"; done
""",
        """\
@ [a]
@ [1]
@ [2]
@ [b]
q@ [a]
q@ [1 2]
q@ []
q@ [b]
* [a]
* [1]
* [2]
* [b]
q* [a 1 2  b]
q@ []
q* []
[aaabbb]
""",
    ),
    # ---- control flow ---------------------------------------------------------------------------------
    Case(
        "if_elif_else",
        r"""if true; then echo yes; fi
if false; then echo no; fi
if false; then echo no; else echo yes; fi
if false; then echo no; elif true; then echo yes; fi
if false; then echo no; elif false; then echo no; else echo yes; fi
if true; then if false; then echo no; elif true; then echo yes; fi; else echo no; fi
if true
then
  echo multi-line
fi
if false; then echo x; fi
echo $?
""",
        """\
yes
yes
yes
yes
yes
multi-line
0
""",
    ),
    Case(
        "not_operator",
        r"""! true
echo $?
! false
echo $?
if ! false; then echo negated; fi
! nosuchcmd
echo $?
!
echo $?
""",
        """\
1
0
negated
0
18
""",
    ),
    Case(
        "while_and_until",
        r"""foo=""
while test "$foo" != "111"; do foo="${foo}1"; echo $foo; done
until test "$foo" = "11111"; do foo="${foo}1"; echo $foo; done
foo=""
false
while test "$?" != "0"
do
  echo "[$foo]"
  foo="${foo}1"
  test "$foo" = "111"
done
""",
        """\
1
11
111
1111
11111
[]
[1]
[11]
""",
    ),
    Case(
        "loop_statuses",
        r"""while false; do echo x; done
echo w=$?
until true; do echo x; done
echo u=$?
for i in; do echo x; done
echo f=$?
for i in a; do false; done
echo f2=$?
""",
        """\
w=1
u=0
f=0
f2=1
""",
    ),
    Case(
        "for_loop",
        r"""for x in one two 'three 3' "four 4" five six-6; do echo $x; done
foo="1 2"
for x in ab${foo}cd; do echo $x; done
for x in "ab${foo}cd"; do echo $x; done
y=keep
for y in a b; do true; done
echo $y
for if in x; do echo $if; done
""",
        """\
one
two
three 3
four 4
five
six-6
ab1
2cd
ab1 2cd
b
""",
    ),
    Case(
        "break_and_continue",
        r"""for i in 1 2 3 4 5; do
  if test $i = 2; then continue; fi
  if test $i = 4; then break; fi
  echo $i
done
for i in 1 2 3; do
  for j in a b c; do
    if test $j = b; then continue 2; fi
    if test $i = 3; then break 2; fi
    echo "$i $j"
  done
done
a=
while test "$a" != "aaa"; do
  a="a$a"
  for i in 1 2; do
    b=
    until test "$b" = "bb"; do b="b$b"; echo "$a $i $b"; if test $i = 2; then break 2; fi; done
  done
done
""",
        """\
1
3
1 a
2 a
a 1 b
a 1 bb
a 2 b
aa 1 b
aa 1 bb
aa 2 b
aaa 1 b
aaa 1 bb
aaa 2 b
""",
    ),
    Case(
        "break_errors",
        r"""break
echo top $?
for i in 1 2; do break 0; echo b0 $?; done
for i in 1 2; do break x; echo bx $?; done
for i in 1 2; do break 1 2; echo b12 $?; done
for i in 1 2; do break 5; echo never; done
echo after
""",
        """\
top 0
b0 18
b0 18
bx 10
bx 10
b12 18
b12 18
after
""",
    ),
    Case(
        "functions_and_parameters",
        r"""function fcount {
  echo fcount "$#"
}
fcount
fcount a b
function fparam {
  echo fparam $1 $2 $3 $#
  fcount x
  echo back $1
}
fparam a
fparam a b c
""",
        """\
fcount 0
fcount 2
fparam a 1
fcount 1
back a
fparam a b c 3
fcount 1
back a
""",
    ),
    Case(
        "function_defined_at_parse_time",
        r"""f; function f { echo inf; }
function g { echo g1; }; g; function g { echo g2; }; g
""",
        """\
inf
g2
g2
""",
    ),
    Case(
        "function_syntax",
        r"""function f { echo a }
echo after
f
function g
{
  echo g-ok
}
g
h() { echo paren; }
echo $?
function k { echo k; }
echo defined
""",
        """\
after
g-ok
0
defined
""",
    ),
    Case(
        "recursion",
        r"""function count {
  if test "$1" != "xxxx"; then
    echo "level [$1]"
    count "x$1"
  fi
}
count
""",
        """\
level []
level [x]
level [xx]
level [xxx]
""",
    ),
    Case(
        "return",
        r"""function f1 { return; echo one; }
f1
function f3 { false; return; echo one; }
if f3; then echo true; else echo false; fi
function f4 { true; return 1; echo one; }
if f4; then echo true; else echo false; fi
function f5 { false; return 0; }
if f5; then echo true; else echo false; fi
function f7 { if return 1; then echo one; else echo no; fi; }
if f7; then echo true; else echo false; fi
function f8 { for v in 1 2 3 4; do echo $v; if test $v = 2; then return 1; fi; done; echo two; }
if f8; then echo true; else echo false; fi
function f9 { while return 0; do echo two; done; echo three; }
f9
echo $?
function g { return 2; }
g
echo $?
function h { return x; echo h-continues; }
h
return 3
echo top $?
""",
        """\
false
false
true
false
1
2
false
0
2
h-continues
top 18
""",
    ),
    Case(
        "shift",
        r"""function f1 {
  echo f1 $# $1 $2 $3
  shift
  echo f1 $# $1 $2 $3 '$@' $@
}
f1
f1 a
f1 a b c
function f3 { shift 3; echo f3 $? $# $1; }
f3 a b
f3 a b c d
function f4 { shift x; echo f4 $? $#; shift ""; echo f4 $? $#; shift 1 2; echo $?; }
f4 a b
shift
echo top $?
""",
        """\
f1 0
f1 0 $@
f1 1 a
f1 0 $@
f1 3 a b c
f1 2 b c $@ b c
f3 18 2 a
f3 0 1 d
f4 18 2
f4 0 2
18
top 0
""",
    ),
    Case(
        "setparams",
        r"""function f1 {
  echo $# "$@"
  setparams 1 2 3 4
  echo $# $* "$2"
  shift
  echo $1
}
f1 a b
setparams x
echo top $?
""",
        """\
2 a b
4 1 2 3 4 2
2
top 17
""",
    ),
    Case(
        "eval",
        r"""eval echo "Hello world"
valname=tst
eval $valname=hi
echo $tst
eval 'echo e1; echo e2'
eval
echo $?
eval "fi"
echo st=$?
eval 'echo 1
fi
echo 2'
eval 'if true; then
echo multi; fi'
""",
        """\
Hello world
hi
e1
e2
0
st=0
1
multi
""",
    ),
    Case(
        "source_shares_scope",
        r"""function caller { source @D@/lib.cfg; echo "in caller: $libvar"; }
caller arg1
echo "after: $libvar"
libfunc
source @D@/missing.cfg
echo missing $?
""",
        """\
lib sees [arg1] [1]
in caller: set
after: set
libfunc-ran
missing 0
""",
        {"lib.cfg": 'libvar=set\necho "lib sees [$1] [$#]"\nfunction libfunc { echo libfunc-ran; }\n'},
    ),
    Case(
        "source_continues_after_syntax_error",
        r"""source @D@/bad.cfg
echo "after bad $?"
""",
        """\
two
after bad 0
""",
        {"bad.cfg": 'echo "one fi"; fi\necho two\nif true; then\necho never\n'},
    ),
    Case(
        "break_and_return_cross_source",
        r"""for i in a b; do source @D@/brk.cfg; echo loop-$i; done
function g { echo g-start; source @D@/ret.cfg; echo g-after; }
g
echo g=$?
""",
        """\
in-brk
g-start
r1
r2
r3
g=0
""",
        {
            "brk.cfg": "echo in-brk\nbreak\necho after-break\n",
            "ret.cfg": "echo r1\nreturn 3\necho r2\necho r3\n",
        },
    ),
    Case(
        "configfile_copies_only_exported",
        r"""a=1
b=2
export b
configfile @D@/sub.cfg
echo "after: a=[$a] c=[$c]"
""",
        """\
sub: a=[] b=[2]
after: a=[1] c=[]
""",
        {"sub.cfg": 'echo "sub: a=[$a] b=[$b]"\nc=new\n'},
    ),
    # ---- errors -----------------------------------------------------------------------------------------
    Case(
        "unknown_commands_are_status_0",
        r"""nosuchcommand arg
echo $?
if nosuchcommand; then echo yes; fi
$empty
echo $?
""",
        """\
0
yes
0
""",
    ),
    Case(
        "syntax_error_drops_the_line",
        r"""echo a; fi; echo b
echo c
if true; then
  echo d
fi; fi
echo e
echo "$"
echo ok; echo a$
echo f
echo a && echo b
echo a | b
echo a > b
[[ x ]]
echo a;; echo b
echo g
""",
        """\
c
e
f
g
""",
    ),
    Case(
        "syntax_error_in_block",
        r"""blk x { }
blk x { echo a; fi }
echo after
blk y { echo in } extra
echo end
""",
        """\
after
end
""",
    ),
    Case(
        "unterminated_construct_at_end",
        r"""echo before
if true; then
  echo never
""",
        """\
before
""",
    ),
    Case(
        "unterminated_quote_at_end",
        r"""echo before
echo "never
""",
        """\
before
""",
    ),
    # ---- test / [ ---------------------------------------------------------------------------------------
    Case(
        "test_strings",
        r"""[ a = a ]; echo eq $?
[ a == b ]; echo eq2 $?
[ a != b ]; echo ne $?
[ a "<" b ]; echo lt $?
[ b "<=" b ]; echo le $?
[ a ">" b ]; echo gt $?
[ b ">=" a ]; echo ge $?
[ -z "" ]; echo z $?
[ -n "" ]; echo n $?
[ -n ]; echo n1 $?
[ "" ]; echo empty $?
[ x ]; echo str $?
[ ]; echo none $?
test; echo test0 $?
test a = a ]; echo t-bracket $?
[ a = a; echo no-bracket $?
""",
        """\
eq 0
eq2 1
ne 0
lt 0
le 0
gt 1
ge 0
z 0
n 1
n1 0
empty 1
str 0
none 0
test0 0
t-bracket 0
no-bracket 0
""",
    ),
    Case(
        "test_numbers",
        r"""[ 5 -gt 3 ]; echo gt $?
[ 2 -le 2 ]; echo le $?
[ 0x10 -eq 16 ]; echo hex $?
[ 010 -eq 8 ]; echo oct $?
[ 08 -eq 8 ]; echo dec08 $?
[ -5 -lt 3 ]; echo neg $?
[ 4294967296 -eq 0 ]; echo wrap $?
[ abc -eq 0 ]; echo nan $?
[ 1.5 -eq 1 ]; echo frac $?
[ 99999999999999999999 -eq 1 ]; echo big $?
[ " 7" -eq 7 ]; echo space $?
[ 3 -ne 3 ]; echo ne $?
[ 1 -ge 2 ]; echo ge $?
""",
        """\
gt 0
le 0
hex 0
oct 0
dec08 0
neg 0
wrap 0
nan 0
frac 0
big 1
space 0
ne 1
ge 1
""",
    ),
    Case(
        "test_prefix_compare",
        r"""[ vmlinuz-2 -plt vmlinuz-11 ]; echo plt $?
[ vmlinuz-2 -pgt vmlinuz-11 ]; echo pgt $?
[ abc2 -pgt abc10 ]; echo pgt2 $?
[ 2 -plt 10 ]; echo plt2 $?
[ x-1.10 -pgt x-1.9 ]; echo ver $?
""",
        """\
plt 0
pgt 1
pgt2 1
plt2 0
ver 0
""",
    ),
    Case(
        "test_logic",
        r"""[ ! a = b ]; echo not $?
[ ! ! x ]; echo notnot $?
[ a = a -a b = c ]; echo and $?
[ a = b -o c = c ]; echo or $?
[ x -o "" -a "" ]; echo prec1 $?
[ "" -o x -a x ]; echo prec2 $?
[ ( a = b ) -o ( c = c ) ]; echo paren $?
[ ! ( a = a -o b = c ) ]; echo notparen $?
[ ( a = b ]; echo open $?
[ a = a -o ) ]; echo close $?
[ "" ) x = x ]; echo early $?
""",
        """\
not 0
notnot 0
and 1
or 0
prec1 0
prec2 0
paren 0
notparen 1
open 1
close 0
early 1
""",
    ),
    Case(
        "test_files",
        r"""[ -f @D@/file ]; echo f $?
[ -f @D@/dir ]; echo f-dir $?
[ -d @D@/dir ]; echo d $?
[ -d @D@/file ]; echo d-file $?
[ -e @D@/dir/inner ]; echo e $?
[ -e @D@/none ]; echo e-none $?
[ -s @D@/file ]; echo s $?
[ -s @D@/empty ]; echo s-empty $?
if [ -f @D@/file -a ! -f @D@/none ]; then echo combined; fi
""",
        """\
f 0
f-dir 1
d 0
d-file 1
e 0
e-none 1
s 0
s-empty 1
combined
""",
        {"file": "data\n", "empty": "", "dir/inner": "x"},
    ),
    Case(
        "strcmp_is_unsigned",
        """if [ "z" "<" "\u00e2" ]; then echo unsigned; else echo signed; fi
if [ "z" ">" "\u00e2" ]; then echo signed; else echo unsigned; fi
""",
        """\
unsigned
unsigned
""",
    ),
    # ---- echo -------------------------------------------------------------------------------------------
    Case(
        "echo_options",
        r"""echo -n a; echo b
echo -e 'x\\y\qz'
echo -e 'nl\nafter'
echo -e 'a\cb'; echo c
echo -ne x; echo -nq
echo --
echo - -n
echo a -n
echo -en 'e\\'; echo
echo -e 'trail\'
""",
        "ab\nx\\yz\nnl\nafter\nabc\nx-nq\n\n- -n\na -n\ne\\\ntrail\n",
    ),
    # ---- regexp -----------------------------------------------------------------------------------------
    Case(
        "regexp_posix_semantics",
        r"""regexp --set=v '(a|ab)' ab; echo "1 [$v] $?"
regexp --set=v '(a|ab)(c|bcd)(d*)' abcd; echo "2 [$v] $?"
regexp --set=1:x --set=2:y --set=3:z '(a|ab)(c|bcd)(d*)' abcd; echo "3 [$x] [$y] [$z]"
regexp --set=v '(a*)(ab)?b*' aabb; echo "4 [$v]"
regexp --set=0:v 'x*|b+' abbb; echo "5 [$v] $?"
regexp --set=0:v '(a|b)*' abab; echo "6 [$v]"
regexp --set=v '(a|b)*' abab; echo "7 [$v]"
regexp --set=0:v 'a+?' aaa; echo "8 [$v]"
regexp --set=2:v '(a|ab)(bc|c)?' abc; echo "9 [$v]"
regexp --set=0:v '(a*)+' b; echo "10 [$v] $?"
""",
        """\
1 [ab] 0
2 [a] 0
3 [a] [bcd] []
4 [aa]
5 [] 0
6 [abab]
7 [b]
8 [aaa]
9 [bc]
10 [] 0
""",
    ),
    Case(
        "regexp_syntax",
        r"""regexp --set=0:v '[[:digit:]]+\.[0-9]' v12.3x; echo "1 [$v]"
regexp --set=0:v '[]a]+' 'x]a]'; echo "2 [$v]"
regexp --set=0:v '[\d]+' 'x\dd'; echo "3 [$v]"
regexp --set=0:v '\w+' 'a_b-c'; echo "4 [$v]"
regexp --set=0:v '\<b' 'a b'; echo "5 [$v]"
regexp --set=0:v '\(x' '(x'; echo "6 [$v]"
regexp --set=0:v 'a{2,}' aaaa; echo "7 [$v]"
regexp --set=0:v 'a{,2}' aaaa; echo "8 [$v]"
regexp --set=0:v 'x)' 'x)'; echo "9 [$v] $?"
regexp --set=0:v '\n' n; echo "10 [$v]"
regexp --set=0:v '^$' ''; echo "11 [$v] $?"
regexp --set=0:v 'a.c' abc; echo "12 [$v]"
regexp --set=0:v '()a' a; echo "13 [$v]"
regexp --set=0:v 'a||b' b; echo "14 [$v]"
regexp --set=0:v '[^a-c]+' abcxyzab; echo "15 [$v]"
""",
        (
            "1 [12.3]\n"
            "2 []a]]\n"
            "3 [\\dd]\n"
            "4 [a_b]\n"
            "5 [b]\n"
            "6 [(x]\n"
            "7 [aaaa]\n"
            "8 [aa]\n"
            "9 [x)] 0\n"
            "10 [n]\n"
            "11 [] 0\n"
            "12 [abc]\n"
            "13 [a]\n"
            "14 [b]\n"
            "15 [xyz]\n"
        ),
    ),
    Case(
        "regexp_failures",
        r"""v=keep
regexp '^(' x; echo "1 $?"
regexp --set=v '^*a' a; echo "2 [$v] $?"
regexp --set=v 'a{' 'a{'; echo "3 [$v] $?"
regexp --set=v '[z-a]' a; echo "4 [$v] $?"
regexp --set=v 'x\' x; echo "5 [$v] $?"
regexp --set=v '[a' a; echo "6 [$v] $?"
regexp --set=v '[[:foo:]]' a; echo "7 [$v] $?"
regexp --set=v 'a$b' 'a$b'; echo "8 [$v] $?"
regexp x y; echo "9 $?"
regexp onlyone; echo "10 $?"
regexp --set=q '(x)?y' y; echo "11 [$q] $?"
regexp --set=r '(a)|b' b; echo "12 [$r] $?"
""",
        """\
1 1
2 [keep] 1
3 [keep] 1
4 [keep] 1
5 [keep] 1
6 [keep] 1
7 [keep] 1
8 [keep] 1
9 1
10 18
11 [] 0
12 [] 0
""",
    ),
    Case(
        "regexp_options",
        r"""regexp --set v '^(a+)' aaab; echo "1 [$v]"
regexp -s w 'b+' abbbc; echo "2 [$w]"
regexp -s 0:w 'b+' aabbbc; echo "3 [$w]"
regexp 'x' --set=late x; echo "4 [$late]"
regexp --set=a --set=2:b '(.)(.)' xy; echo "5 [$a] [$b]"
regexp -- -a -a; echo "6 $?"
regexp -x a a; echo "7 $?"
regexp --set=1x:v 'a' a; echo "8 $?"
""",
        """\
1 [aaa]
2 []
3 [bbb]
4 []
5 [x] [y]
6 0
7 18
8 18
""",
    ),
    # ---- tr (commands/tr.c) ------------------------------------------------------------------------------
    Case(
        "tr_sets_cases_variables_and_errors",
        r"""tr abc xyz aabbcc-cab
tr -U "Hello World"
tr -D "Hello World"
tr -U -D "MiXeD"
set v=hello
tr -s v -U
echo "v=$v"
tr -s v lo LO
echo "v=$v"
tr -s v eh HE world
echo "v=$v"
tr aa xy aaa
tr abc xy abc
echo "rc=$?"
tr a b c d
echo "rc=$?"
tr
echo "rc=$?"
tr -s unset_var_x -U
echo "rc=$?"
tr "" "" abc
tr -s w -D "ABC"
echo "w=$w"
""",
        """\
xxyyzz-zxy
HELLO WORLD
hello world
mixed
v=HELLO
v=HELLO
v=world
xxx
rc=18
rc=18
rc=18
rc=18
abc
w=abc
""",
    ),
    # ---- wildcards --------------------------------------------------------------------------------------
    Case(
        "wildcard_expansion",
        r"""regexp x x
echo @D@/w/a*
echo "@D@/w/a*" '@D@/w/a*'
echo @D@/w/z*
x=@D@/w/b?
echo $x
echo nowild*
echo @D@/w/\*
echo @D@/*/a1
""",
        """\
/d/w/a1
/d/w/a* /d/w/a*
/d/w/z*
/d/w/b2
nowild*
/d/w/*
/d/w/a1
""",
        {"w/a1": "", "w/b2": ""},
    ),
    Case(
        "function_only_at_top_level",
        r"""if true; then function f { echo in-if; }; fi
echo after
f
blk { function g { echo x; } }
g
""",
        """\
after
""",
    ),
    Case(
        "block_passed_to_function",
        r"""function f { echo "$#" "[$2]"; }
f a { echo x; }
f { y }
""",
        """\
2 [{ echo x; }]
1 []
""",
    ),
    Case(
        "carriage_returns_dropped",
        "echo a\r\necho 'b\rc' d\r\nif true; then\r\n echo e\r\nfi\r\n",
        """\
a
bc d
e
""",
    ),
    Case(
        "nul_ends_line",
        "echo a\0b c\necho d\n",
        """\
a
d
""",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_matches_grub(case: Case) -> None:
    assert case.pvboot_output() == case.expected


def test_case_expectation_is_real_grub(grub_emu_batch: EmuBatch) -> None:
    outputs = grub_emu_batch(CASES)
    wrong = {c.name: outputs[c.name] for c in CASES if outputs[c.name] != c.expected}
    assert not wrong


GRUB_TESTS = [
    "break",
    "continue",
    "comments",
    "echo1",
    "echo_keywords",
    "escape_comma",
    "eval",
    "for1",
    "functions",
    "gettext",
    "if",
    "leading_whitespace",
    "not",
    "return",
    "setparams",
    "shift",
    "strcmp",
    "test",
    "vars1",
    "while1",
]
MIRROR = Path("/work/.mirror/rhboot+grub2/repo")


def _grub_test_case(name: str) -> Case:
    text = subprocess.run(
        ["git", "-C", str(MIRROR), "show", f"grub-2.06:tests/grub_script_{name}.in"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # the scripts test $grubshell to pick GRUB-only commands (setparams, insmod regexp)
    text = text.replace("x$grubshell = xyes", "x = x").replace('-n "$grubshell"', "-n x")
    return Case(f"grub_script_{name}", text.replace("\t", "  "), "")


def test_grub_own_script_tests(grub_emu_batch: EmuBatch) -> None:
    """GRUB's tests/grub_script_*.in, run whole in grub-emu and in pvboot (tabs replaced: GRUB's terminal
    expands them)."""
    if not MIRROR.is_dir():
        pytest.skip("GRUB source mirror not available")
    cases = [_grub_test_case(n) for n in GRUB_TESTS]
    outputs = grub_emu_batch(cases)
    for case in cases:
        assert outputs[case.name].count("\n") > 0
        assert case.pvboot_output() == outputs[case.name], case.name


# ---- the host API ------------------------------------------------------------------------------------


def _recorder(calls: list[tuple[list[str], str | None, int]]) -> CommandFn:
    def command(interp: Interpreter, args: list[str], block: str | None) -> int:
        calls.append((args, block, interp.block_line))
        return 0

    return command


def test_registered_command_gets_block_text_apart_from_args() -> None:
    host = FakeHost()
    interp = Interpreter(host)
    calls: list[tuple[list[str], str | None, int]] = []
    interp.register("menuentry", _recorder(calls))
    interp.run_config(
        "id=gnulinux\n# c\nmenuentry 'Debian GNU/Linux' --class debian $id {\n"
        "\tlinux /vmlinuz root=/dev/xvda1   ro\n  # comment } inside\n}\n",
        "grub.cfg",
    )
    assert calls == [
        (
            ["Debian GNU/Linux", "--class", "debian", "gnulinux"],
            "\n\tlinux /vmlinuz root=/dev/xvda1   ro\n  # comment } inside\n",
            3,
        )
    ]


def test_nested_block_text_is_verbatim() -> None:
    calls: list[tuple[list[str], str | None, int]] = []
    interp = Interpreter(FakeHost())
    interp.register("submenu", _recorder(calls))
    interp.run_config("submenu 'Advanced' {\n  menuentry 'a' { linux /a; }\n}\n", "grub.cfg")
    assert calls[0][1] == "\n  menuentry 'a' { linux /a; }\n"


def test_register_overrides_builtins_and_functions() -> None:
    run = run_script("function echo { true; }\necho hi\n")
    assert run.output == "hi\n"  # commands are looked up before functions, as in GRUB
    interp = Interpreter(FakeHost())
    seen: list[list[str]] = []

    def echo(i: Interpreter, args: list[str], block: str | None) -> int:
        seen.append(args)
        return 0

    interp.register("echo", echo)
    interp.run_config("echo a b\n", "grub.cfg")
    assert seen == [["a", "b"]]


def test_command_status_becomes_dollar_question() -> None:
    host = FakeHost()
    interp = Interpreter(host)
    out: list[str] = []
    interp.console = out.append
    interp.register("fails", lambda i, args, block: 5)
    interp.run_config("fails\necho $?\nif fails; then echo no; else echo else; fi\n", "grub.cfg")
    assert out == ["5\n", "else\n"]


def test_unknown_command_is_logged_with_file_and_line() -> None:
    run = run_script("echo a\nfrobnicate --x\n")
    assert run.host.logs == ["grub.cfg:2: error: can't find command `frobnicate'."]


def test_errors_are_logged_test_failures_are_not() -> None:
    run = run_script("false\n[ a = b ]\nset x\nregexp onlyone\n")
    assert run.host.logs == [
        "grub.cfg:3: error: not an assignment.",
        "grub.cfg:4: error: two arguments expected.",
    ]


def test_syntax_error_is_logged_and_next_line_runs() -> None:
    run = run_script("echo a\nif true; then\n echo b\nfi fi\necho c\n")
    assert run.output == "a\nc\n"
    assert len(run.host.logs) == 1 and run.host.logs[0].startswith("grub.cfg:4: error: syntax error")


def test_echo_without_console_goes_to_log() -> None:
    host = FakeHost()
    Interpreter(host).run_config("echo Loading Linux ...\n", "grub.cfg")
    assert host.logs == ["echo: Loading Linux ..."]


def test_current_file_and_line() -> None:
    files = {"/boot/grub/sub.cfg": "\n\nwhere\n"}
    host = FakeHost(files)
    interp = Interpreter(host)
    seen: list[tuple[str, int]] = []

    def where(i: Interpreter, args: list[str], block: str | None) -> int:
        seen.append((i.current_file, i.current_line))
        return 0

    interp.register("where", where)
    interp.run_config(
        "where\nfunction f {\n  true\n  where\n}\nsource /boot/grub/sub.cfg\nf\nwhere\n", "grub.cfg"
    )
    assert seen == [("grub.cfg", 1), ("/boot/grub/sub.cfg", 3), ("grub.cfg", 4), ("grub.cfg", 8)]
    assert (interp.current_file, interp.current_line) == ("<script>", 0)


def test_get_set_unset_export() -> None:
    interp = Interpreter(FakeHost())
    assert interp.get("x") is None
    interp.set("x", "1")
    interp.export("y")  # a missing variable is created empty, as grub_env_export does
    assert (interp.get("x"), interp.get("y")) == ("1", "")
    interp.unset("x")
    assert interp.get("x") is None
    interp.set("1", "allowed")  # grub_env_set has no special names; only NAME=VALUE commands refuse
    assert interp.get("1") == "allowed"


def test_context_copies_exported_variables_only() -> None:
    interp = Interpreter(FakeHost())
    interp.set("plain", "1")
    interp.set("exp", "2")
    interp.export("exp")
    interp.context_open()
    assert (interp.get("plain"), interp.get("exp")) == (None, "2")
    interp.set("exp", "changed")
    interp.set("new", "3")
    interp.export("new")
    interp.context_close()
    assert (interp.get("plain"), interp.get("exp"), interp.get("new")) == ("1", "2", None)


def test_closing_initial_context_is_an_error() -> None:
    host = FakeHost()
    interp = Interpreter(host)
    interp.set("x", "1")
    interp.context_close()
    assert interp.get("x") == "1"
    assert host.logs and "cannot close the initial context" in host.logs[0]


def test_run_new_scope_gets_arguments_and_shares_variables() -> None:
    run = run_script("x=1\nfunction f { echo in-f $1; }\n")
    out: list[str] = []
    run.interp.console = out.append
    status = run.interp.run_new_scope('echo "$1" $# $x\ny=2\nf z\nreturn 3', ["a b", "c"])
    assert out == ["a b 2 1\n", "in-f z\n"] and status == 3
    assert run.interp.get("y") == "2"
    run.interp.run_config("echo [$1] [$#]\n", "grub.cfg")  # the scope (and the `return`) are gone
    assert out[-1] == "[] []\n"


def test_run_source_stops_at_syntax_error_run_config_does_not() -> None:
    run = run_script("echo a\nfi\necho b\n", mode="source")
    assert run.output == "a\n"
    run = run_script("echo a\nfi\necho b\n", mode="config")
    assert run.output == "a\nb\n"


def test_run_source_keeps_carriage_returns_and_hash_lines() -> None:
    # grub_script_execute_sourcecode splits at '\n' only; read_config_file drops '\r' and '#' lines
    run = run_script("echo 'a\r'\necho '1\n#x\n2'\n", mode="source")
    assert run.output == "a\r\n1\n#x\n2\n"


def test_execute_file_sets_config_file_and_restores_it() -> None:
    files = {"/boot/grub/sub.cfg": 'echo "$config_file $config_directory"\n'}
    run = run_script(
        'set root=hd0,msdos1\nsource /boot/grub/sub.cfg\necho "[$config_file]"\n'
        "source (hd0,msdos2)/boot/grub/sub.cfg\n",
        files,
    )
    assert run.output.splitlines()[:2] == ["(hd0,msdos1)/boot/grub/sub.cfg (hd0,msdos1)/boot/grub", "[]"]
    assert run.host.logs[-1].startswith("grub.cfg:4: (hd0,msdos2)/boot/grub/sub.cfg: not found, ignored")


def test_snapshot_and_restore() -> None:
    run = run_script("x=1\nexport x\nfunction f { echo f1; }\n")
    interp = run.interp
    snap = interp.snapshot()
    interp.run_config("x=2\ny=3\nfunction f { echo f2; }\nfunction g { true; }\n", "grub.cfg")
    interp.context_open()
    interp.set("inner", "1")
    for _ in range(2):  # a snapshot can be restored more than once
        interp.restore(snap)
        out: list[str] = []
        interp.console = out.append
        interp.run_config("echo $x [$y] [$inner]\nf\n", "grub.cfg")
        assert out == ["1 [] []\n", "f1\n"]
        assert not interp.has_function("g")
        interp.set("x", "changed")


def test_wildcards_go_through_host_glob_in_escaped_form() -> None:
    files = {"/boot/vmlinuz-6.1": "", "/boot/vmlinuz-5.10": "", "/boot/v*": ""}
    run = run_script(
        'echo /boot/vmlinuz-*\necho "/boot/v*"\necho /boot/v\\*\nx="/boot/*-5.?0"\necho $x\necho boot/*\n',
        files,
    )
    assert run.output.splitlines() == [
        "/boot/vmlinuz-5.10 /boot/vmlinuz-6.1",
        "/boot/v*",
        "/boot/v*",
        "/boot/vmlinuz-5.10",
        "boot/*",
    ]
    assert run.host.globbed == ["/boot/vmlinuz-*", "/boot/*-5.?0"]


def test_wildcards_can_be_switched_off_until_regexp_loads() -> None:
    host = FakeHost({"/a1": ""})
    interp = Interpreter(host)
    interp.wildcards = False
    out: list[str] = []
    interp.console = out.append
    interp.run_config("echo /a*\nregexp x x\necho /a*\n", "grub.cfg")
    assert out == ["/a*\n", "/a1\n"]


def test_block_to_unknown_command_is_parsed_but_not_run() -> None:
    run = run_script("menuentry x {\n  echo inside\n}\necho after\n")
    assert run.output == "after\n"


# ---- limits and hostile input ----------------------------------------------------------------------------


def _limit_message(
    script: str, limits: ScriptLimits | None = None, files: dict[str, str] | None = None, mode: str = "config"
) -> str:
    with pytest.raises(LimitError) as err:
        run_script(script, files, limits=limits, mode=mode)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_limit_steps() -> None:
    msg = _limit_message("while true; do true; done\n", ScriptLimits(max_steps=5000))
    assert msg == "grub.cfg: more than 5000 interpreter steps"


def test_steps_are_counted_per_run() -> None:
    run = run_script("for i in 1 2 3 4 5 6 7 8 9 10; do true; done\n", limits=ScriptLimits(max_steps=120))
    for _ in range(5):
        run.interp.run_config("for i in 1 2 3 4 5 6 7 8 9 10; do true; done\n", "grub.cfg")


def test_limit_function_depth() -> None:
    assert _limit_message("function f { f; }\nf\n") == "grub.cfg: more than 64 nested function calls"


def test_limit_new_scope_depth() -> None:
    interp = Interpreter(FakeHost())
    interp.register("nest", lambda i, a, b: i.run_new_scope("nest", []))
    with pytest.raises(LimitError, match="more than 64 nested function calls"):
        interp.run_config("nest\n", "grub.cfg")


def test_limit_source_depth() -> None:
    assert _limit_message("source /self\n", files={"/self": "source /self\n"}).endswith(
        "more than 16 nested source/eval levels"
    )
    assert "nested source/eval" in _limit_message("x='eval $x'\neval $x\n")


def test_limit_loop_iterations() -> None:
    msg = _limit_message("while true; do true; done\n", ScriptLimits(max_loop_iterations=50))
    assert msg == "grub.cfg: more than 50 iterations of one loop"
    msg = _limit_message("x=1\nuntil false; do x=1; done\n", ScriptLimits(max_loop_iterations=50))
    assert msg == "grub.cfg: more than 50 iterations of one loop"


def test_limit_value_size() -> None:
    msg = _limit_message("x=aaaaaaaa\nwhile true; do x=$x$x; done\n")
    assert msg == "grub.cfg: a variable value longer than 1048576 bytes ($x)"


def test_limit_variable_count() -> None:
    msg = _limit_message("v=x\nwhile true; do v=x$v; set $v=1; done\n", ScriptLimits(max_variables=100))
    assert msg == "grub.cfg: more than 100 variables"


def test_limit_total_variable_size() -> None:
    limits = ScriptLimits(max_total_size=1 << 16, max_value_size=1 << 12)
    script = "x=" + "a" * 4000 + "\nv=x\nwhile true; do v=x$v; set $v=$x; done\n"
    assert _limit_message(script, limits) == "grub.cfg: variables larger than 65536 bytes in total"


def test_limit_script_size() -> None:
    msg = _limit_message("echo x\n" * 100, ScriptLimits(max_script_size=500))
    assert msg == "grub.cfg: script larger than 500 bytes"


def test_limit_command_size() -> None:
    script = "x=" + "a" * 1000 + "\nfor i in $x$x$x$x$x$x$x$x; do true; done\n"
    msg = _limit_message(script, ScriptLimits(max_command_size=4000))
    assert msg == "grub.cfg: a command longer than 4000 bytes after expansion"


@pytest.mark.parametrize(
    "script",
    [
        "if true; then\n" * 20000 + "echo\n" + "fi\n" * 20000,
        "a " + "{ a " * 20000 + "}" * 20000 + "\n",
        "while true; do " * 20000 + "break" + "; done" * 20000 + "\n",
        "for i in 1; do\n" * 20000 + "true\n" + "done\n" * 20000,
        "function f { if true; then for i in 1; do f; done; fi; }\nf\n",
    ],
)
def test_deep_nesting_is_a_limit_not_a_recursion_error(script: str) -> None:
    msg = _limit_message(script)
    assert "nested" in msg


def test_nesting_limit_leaves_room_on_the_python_stack() -> None:
    # 150 levels of the worst kind (each if adds a frame pair) must run under the default recursion limit
    script = "if true; then\n" * 140 + "echo deep\n" + "fi\n" * 140
    assert run_script(script).output == "deep\n"


def test_long_elif_chain_and_test_parentheses_are_iterative() -> None:
    run = run_script(
        "if false; then true\n" + "elif false; then true\n" * 5000 + "else echo end; fi\n"
        "[ " + "( " * 50000 + "x ]\necho $?\n"
    )
    assert run.output == "end\n0\n"


def test_long_multiline_word_is_linear() -> None:
    start = time.monotonic()
    run = run_script('echo "' + "x\n" * 100000 + '"\n' + "echo a\\\n" * 50000 + "\n")
    assert run.output.count("x") == 100000
    assert time.monotonic() - start < 10


def test_pathological_regexp_is_bounded() -> None:
    start = time.monotonic()
    run = run_script("regexp '(a|aa|a*)*(b|a{1,100})$' " + "a" * 400 + "c\necho $?\n")
    assert run.output == "1\n"
    assert time.monotonic() - start < 10
    assert "interpreter steps" in _limit_message(
        "x=" + "a" * 3000 + "\nwhile true; do regexp '(a|aa)*(b|a{1,100})$' $x; done\n"
    )


# ---- regexp's ERE engine (ere.py) ----------------------------------------------------------------------


def test_ere_compile_errors_and_classes() -> None:
    for pattern, message in (
        ("(", "Unmatched ( or \\("),
        ("*a", "Invalid preceding regular expression"),
        ("a\\", "Trailing backslash"),
        ("[b-a]", "Invalid range end"),
        ("(a)\\1", "back-references are not supported"),
    ):
        with pytest.raises(EREError, match=re.escape(message)):
            compile_ere(pattern)

    def span(p: str, s: str) -> tuple[int, int] | None:
        groups = compile_ere(p).search(s, lambda n: None)
        return None if groups is None else groups[0]

    assert span(r"\bfoo\b", "a foo b") == (2, 5)
    assert span(r"[[:upper:]][[:lower:]]+", "abc Linux") == (4, 9)
    assert span(r"x\'", "xx") == (1, 2)
    assert span(r"\`x", "yx") is None
    assert span("a|b", "") is None


# ---- property tests -------------------------------------------------------------------------------------

_TOKENS = [
    "if",
    "then",
    "elif",
    "else",
    "fi",
    "while",
    "until",
    "do",
    "done",
    "for",
    "x",
    "in",
    "{",
    "}",
    ";",
    "\n",
    "\n",
    '"',
    "'",
    "$x",
    "${x}",
    '$"',
    "\\",
    "echo",
    "eval",
    "source",
    "function",
    "f",
    "[",
    "]",
    "!",
    "=",
    "x=$x$x",
    "x=ab",
    "set",
    "regexp",
    "'(a*)*b'",
    "break",
    "continue",
    "return",
    "shift",
    "setparams",
    "$@",
    "$*",
    "$#",
    "$1",
    "*",
    "#",
    "/a*",
    "test",
    "-f",
    "-o",
    "(",
    ")",
    "true",
    "false",
    "$?",
    "export",
    "unset",
    "configfile",
    "&&",
    "|",
    "<",
    "-eq",
    "2",
    '$"$x"',
]
_SMALL = ScriptLimits(
    max_steps=20_000,
    max_loop_iterations=200,
    max_value_size=1 << 12,
    max_depth=16,
    max_source_depth=4,
    max_nesting=40,
    max_command_size=1 << 14,
)
_HOSTILE_FILES = {"/a": "source /a\nf\n", "/b": "x=$x$x\nsource /b\n"}


def _run_hostile(script: str) -> None:
    for mode in ("config", "source"):
        with contextlib.suppress(PvbootError):  # LimitError is one; anything else is a bug
            run_script(script, _HOSTILE_FILES, limits=_SMALL, mode=mode)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=40).map(" ".join))
def test_random_token_scripts_only_raise_pvboot_errors(script: str) -> None:
    _run_hostile(script)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_random_text_only_raises_pvboot_errors(script: str) -> None:
    _run_hostile(script)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab()[]{},|*+?.^$\\-:0123456789", max_size=24), st.text(alphabet="ab-(", max_size=30))
def test_random_regexps_compile_or_fail_cleanly(pattern: str, text: str) -> None:
    try:
        program = compile_ere(pattern)
    except EREError:
        return
    groups = program.search(text, lambda n: None)
    if groups is not None:
        for span in groups:
            assert span is None or 0 <= span[0] <= span[1] <= len(text)
