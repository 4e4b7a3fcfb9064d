"""GRUB 2.06's script language: lexer, parser and a bounded interpreter with GRUB's semantics.

`Interpreter` runs grub.cfg text the way GRUB's normal mode does; the host (pvboot) supplies file access
through `ScriptHost`. `session.Grub2Session` runs a guest's grub.cfg and gives the boot-related commands
(commands/: menuentry, linux, search, …) their `context.CommandContext`. See interp.py for the
execution model and its GRUB references.
"""

from .interp import CommandFn, Interpreter, ScriptHost, ScriptLimits
from .numbers import GrubErr, strtoull
from .options import HelpRequested, Option, OptionError, Parsed, parse_options

__all__ = [
    "CommandFn",
    "GrubErr",
    "HelpRequested",
    "Interpreter",
    "Option",
    "OptionError",
    "Parsed",
    "ScriptHost",
    "ScriptLimits",
    "parse_options",
    "strtoull",
]
