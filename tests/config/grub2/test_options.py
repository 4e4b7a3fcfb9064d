"""GRUB's option parser (config/grub2/options.py), against lib/arg.c grub_arg_parse's rules."""

from __future__ import annotations

import pytest

from pvboot.config.grub2.options import HelpRequested, Option, OptionError, parse_options

OPTS = (
    Option("set", "s", takes_value=True, repeatable=True),
    Option("hint", None, takes_value=True),
    Option("no-floppy", "n"),
)


def test_parse_options_like_grub_arg_parse() -> None:
    parsed = parse_options(["--set=a", "-s", "b", "x", "--hint", "h", "-n", "y"], OPTS)
    assert parsed.values == {"set": ["a", "b"], "hint": ["h"], "no-floppy": [None]}
    assert parsed.args == ["x", "y"]
    assert parsed.all("set") == ["a", "b"] and parsed.one("hint") == "h" and parsed.has("no-floppy")
    assert parse_options(["a", "--", "-n"], OPTS).args == ["a", "-n"]
    with pytest.raises(OptionError, match="unknown argument `-x'"):
        parse_options(["-x"], OPTS)
    with pytest.raises(OptionError, match="missing mandatory option for `set'"):
        parse_options(["-sfoo"], OPTS)


def test_values_and_their_errors() -> None:
    with pytest.raises(OptionError, match="missing mandatory option for `hint'"):
        parse_options(["--hint", "-n"], OPTS)  # a long option's value never starts with '-'
    assert parse_options(["-s", "-n"], OPTS).all("set") == ["-n"]  # a short one's required value may
    with pytest.raises(OptionError, match="a value was assigned to the argument `--no-floppy=1'"):
        parse_options(["--no-floppy=1"], OPTS)
    assert parse_options(["--set=a", "--set=b"], OPTS).one("set") == "b"


def test_optional_value() -> None:
    opts = (Option("set", "s", takes_value=True, optional=True), Option("file", "f"))
    assert parse_options(["-s", "-f", "k"], opts).values == {"set": [None], "file": [None]}
    assert parse_options(["-s", "v", "k"], opts).values == {"set": ["v"]}
    assert parse_options(["-sf", "k"], opts).values == {"set": [None], "file": [None]}
    assert parse_options(["--set", "k"], opts).one("set") == "k"


def test_accept_dash_and_options_at_start() -> None:
    opts = (Option("id", takes_value=True), Option(None, "n"))
    parsed = parse_options(["-x", "--other", "-n", "t", "--id", "i"], opts, accept_dash=True)
    assert parsed.args == ["-x", "--other", "t"] and parsed.one("id") == "i" and parsed.has("n")
    with pytest.raises(OptionError, match="unknown argument `--other'"):
        parse_options(["--other"], opts)
    parsed = parse_options(["-n", "a", "-n"], opts, options_at_start=True)
    assert parsed.args == ["a", "-n"] and parsed.values == {"n": [None]}


def test_help_and_usage() -> None:
    for argv, message in ((["-h"], "-h: GRUB shows the command's help"), (["--usage"], "--usage: GRUB")):
        with pytest.raises(HelpRequested, match=message):
            parse_options(argv, OPTS)
    # a command's own -h is not help (search --hint), and HelpRequested is an OptionError
    assert parse_options(["-h", "x"], (Option("hint", "h", takes_value=True),)).one("hint") == "x"
    assert issubclass(HelpRequested, OptionError)
    with pytest.raises(OptionError, match="a value was assigned"):
        parse_options(["--help=x"], OPTS)  # lib/arg.c checks the value before it shows help
