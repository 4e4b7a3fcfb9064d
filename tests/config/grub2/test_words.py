"""GRUB words (config/grub2/words.py): one command split into words, words joined back into text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvboot.config.grub2.words import loader_cmdline, quote_word, split_command
from pvboot.errors import PvbootError


def test_split_command_and_loader_cmdline() -> None:
    env = {"x": "a  b", "e": ""}
    assert split_command('k $x"$x"\'$x\' ${x}c $e "" # c', env) == ["k", "a", "ba  b$x", "a", "bc", ""]
    assert split_command("a;b", {}) == ["a"]
    assert loader_cmdline(["a b", 'q"', "\\"]) == '"a b" q\\" \\\\'
    for bad in ("a | b", "'open", '"open', "x{"):
        with pytest.raises(PvbootError):
            split_command(bad, {})


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12), max_size=5))
def test_quote_word_reads_back_unchanged(words: list[str]) -> None:
    text = " ".join(["cmd", *(quote_word(w) for w in words)])
    assert split_command(text, {"x": "expanded"}) == ["cmd", *words]
