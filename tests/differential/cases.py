"""Hand-written differential cases: each grub.cfg is booted by real GRUB (grub-emu) and by pvboot.

The expected answer is never written here: it is whatever GRUB does with the disk. Files named in the
configs exist on every partition unless their name is outside harness.STANDARD (e.g. `vmlinuz-9`), which
makes a loader command fail. Layouts: see harness.LAYOUTS (`mbr2`/`gpt2`: separate /boot on partition 1,
grub.cfg at /grub/grub.cfg there, root on partition 2).
"""

from __future__ import annotations

from .harness import UUIDS, Case

U1, U2, U3 = UUIDS


def _pad(block: str) -> str:
    """A grubenv file as grub-editenv leaves it: 1024 bytes, padded with `#`."""
    return block + "#" * (1024 - len(block))


CASES = [
    # -- default: by number, title, id, invalid -----------------------------------------------------
    Case(
        "default-number",
        """set default=2
menuentry 'zero' { linux /boot/vmlinuz-1 root=/dev/xvda1 ro }
menuentry 'one' { linux /boot/vmlinuz-2 one }
menuentry 'two' { linux /boot/vmlinuz-3 two; initrd /boot/initrd-3 }
""",
    ),
    Case(
        "default-title-and-id",
        """set default="Second entry"
menuentry 'First' --id first { linux /boot/vmlinuz-1 first }
menuentry 'Second entry' --id second { linux /boot/vmlinuz-2 second }
menuentry 'Third' --id 'third-id' { linux /boot/vmlinuz-3 third }
if [ x = x ]; then set default=third-id; fi
""",
    ),
    Case(
        "default-invalid-and-out-of-range",
        """set default=nosuchentry
menuentry 'a' { linux /boot/vmlinuz-2 a }
menuentry 'b' { linux /boot/vmlinuz-3 b }
submenu 'c' {
  set default=7
  menuentry 'c0' { linux /boot/vmlinuz-1 c0 }
  menuentry 'c1' { linux /boot/vmlinuz-1 c1 }
}
""",
    ),
    Case(
        "default-number-prefix",
        """set default='1 and more'
menuentry 'a' { linux /boot/vmlinuz-1 a }
menuentry 'b' { linux /boot/vmlinuz-2 b }
""",
        why="grub_strtoul takes the leading number of `1 and more`",
    ),
    Case(
        "default-empty-string-with-ids",
        """menuentry 'with id' --id 'the-id' { linux /boot/vmlinuz-1 first }
menuentry 'no id here' { linux /boot/vmlinuz-2 second }
set default=""
""",
        why="regression: GRUB's id defaults to the title (commands/menuentry.c: `id ? : menu_title`), "
        "so an empty default matches no entry and entry 0 boots; pvboot matched the empty id of entry 1",
    ),
    # -- submenus --------------------------------------------------------------------------------------
    Case(
        "submenu-id-path",
        """set default='adv>recovery-10'
menuentry 'Debian' --id top { linux /boot/vmlinuz-3 root=UUID=x ro quiet }
submenu 'Advanced options' --id adv {
  menuentry 'Debian, 6.1.0-20' --id normal-20 { linux /boot/vmlinuz-3 ro quiet }
  menuentry 'Debian, 6.1.0-20 (recovery)' --id recovery-20 { linux /boot/vmlinuz-3 ro single }
  menuentry 'Debian, 6.1.0-10' --id normal-10 { linux /boot/vmlinuz-1 ro quiet; initrd /boot/initrd-1 }
  menuentry 'Debian, 6.1.0-10 (recovery)' --id recovery-10 {
    linux /boot/vmlinuz-1 ro single; initrd /boot/initrd-1
  }
}
""",
    ),
    Case(
        "submenu-title-and-number-path",
        """set default='Advanced>2'
menuentry 'Top' { linux /boot/vmlinuz-3 top }
submenu 'Advanced' {
  menuentry 'A0' { linux /boot/vmlinuz-1 a0 }
  menuentry 'A1' { linux /boot/vmlinuz-2 a1 }
  menuentry 'A2' { linux /boot/vmlinuz-3 a2; initrd /boot/initrd-2 /boot/initrd-1 }
}
""",
    ),
    Case(
        "submenu-double-gt-title",
        """set default='a>>b>1'
menuentry 'plain' { linux /boot/vmlinuz-1 plain }
submenu 'a>b' {
  menuentry 'x' { linux /boot/vmlinuz-2 x }
  menuentry 'y' { linux /boot/vmlinuz-3 y }
}
""",
        why="`>>` in a default path is a literal `>` (menuentry_eq)",
    ),
    Case(
        "submenu-sets-own-default-and-args",
        """set default=1
export default
menuentry 'Top' { linux /boot/vmlinuz-1 top }
submenu 'Sub' subarg1 'sub arg 2' {
  set default="$2"
  menuentry 'first' { linux /boot/vmlinuz-1 first }
  menuentry "sub arg 2" { linux /boot/vmlinuz-2 "$1" }
}
""",
        why="a submenu's body runs with its title and extra arguments as $1.. and may set default",
    ),
    Case(
        "submenu-nested-two-levels",
        """set default='outer>inner>1'
submenu 'outer' {
  menuentry 'o0' { linux /boot/vmlinuz-1 o0 }
  submenu 'inner' {
    menuentry 'i0' { linux /boot/vmlinuz-2 i0 }
    menuentry 'i1' { linux /boot/vmlinuz-3 i1; initrd /boot/initrd-3 }
  }
}
""",
    ),
    Case(
        "menuentry-option-forms",
        """menuentry --class os --id=first-id 'First' extra { linux /boot/vmlinuz-1 "$@" }
menuentry 'Second' --hotkey=s --users '' --unrestricted --id second { linux /boot/vmlinuz-2 "$@" }
menuentry -- '--dash title' { linux /boot/vmlinuz-3 "$@" }
menuentry '-x' { linux /boot/vmlinuz-1 bad }
menuentry 'Fourth' --nosuchoption { linux /boot/vmlinuz-1 bad }
menuentry 'Fifth' --class { linux /boot/vmlinuz-2 "$@" }
set default=4
""",
        why="regression: menuentry is registered with GRUB_COMMAND_ACCEPT_DASH, so an unknown option "
        "(`-x`, `--nosuchoption`) is a plain argument (lib/arg.c); pvboot refused the entry",
    ),
    Case(
        "search-option-forms",
        f"""search --fs-uuid --set root {U2}
search -nfs bootdev -h hd0,msdos1 /boot/vmlinuz-3
search --set=third --hint-future=x --label PVB-THREE
search -f -s -h hd0,msdos2 /boot/vmlinuz-2
menuentry 'options' {{ linux ($bootdev)/boot/vmlinuz-3 "r=$root" "b=$bootdev" "t=$third" }}
""",
        layout="mbr3",
        why="regression: grub_arg_parse gives `--set root` its value (an optional value is taken when "
        "the next argument does not start with `-`), `-h` is search's --hint, and unknown "
        "`--hint-…` options are skipped (search_wrap.c); pvboot searched for the UUID `root`",
    ),
    # -- grubenv -----------------------------------------------------------------------------------------
    Case(
        "grubenv-saved-entry-title",
        """if [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "${saved_entry}" ]; then set default="${saved_entry}"; fi
menuentry 'Alpha' { linux /boot/vmlinuz-1 alpha }
menuentry 'Beta' { linux /boot/vmlinuz-2 beta $extra_cmdline }
""",
        env={"saved_entry": "Beta", "extra_cmdline": "console=hvc0 quiet"},
    ),
    Case(
        "grubenv-next-entry-wins",
        """if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="${saved_entry}"
fi
menuentry 'zero' --id z { linux /boot/vmlinuz-1 zero }
submenu 'more' --id more {
  menuentry 'one' --id one { linux /boot/vmlinuz-2 one }
  menuentry 'two' --id two { linux /boot/vmlinuz-3 two }
}
""",
        env={"saved_entry": "z", "next_entry": "more>two"},
    ),
    Case(
        "grubenv-kernelopts-and-whitelist",
        """load_env -f $prefix/grubenv kernelopts
menuentry 'fedora-like' { linux /boot/vmlinuz-3 $kernelopts; initrd /boot/initrd-3 }
menuentry 'other' { linux /boot/vmlinuz-1 $other }
set default="$saved_entry"
""",
        env={"kernelopts": "root=UUID=abc ro rhgb  quiet", "saved_entry": "other", "other": "x"},
        why="load_env with variable names loads only those",
    ),
    Case(
        "grubenv-odd-lines",
        """load_env
set default="${saved_entry}"
menuentry 'Alpha' { linux /boot/vmlinuz-1 "k=$kopts" "o=$other" }
menuentry 'Beta' { linux /boot/vmlinuz-2 "k=$kopts" "o=$other" }
""",
        extra={
            (1, "/boot/grub/grubenv"): _pad(
                "# GRUB Environment Block\n\nsaved_entry=Beta\nbroken line\nkopts=K1\n"
                "# a comment \\\nother=hidden\nother=a\\ b\\\\c\n"
            )
        },
        why="regression: lib/envblk.c reads a name up to the next `=` even across lines, so an empty "
        "or `=`-less line swallows the next variable; pvboot skipped empty lines and stopped at the "
        "broken one",
    ),
    # -- fallback -----------------------------------------------------------------------------------------
    Case(
        "fallback-chain",
        """set default=0
set fallback="1 2"
menuentry 'broken' { linux /boot/vmlinuz-9 broken }
menuentry 'broken too' { linux /boot/vmlinuz-8 b2; initrd /boot/initrd-1 }
menuentry 'works' { linux /boot/vmlinuz-2 works; initrd /boot/initrd-2 }
""",
    ),
    Case(
        "fallback-lands-on-xen",
        """set fallback="1 2"
menuentry 'broken' { linux /boot/vmlinuz-9 }
menuentry 'Xen' { multiboot2 /boot/xen.gz; module2 /boot/vmlinuz-1 root=x }
menuentry 'Linux' { linux /boot/vmlinuz-2 ro }
""",
        why="regression: GRUB boots the first fallback that loads anything, here Xen (pvboot must refuse "
        "it); pvboot skipped to the next fallback that is a PV kernel",
    ),
    Case(
        "fallback-after-missing-initrd",
        """set default=0
set fallback=1
menuentry 'kernel ok, initrd missing' { linux /boot/vmlinuz-1 first; initrd /boot/initrd-9 }
menuentry 'second' { linux /boot/vmlinuz-2 second }
""",
        why="a failed initrd leaves the kernel loaded: GRUB boots entry 0 without an initrd",
    ),
    Case(
        "fallback-sees-what-failed-entry-set",
        """set ver=1
set fallback=1
menuentry 'sets and fails' { set ver=2; linux /boot/vmlinuz-9 x }
menuentry 'reads' { linux /boot/vmlinuz-$ver v=$ver }
""",
        why="regression: entries run in the menu's own context, so what a failed entry set is seen by "
        "the fallback (menu.c runs them one after the other); pvboot ran each from the menu's snapshot",
    ),
    Case(
        "fallback-list-parsing",
        """set fallback='1x 2'
menuentry 'fails' { linux /boot/vmlinuz-9 }
menuentry 'fails too' { linux /boot/vmlinuz-8 }
menuentry 'would work' { linux /boot/vmlinuz-3 }
""",
        why="regression: menu.c get_and_remove_first_entry_number: `1x 2` gives 1, then `x 2` is no "
        "number and the list ends; pvboot split on blanks and also tried 2",
    ),
    Case(
        "fallback-to-submenu",
        """set fallback=1
menuentry 'fails' { linux /boot/vmlinuz-9 }
submenu 'sub' {
  menuentry 's0' { linux /boot/vmlinuz-2 s0 }
  menuentry 's1' { linux /boot/vmlinuz-3 s1 }
}
""",
        why="regression: a fallback submenu is entered and boots its own default; pvboot refused to run "
        "a submenu",
    ),
    Case(
        "fallback-inside-submenu",
        """set default='sub>0'
set fallback=0
menuentry 'top' { linux /boot/vmlinuz-1 top }
submenu 'sub' {
  set fallback=2
  menuentry 's0' { linux /boot/vmlinuz-9 s0 }
  menuentry 's1' { linux /boot/vmlinuz-2 s1 }
  menuentry 's2' { linux /boot/vmlinuz-3 s2 }
}
""",
        why="regression: a submenu's autoboot has its own fallback list (its context's `fallback`); "
        "pvboot only knew the top-level list",
    ),
    Case(
        "chosen-and-default-inside-entry",
        """set default='sub>inner'
menuentry 'top' { linux /boot/vmlinuz-1 c=$chosen d=$default }
submenu 'sub' --id 's>x' {
  menuentry 'inner' { linux /boot/vmlinuz-2 "c=$chosen" "d=$default" }
}
""",
        why="regression: GRUB sets `chosen` (the id path, `>` doubled) and `default` (the rest of the "
        "path) before an entry runs (menu.c grub_menu_execute_entry); pvboot left them as they were",
    ),
    # -- devices: separate /boot, search, (hdX,Y) paths -------------------------------------------------
    Case(
        "separate-boot-search-fs-uuid",
        f"""insmod part_msdos
insmod ext2
set root='hd0,msdos2'
search --no-floppy --fs-uuid --set=root {U1}
menuentry 'Linux' {{
  search --no-floppy --fs-uuid --set=root {U1}
  linux /vmlinuz-2 root=UUID={U2} ro
  initrd /initrd-2
}}
""",
        layout="mbr2",
    ),
    Case(
        "search-label-and-file-set-var",
        """search --label --set=bootdev PVB-TWO
search --file --set=other /boot/initrd-2
search.fs_label PVB-ONE third
menuentry 'by label' {
  linux ($bootdev)/boot/vmlinuz-1 dev=$bootdev; initrd ($other)/boot/initrd-2 ($third)/boot/initrd-1
}
""",
        layout="mbr3",
    ),
    Case(
        "search-file-several-matches",
        """search --file --set=root /boot/vmlinuz-3
menuentry 'found' { linux /boot/vmlinuz-3 root=$root }
""",
        layout="mbr3",
        why="regression: GRUB's device iteration (kern/device.c) tries a disk's partitions last to "
        "first, so the file on msdos3 is found; pvboot took msdos1",
    ),
    Case(
        "search-file-ignores-directories",
        """set root=hd0,msdos2
search --file --set=root "/boot/sub dir"
menuentry 'dir' { linux /boot/vmlinuz-1 root=$root }
""",
        layout="mbr3",
        why="regression: search --file opens the file (commands/search.c), so a directory never matches "
        "and $root stays; pvboot matched the directory",
    ),
    Case(
        "search-cache-beats-hint",
        """search --file --set=a /boot/vmlinuz-3
search --file --set=b --hint hd0,msdos1 /boot/vmlinuz-3
search --file --set=c --hint hd0,msdos1 /boot/vmlinuz-2
menuentry 'cache' {
  search --file --set=d --hint hd0,msdos2 /boot/vmlinuz-2
  linux ($b)/boot/vmlinuz-3 a=$a b=$b c=$c d=$d
}
""",
        layout="mbr3",
        why="regression: commands/search.c remembers the first device found for a key and tries it "
        "before any hint; pvboot always tried the hints first",
    ),
    Case(
        "search-hint-first",
        """search --file --set=root --hint hd0,msdos1 /boot/vmlinuz-3
menuentry 'hinted' { linux /boot/vmlinuz-3 root=$root }
""",
        layout="mbr3",
    ),
    Case(
        "search-gpt-uuid-hint-baremetal",
        f"""search --no-floppy --fs-uuid --set=root --hint-baremetal=ahci0,gpt1 {U1.upper()}
menuentry 'gpt' {{ linux /vmlinuz-3 r=$root; initrd /initrd-3 }}
""",
        layout="gpt2",
        why="fs-uuid compares case-insensitively",
    ),
    Case(
        "probe-and-fat-label",
        """search --no-floppy --label --set=fatdev PVB-ONE
probe --set=fstype --fs ($fatdev)
probe --set=uuid --fs-uuid (hd0,msdos2)
probe --set=label --label (hd0,msdos2)
probe --set=fatuuid -u ($fatdev)
menuentry 'probe' { linux ($fatdev)/vmlinuz-2 t=$fstype u=$uuid l=$label f=$fatuuid }
""",
        layout="mbr-fat",
    ),
    Case(
        "explicit-device-paths",
        """menuentry 'devices' {
  set root=(hd0,msdos2)
  linux /boot/vmlinuz-2 a
  initrd (hd0,1)/initrd-1 ($root)/boot/initrd-2 (hd0,msdos2)/boot/initrd-3
}
""",
        layout="mbr2",
        why="regression: `set root=(hd0,msdos2)` stores `hd0,msdos2` (the root write hook of kern/main.c), "
        "so `($root)/path` works; pvboot kept the parentheses and failed on `((hd0,msdos2))/boot/initrd-2`",
    ),
    Case(
        "root-without-parentheses-gpt",
        """set root=hd0,gpt2
menuentry 'gpt root' { linux /boot/vmlinuz-1 on-gpt2; initrd /boot/initrd-1 }
""",
        layout="gpt2",
    ),
    Case(
        "bare-filesystem",
        """menuentry 'bare' { linux /boot/vmlinuz-2 root=/dev/xvda; initrd ($root)/boot/initrd-2 }
""",
        layout="bare",
    ),
    Case(
        "fat-boot-partition",
        """search --fs-uuid --set=root 1234-abc1
menuentry 'esp' { linux /vmlinuz-1 from-fat; initrd /initrd-1 }
""",
        layout="mbr-fat",
    ),
    Case(
        "paths-dot-dot-double-slash-symlinks",
        """menuentry 'paths' {
  linux /boot/../boot//vmlinuz-1/ x
  linux /boot/./sub\\ dir/../vmlinuz-2 y
  initrd //initrd.img /boot/initrd.img
}
menuentry 'links' { linux /vmlinuz a; initrd /initrd.img }
menuentry 'dangling' { linux /boot/vmlinuz-dangling; initrd /boot/initrd-3 }
set default=0
""",
        why="GRUB's fshelp resolves `.`, `..`, repeated slashes and symbolic links (relative, absolute)",
    ),
    Case(
        "symlink-kernel-fallback",
        """set fallback='1 2'
menuentry 'dangling' { linux /boot/vmlinuz-dangling }
menuentry 'trailing slash on a file' { linux /boot/vmlinuz/ t }
menuentry 'links' { linux /boot/vmlinuz b; initrd /boot/initrd.img }
""",
    ),
    Case(
        "relative-path-without-slash",
        """set fallback=1
menuentry 'relative' { linux boot/vmlinuz-1 rel }
menuentry 'absolute' { linux /boot/vmlinuz-2 abs; initrd boot/initrd-2 }
""",
        why="regression: a path must start with `/` (fs/fshelp.c: invalid file name); pvboot looked "
        "`boot/vmlinuz-1` up from the root",
    ),
    Case(
        "file-tests-are-directory-listings",
        """menuentry 'tests' {
  set r=x
  if [ -f /vmlinuz ]; then set r="${r}a"; fi
  if [ -f /boot/vmlinuz-dangling ]; then set r="${r}b"; fi
  if [ -e /boot/vmlinuz-dangling ]; then set r="${r}c"; fi
  if [ -d /boot/../boot ]; then set r="${r}d"; fi
  if [ -f /boot/vmlinuz-1/ ]; then set r="${r}e"; fi
  if [ -e vmlinuz ]; then set r="${r}f"; fi
  if [ -d boot ]; then set r="${r}g"; fi
  if [ -f boot/vmlinuz-1 ]; then set r="${r}h"; fi
  if [ -s /boot/initrd.img ]; then set r="${r}i"; fi
  if [ -s /boot/vmlinuz-dangling ]; then set r="${r}j"; fi
  if [ -d (hd0,msdos1) ]; then set r="${r}k"; fi
  if [ -e (hd0,msdos9)/boot ]; then set r="${r}l"; fi
  if [ -d /boot/. ]; then set r="${r}m"; fi
  if [ -d /vmlinuz/.. ]; then set r="${r}n"; fi
  if [ -f /boot/sub\\ dir ]; then set r="${r}o"; fi
  if [ -s / ]; then set r="${r}p"; fi
  linux /boot/vmlinuz-1 "r=$r"
}
""",
        why="regression: test -f/-e/-d look the name up in its directory's listing (commands/test.c "
        "get_fileinfo): a symlink is never a directory and need not resolve, trailing slashes go, a name "
        "without `/` is looked up in `/`; -s opens the file; pvboot resolved the whole path",
    ),
    Case(
        "fat-names-ignore-case",
        """search --fs-uuid --set=root 1234-ABC1
menuentry 'fat' {
  if [ -f /VMLINUZ-2 ]; then set k=/Vmlinuz-2; else set k=/VMLINUZ-1; fi
  if [ -d /BOOT ]; then set d=yes; fi
  linux $k upper d=$d; initrd /Initrd-1 /boot/../INITRD-2
}
""",
        layout="mbr-fat",
    ),
    Case(
        "syntax-error-drops-only-its-command",
        """set default=1
menuentry 'broken' { linux /boot/vmlinuz-1; fi }
menuentry 'first good' { linux /boot/vmlinuz-2 g1 }
menuentry 'second broken' { if true; then linux /boot/vmlinuz-1; }
menuentry 'second good' { linux /boot/vmlinuz-3 g2 }
set default=2
menuentry 'unterminated' { linux /boot/vmlinuz-1 "x }
set default=0
""",
        why="top-level chunks with a syntax error are dropped; the next line goes on (normal/main.c)",
    ),
    # -- configfile / source -------------------------------------------------------------------------------
    Case(
        "configfile-replaces-menu",
        """menuentry 'outer' { linux /boot/vmlinuz-1 outer }
configfile $prefix/real.cfg
menuentry 'never added' { linux /boot/vmlinuz-3 never }
""",
        extra={
            (1, "/boot/grub/real.cfg"): "set timeout=1\nset default=1\n"
            "menuentry 'r0' { linux /boot/vmlinuz-2 r0 }\nmenuentry 'r1' { linux /boot/vmlinuz-3 r1 }\n"
        },
    ),
    Case(
        "source-adds-entries-and-default",
        """menuentry 'main0' { linux /boot/vmlinuz-1 m0 }
source $prefix/custom.cfg
if [ -f $prefix/nothere.cfg ]; then source $prefix/nothere.cfg; fi
""",
        extra={
            (1, "/boot/grub/custom.cfg"): "set default=custom\n"
            "menuentry 'custom' { linux /boot/vmlinuz-3 custom $kernel_extra }\nset kernel_extra=late\n"
        },
    ),
    # -- the language ------------------------------------------------------------------------------------
    Case(
        "function-generates-entries",
        """function add_entry {
  menuentry "Linux $1" "$1" "$2" {
    linux /boot/vmlinuz-$3 ver=$3 title="$1" second="$2"
    initrd /boot/initrd-$3
  }
}
for v in 1 2 3; do add_entry "kernel $v" $v; done
set default='Linux kernel 2'
""",
    ),
    Case(
        "quoting",
        r"""set q="a b"
menuentry 'quoting' {
  linux /boot/vmlinuz-1 'single $q' "double $q" un\ quoted\$ $q \"x\" a'b'"c"d =\\ 'it''s'
}
""",
        why="arguments holding spaces: GRUB quotes them on the command line (lib/cmdline.c)",
    ),
    Case(
        "if-elif-while-regexp",
        """set n=0
while [ $n -lt 3 ]; do
  if [ $n = 0 ]; then set v=1; elif [ $n = 1 ]; then set v=2; else set v=3; fi
  menuentry "loop $n" $v { linux /boot/vmlinuz-$2 n=$2 }
  regexp --set=1:m '^([0-9]+)$' "$n"
  if regexp 'x' "$m"; then set n=9; else n=$n; fi
  if [ $n = 0 ]; then n=1; elif [ $n = 1 ]; then n=2; else n=3; fi
done
regexp --set=kver 'vmlinuz-(.*)' /boot/vmlinuz-3
set default="loop $kver"
set default=2
""",
    ),
    Case(
        "file-tests-pick-kernel",
        """menuentry 'tests' {
  if [ -f /boot/vmlinuz-9 ]; then set k=/boot/vmlinuz-9
  elif [ -e /boot/vmlinuz-2 -a ! -d /boot/vmlinuz-2 ]; then set k=/boot/vmlinuz-2
  fi
  if [ -s /boot/initrd-3 ]; then set i=/boot/initrd-3; fi
  linux $k picked=$k
  initrd $i
}
""",
    ),
    Case(
        "wildcard-and-path-with-space",
        """menuentry 'glob' { linux /boot/vmlinuz-1.ol? x; initrd "/boot/sub dir/vmlinuz-4" /boot/initrd-* }
""",
    ),
    Case(
        "variables-at-boot-time",
        """set args=early
menuentry 'late binding' { linux /boot/vmlinuz-$kver $args }
set args="late  value"
set kver=3
""",
    ),
    # -- loader state (GRUB's loader rules, modelled by grub_emu.LoaderModel) ---------------------
    Case(
        "initrd-before-linux",
        """menuentry 'order' { initrd /boot/initrd-1; linux /boot/vmlinuz-1 x }
""",
        why="initrd without a kernel fails (`you need to load the kernel first`): no initrd",
    ),
    Case(
        "failed-initrd-keeps-previous",
        """menuentry 'keep' {
  linux /boot/vmlinuz-1 x; initrd /boot/initrd-1; initrd /boot/initrd-2 /boot/initrd-9
}
""",
        why="regression: a failed initrd keeps the initrd loaded before (loader/i386/linux.c); pvboot "
        "dropped it",
    ),
    Case(
        "failed-linux-keeps-previous",
        """menuentry 'two kernels' {
  linux /boot/vmlinuz-1 first; initrd /boot/initrd-1
  linux /boot/vmlinuz-9 second; initrd /boot/initrd-2
}
""",
        why="regression: a failed `linux` leaves the loaded kernel (and its initrd) in place and only "
        "clears `loaded`, so the next initrd fails (loader/i386/linux.c); pvboot booted nothing",
    ),
    Case(
        "linux16-with-plain-initrd",
        """menuentry 'mixed' { linux16 /boot/vmlinuz-2 mixed; initrd16 /boot/initrd-3; initrd /boot/initrd-2 }
""",
        why="regression: linux16's `initrd16` and linux's `initrd` have separate `loaded` flags "
        "(loader/i386/pc/linux.c, loader/i386/linux.c): `initrd` after `linux16` fails; pvboot took it",
    ),
    Case(
        "boot-command-in-entry",
        """menuentry 'boot early' {
  boot; linux /boot/vmlinuz-1 a; initrd /boot/initrd-1; boot; initrd /boot/initrd-2
}
""",
        why="regression: `boot` with nothing loaded fails and the entry goes on; with a kernel loaded it "
        "boots at once",
    ),
    Case(
        "xen-default-is-multiboot",
        """menuentry 'Xen' {
  multiboot2 /boot/xen.gz dom0_mem=1G; module2 /boot/vmlinuz-1 root=x; module2 /boot/initrd-1
}
menuentry 'Linux' { linux /boot/vmlinuz-2 ro }
""",
    ),
    Case(
        "no-entries",
        """set default=0
if false; then menuentry 'never' { linux /boot/vmlinuz-1 }; fi
""",
    ),
]
