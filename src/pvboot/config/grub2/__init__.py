"""GRUB 2.06's script language: lexer, parser and a bounded interpreter with GRUB's semantics.

`Interpreter` runs grub.cfg text the way GRUB's normal mode does; the host (pvboot) supplies file access
through `ScriptHost` and registers the boot-related commands (menuentry, linux, search, …) with
`Interpreter.register`. See interp.py for the execution model and its GRUB references.
"""

from .builtins import GrubErr, HelpRequested, Option, OptionError, parse_options, strtoull
from .interp import CommandFn, Interpreter, ScriptHost, ScriptLimits

__all__ = [
    "CommandFn",
    "GrubErr",
    "HelpRequested",
    "Interpreter",
    "Option",
    "OptionError",
    "ScriptHost",
    "ScriptLimits",
    "parse_options",
    "strtoull",
]
