"""GRUB 2.06's variable store: kern/env.c plus the contexts of normal/context.c.

- A variable has a value and an export flag ("global" in kern/env.c). `set` of an existing variable keeps
  its flag; a new variable starts unexported. `export` of a missing variable creates it empty (env.c).
- `context_open()` (grub_env_context_open = grub_env_new_context(0)) starts a new context holding copies
  of the *exported* variables only, still exported; `context_close()` drops the context and everything set
  in it. This is what upstream 2.06 does (context.c copies `var->global || export_all`, and only the
  extractor commands pass export_all=1) and what Debian's grub-emu 2.06 does: a non-exported variable is
  not visible inside `configfile` (checked against grub-emu in the tests).
- Lookups only ever see the current context (grub_env_find looks in grub_current_context only).
- Write hooks (grub_register_variable_hook): a host may register one for a name (the session does for
  `root`, whose kern/main.c hook drops the parentheses of `(hd0,1)`); it rewrites every value stored
  under that name, in every context, and `unset` of a hooked variable stores "" instead of deleting
  (kern/env.c grub_env_unset). Read hooks are not modelled: the host owns what those variables mean.
"""

from __future__ import annotations

from collections.abc import Callable

from pvboot.errors import LimitError

# name -> (value, exported)
Context = dict[str, tuple[str, bool]]


class Env:
    """The stack of contexts, with size limits enforced on every write."""

    def __init__(
        self,
        max_value_size: int,
        max_variables: int,
        max_total_size: int,
        where: Callable[[], str],
    ) -> None:
        self._contexts: list[Context] = [{}]
        self._sizes: list[int] = [0]
        self._max_value = max_value_size
        self._max_vars = max_variables
        self._max_total = max_total_size
        self._total = 0
        self._where = where
        self.write_hooks: dict[str, Callable[[str], str]] = {}

    # -- limits -------------------------------------------------------------------------------------------

    def _limit(self, what: str) -> LimitError:
        return LimitError(f"{self._where()}: {what}")

    def _account(self, delta: int) -> None:
        self._total += delta
        self._sizes[-1] += delta
        if self._total > self._max_total:
            raise self._limit(f"variables larger than {self._max_total} bytes in total")

    # -- grub_env_* ---------------------------------------------------------------------------------------

    def get(self, name: str) -> str | None:
        var = self._contexts[-1].get(name)
        return None if var is None else var[0]

    def set(self, name: str, value: str) -> None:
        hook = self.write_hooks.get(name)
        if hook is not None:
            value = hook(value)
        if len(value) > self._max_value:
            raise self._limit(f"a variable value longer than {self._max_value} bytes (${name})")
        ctx = self._contexts[-1]
        old = ctx.get(name)
        if old is None:
            if len(ctx) >= self._max_vars:
                raise self._limit(f"more than {self._max_vars} variables")
            self._account(len(name) + len(value))
            ctx[name] = (value, False)
        else:
            self._account(len(value) - len(old[0]))
            ctx[name] = (value, old[1])

    def unset(self, name: str) -> None:
        if name in self.write_hooks and name in self._contexts[-1]:
            self.set(name, "")
            return
        ctx = self._contexts[-1]
        old = ctx.pop(name, None)
        if old is not None:
            self._account(-(len(name) + len(old[0])))

    def export(self, name: str) -> None:
        ctx = self._contexts[-1]
        if name not in ctx:
            self.set(name, "")
        ctx[name] = (ctx[name][0], True)

    def is_exported(self, name: str) -> bool:
        var = self._contexts[-1].get(name)
        return bool(var and var[1])

    def items_sorted(self) -> list[tuple[str, str]]:
        """The current context's variables in grub_strcmp order (what `set` without arguments prints)."""
        ctx = self._contexts[-1]
        return [(name, ctx[name][0]) for name in sorted(ctx, key=_c_key)]

    # -- contexts ----------------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return len(self._contexts)

    def context_open(self) -> None:
        new: Context = {name: var for name, var in self._contexts[-1].items() if var[1]}
        size = sum(len(name) + len(var[0]) for name, var in new.items())
        self._contexts.append(new)
        self._sizes.append(0)
        self._account(size)

    def context_close(self) -> bool:
        """Drop the current context; False (and nothing done) for the initial one, as GRUB refuses."""
        if len(self._contexts) == 1:
            return False
        self._contexts.pop()
        self._total -= self._sizes.pop()
        return True

    # -- snapshots -----------------------------------------------------------------------------------------

    def snapshot(self) -> tuple[tuple[Context, ...], tuple[int, ...], int]:
        return tuple(dict(c) for c in self._contexts), tuple(self._sizes), self._total

    def restore(self, snap: tuple[tuple[Context, ...], tuple[int, ...], int]) -> None:
        contexts, sizes, total = snap
        self._contexts = [dict(c) for c in contexts]
        self._sizes = list(sizes)
        self._total = total


def _c_key(name: str) -> bytes:
    """grub_strcmp compares unsigned bytes; order names the same way."""
    return name.encode("utf-8", "surrogateescape")
