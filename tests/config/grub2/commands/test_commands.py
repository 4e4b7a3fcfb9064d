"""The commands package's shape: every module listed once, declaring its commands, none reaching the
session (commands see only config/grub2/context.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pvboot.config.grub2.commands as package
from pvboot.config.grub2.commands import MODULES, commands
from pvboot.config.grub2.extcmd import Command

COMMANDS_DIR = Path(package.__file__).parent
SESSION = "pvboot.config.grub2.session"
SRC = COMMANDS_DIR.parents[3]  # the directory holding the pvboot package


def _imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (TYPE_CHECKING blocks and functions too)."""
    package = list(path.relative_to(SRC).parent.parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative to the file's package
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_no_command_module_imports_the_session() -> None:
    files = sorted(COMMANDS_DIR.glob("*.py"))
    assert files
    for path in files:
        reached = {m for m in _imports(path) if m == SESSION or m.startswith(SESSION + ".")}
        assert not reached, f"{path.name} imports {reached}"


def test_every_module_is_listed_and_declares_commands() -> None:
    on_disk = {p.stem for p in COMMANDS_DIR.glob("*.py")} - {"__init__"}
    assert sorted(MODULES) == sorted(on_disk) and len(set(MODULES)) == len(MODULES)
    declared = commands()
    assert all(isinstance(c, Command) for c in declared)
    names = [c.name for c in declared]
    assert len(names) == len(set(names)), "a command is declared twice"
    assert {"menuentry", "linux", "initrd", "search", "load_env", "ls", "cat", "blscfg", "boot"} <= set(names)


def _module_file(name: str) -> Path | None:
    """The source file of a pvboot module (a package's __init__.py), None outside pvboot."""
    if not name.startswith("pvboot."):
        return None
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _reachable(path: Path) -> set[str]:
    """The pvboot modules `path` imports, directly or through the modules it imports."""
    reached: set[str] = set()
    todo = [path]
    while todo:
        for name in _imports(todo.pop()):
            found = _module_file(name)
            if found is not None and name not in reached:
                reached.add(name)
                todo.append(found)
    return reached


def test_no_command_module_reaches_the_session_through_other_modules() -> None:
    """Following every import (TYPE_CHECKING and function-level ones too) from a command module, the
    session is never reached: commands depend on the context, and the session on them, not back."""
    assert "pvboot.config.bls" in _reachable(COMMANDS_DIR / "blscfg.py")
    for path in sorted(COMMANDS_DIR.glob("*.py")):
        assert SESSION not in _reachable(path), path.name
