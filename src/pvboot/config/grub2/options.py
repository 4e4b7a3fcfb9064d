"""GRUB's extcmd option parsing (lib/arg.c grub_arg_parse) for the commands pvboot implements.

As in GRUB: options may stand anywhere among the arguments and `--` ends them. `--opt=value` gives a
value; a long option that takes one (required or optional) also takes the next argument unless it starts
with `-`. A group of short options `-abc` may only end with one that takes a value, which is then the
next argument (for an optional value, only one that does not start with `-`). A value given to an option
without one, a missing required value or an unknown option is an error, except for commands registered
with GRUB_COMMAND_ACCEPT_DASH (`accept_dash`: menuentry, submenu, search), which keep unknown options as
plain arguments. `-h`/`--help` and `-u`/`--usage`, unless the command has options of those names, make
GRUB print help instead of running the command.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvboot.errors import GuestDataError

NONE, REQUIRED, OPTIONAL = "none", "required", "optional"


@dataclass(frozen=True)
class Opt:
    name: str
    short: str = ""
    value: str = NONE
    repeatable: bool = False


@dataclass
class Parsed:
    values: dict[str, list[str | None]] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        return name in self.values

    def one(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[-1] if found else None

    def all(self, name: str) -> list[str]:
        return [v for v in self.values.get(name, []) if v is not None]


class OptionError(GuestDataError):
    """A command's arguments are malformed; the command fails, the script goes on."""


def parse(args: list[str], spec: list[Opt], *, accept_dash: bool = False) -> Parsed:
    long = {o.name: o for o in spec}
    short = {o.short: o for o in spec if o.short}
    help_short = {"h": "help", "u": "usage"}
    parsed = Parsed()

    def find_short(letter: str) -> Opt | None:
        if letter in short:
            return short[letter]
        if letter in help_short:
            raise OptionError(f"-{letter}: GRUB shows the command's {help_short[letter]} instead")
        return None

    def store(opt: Opt, value: str | None) -> None:
        parsed.values.setdefault(opt.name, []).append(value)

    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or len(arg) == 1:
            parsed.args.append(arg)
            continue
        value: str | None = None
        if not arg.startswith("--"):
            if accept_dash and any(letter not in short and letter not in help_short for letter in arg[1:]):
                parsed.args.append(arg)
                continue
            opt = None
            for pos, letter in enumerate(arg[1:], start=1):
                opt = find_short(letter)
                if opt is None:
                    raise OptionError(f"unknown argument `-{letter}'")
                if pos < len(arg) - 1:  # more letters follow: this one cannot take a value
                    if opt.value == REQUIRED:
                        raise OptionError(f"missing mandatory option for `{opt.name}'")
                    store(opt, None)
                    opt = None
            assert opt is not None
            if opt.value != NONE and i < len(args):
                nxt = args[i]
                if opt.value == REQUIRED or len(nxt) < 2 or not nxt.startswith("-"):
                    value = nxt
                    i += 1
        else:
            if arg == "--":
                parsed.args.extend(args[i:])
                break
            name, eq, given = arg[2:].partition("=")
            if eq:
                value = given
            found = long.get(name)
            if found is None and name in ("help", "usage"):
                raise OptionError(f"{arg}: GRUB shows the command's {name} instead")
            takes = found is not None and found.value != NONE
            if value is None and takes and i < len(args) and not args[i].startswith("-"):
                value = args[i]
                i += 1
            if found is None:
                if accept_dash:
                    parsed.args.append(arg)
                    continue
                raise OptionError(f"unknown argument `{arg}'")
            opt = found
        if opt.value == REQUIRED and value is None:
            raise OptionError(f"missing mandatory option for `{opt.name}'")
        if opt.value == NONE and value is not None:
            raise OptionError(
                f"a value was assigned to the argument `{arg}' while it doesn't require an argument"
            )
        store(opt, value)
    return parsed
