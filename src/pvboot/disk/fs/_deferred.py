"""Third-party parsers imported on first use, declared at the top of the adapter that uses them.

Detection imports every adapter to ask its probe, so an adapter module must import cheaply: its parser
(dissect.*, pycdlib) is imported only when a filesystem it recognised is read. `deferred(name)` at
module level keeps the dependency where a reader looks for imports; `DEFERRED` lists every one declared,
so that `import_all()` can load them at once for a reader that cannot import once confined.
"""

from __future__ import annotations

import contextlib
import importlib
from types import ModuleType
from typing import Any

DEFERRED: list[str] = []  # every module named by deferred(), in declaration order


class _Deferred:
    """Stands for module `name`; the first attribute read imports it."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # introspection (copy, pickle, a scan of objects) imports nothing
            raise AttributeError(attr)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<deferred {self._name}>"


def deferred(name: str) -> Any:
    """Module `name`, imported when one of its attributes is first read (ImportError is raised then)."""
    if name not in DEFERRED:
        DEFERRED.append(name)
    return _Deferred(name)


def import_all() -> None:
    """Import every declared module now; one that is not installed is left to fail when it is needed."""
    for name in DEFERRED:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
