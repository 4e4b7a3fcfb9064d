"""A work budget that reaches from a boot loader script down to the disk layer, without either knowing
the other: the config/grub2 interpreter charges its steps here while it runs, and FileTree charges each
path component it walks (symlink hops included). So a loop of `search --file` through symlink chains
exhausts the script's step budget in a fraction of a second instead of running until the wall-clock
limit. Outside a script (pvboot's own lookups) nothing is charged."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

# What one path component (or symlink hop) costs in interpreter steps: walking one takes about four
# times as long as running one simple command (1M `true` commands: 0.6 s; 1M components of a
# `search --file` loop through symlinks: 2.1 s), so a script's max_steps bounds both alike.
PATH_COMPONENT_STEPS = 4

_CHARGE: ContextVar[Callable[[int], None] | None] = ContextVar("pvboot_budget", default=None)


@contextlib.contextmanager
def charging(charge: Callable[[int], None]) -> Iterator[None]:
    """While inside, current() is `charge` (which raises when the budget is spent)."""
    token = _CHARGE.set(charge)
    try:
        yield
    finally:
        _CHARGE.reset(token)


def current() -> Callable[[int], None] | None:
    """The charge function in effect, if any (look it up once per operation, call it per unit)."""
    return _CHARGE.get()
