"""GRUB's option parser (lib/arg.c grub_arg_parse), for every command pvboot implements.

As in GRUB: options may stand anywhere among the arguments and `--` ends them. `--opt=value` gives a
value; a long option that takes one (required or optional) also takes the next argument unless it starts
with `-`. A group of short options `-abc` may only end with one that takes a value, which is then the
next argument (for an optional value, only one that does not start with `-`). A value given to an option
without one, a missing required value or an unknown option is an error, except for commands registered
with GRUB_COMMAND_ACCEPT_DASH (`accept_dash`: menuentry, submenu, search, echo), which keep unknown
options as plain arguments. `options_at_start` (GRUB_COMMAND_OPTIONS_AT_START, echo) ends the options
at the first plain argument. `-h`/`--help` and `-u`/`--usage`, unless the command has options of those
names, make GRUB print help instead of running the command (`HelpRequested`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvboot.errors import GuestDataError


@dataclass(frozen=True)
class Option:
    """One entry of a command's grub_arg_option table."""

    long: str | None
    short: str | None = None
    takes_value: bool = False
    repeatable: bool = False
    optional: bool = False  # GRUB_ARG_OPTION_OPTIONAL: the value may be left out

    @property
    def key(self) -> str:
        return self.long or self.short or ""


@dataclass
class Parsed:
    """The options given (key -> each value, None where none was given) and the other arguments."""

    values: dict[str, list[str | None]] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)

    def has(self, key: str) -> bool:
        return key in self.values

    def one(self, key: str) -> str | None:
        """The last value given (a non-repeatable option given twice keeps the last, as in GRUB)."""
        found = self.values.get(key)
        return found[-1] if found else None

    def all(self, key: str) -> list[str]:
        return [v for v in self.values.get(key, []) if v is not None]


class OptionError(GuestDataError):
    """grub_arg_parse failed with GRUB_ERR_BAD_ARGUMENT; the message is GRUB's."""


class HelpRequested(OptionError):
    """-h/--help or -u/--usage: GRUB prints the command's help instead of running it."""


_HELP = Option("help", "h")
_USAGE = Option("usage", "u")
_HELP_SHORT = {"h": _HELP, "u": _USAGE}
_HELP_LONG = {"help": _HELP, "usage": _USAGE}


def parse_options(
    argv: list[str],
    options: tuple[Option, ...],
    *,
    accept_dash: bool = False,
    options_at_start: bool = False,
) -> Parsed:
    """grub_arg_parse of `argv` against the command's `options`."""
    shorts = {o.short: o for o in options if o.short}
    longs = {o.long: o for o in options if o.long}
    parsed = Parsed()

    def find_short(letter: str) -> Option | None:
        return shorts.get(letter) or _HELP_SHORT.get(letter)

    def store(opt: Option, value: str | None, arg: str) -> None:
        if opt is _HELP or opt is _USAGE:
            raise HelpRequested(f"{arg}: GRUB shows the command's {opt.long} instead")
        parsed.values.setdefault(opt.key, []).append(value)

    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if (parsed.args and options_at_start) or not arg.startswith("-") or len(arg) == 1:
            parsed.args.append(arg)
            continue
        value: str | None = None
        opt: Option | None
        if arg[1] != "-":
            if accept_dash and any(find_short(letter) is None for letter in arg[1:]):
                parsed.args.append(arg)
                continue
            for pos, letter in enumerate(arg[1:], start=1):
                opt = find_short(letter)
                if opt is None:
                    raise OptionError(f"unknown argument `-{letter}'")
                if pos < len(arg) - 1:  # more letters follow: this one cannot take a value
                    if opt.takes_value and not opt.optional:
                        raise OptionError(f"missing mandatory option for `{opt.long}'")
                    store(opt, None, f"-{letter}")
            assert opt is not None
            if opt.takes_value and i < len(argv):
                nxt = argv[i]
                if not opt.optional or len(nxt) < 2 or nxt[0] != "-":
                    value = nxt
                    i += 1
            given = f"-{arg[-1]}"
        else:
            if arg == "--":
                parsed.args.extend(argv[i:])
                break
            name, eq, text = arg[2:].partition("=")
            if eq:
                value = text
            opt = longs.get(name) or _HELP_LONG.get(name)
            takes = value is None and opt is not None and opt.takes_value
            if takes and i < len(argv) and not argv[i].startswith("-"):
                value = argv[i]
                i += 1
            if opt is None:
                if accept_dash:
                    parsed.args.append(arg)
                    continue
                raise OptionError(f"unknown argument `{arg}'")
            given = arg
        if opt.takes_value and not (value is None and opt.optional):
            if value is None:
                raise OptionError(f"missing mandatory option for `{opt.long}'")
            store(opt, value, given)
        else:
            if value is not None:
                raise OptionError(
                    f"a value was assigned to the argument `{arg}' while it doesn't require an argument"
                )
            store(opt, None, given)
    return parsed
