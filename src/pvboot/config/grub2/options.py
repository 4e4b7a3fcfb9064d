"""GRUB's extcmd option parsing (lib/arg.c) for the commands pvboot implements.

Options may stand anywhere among the arguments, `--` ends them, `--opt=value` and `--opt value` both give
a required value, an optional value only comes with `=`; short options are single letters.
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


def parse(args: list[str], spec: list[Opt]) -> Parsed:
    long = {o.name: o for o in spec}
    short = {o.short: o for o in spec if o.short}
    parsed = Parsed()
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            parsed.args.extend(args[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            opt = long.get(name)
            if opt is None:
                raise OptionError(f"unknown argument `{arg}'")
            if opt.value == NONE:
                parsed.values.setdefault(opt.name, []).append(None)
            elif eq:
                parsed.values.setdefault(opt.name, []).append(value)
            elif opt.value == REQUIRED:
                if i >= len(args):
                    raise OptionError(f"missing mandatory option for `{name}'")
                parsed.values.setdefault(opt.name, []).append(args[i])
                i += 1
            else:
                parsed.values.setdefault(opt.name, []).append(None)
            continue
        if arg.startswith("-") and len(arg) > 1:
            for pos, letter in enumerate(arg[1:], start=1):
                opt = short.get(letter)
                if opt is None:
                    raise OptionError(f"unknown argument `-{letter}'")
                if opt.value == REQUIRED:
                    rest = arg[pos + 1 :]
                    if rest:
                        parsed.values.setdefault(opt.name, []).append(rest)
                    elif i < len(args):
                        parsed.values.setdefault(opt.name, []).append(args[i])
                        i += 1
                    else:
                        raise OptionError(f"missing mandatory option for `-{letter}'")
                    break
                parsed.values.setdefault(opt.name, []).append(None)
            continue
        parsed.args.append(arg)
    return parsed
