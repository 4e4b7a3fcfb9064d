"""tests/ mirrors src/pvboot/: a source module's own tests are in the test module named after it.

`src/pvboot/a/b.py` is tested in `tests/a/test_b.py` (a package's `__init__.py` in `tests/a/test_a.py`).
A module that has no such file yet is listed in `TESTED_IN` with the test modules that do test it (its
behaviour is exercised through the CLI, the sandbox or a sibling's tests), and a module with no behaviour
of its own in `NO_BEHAVIOUR`. Both lists may only shrink: an entry that gains its own test module, or
that names a module or test that no longer exists, fails here; a new module must come with its tests.
The other checks keep one helper per job (one way to run pvboot: tests/pvrun.py) and src/ free of import
cycles.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "pvboot"
TESTS = ROOT / "tests"

# modules with no logic to test apart from what imports them
NO_BEHAVIOUR = {
    "__init__.py": "the version string",
    "__main__.py": "calls cli.main",
    "config/__init__.py": "the package docstring",
    "config/grub2/__init__.py": "re-exports",
    "config/grub2/auth.py": "AuthConfig, a record",
    "config/grub2/console.py": "CommandResult, a record",
    "config/grub2/context.py": "the CommandContext Protocol",
    "config/grub2/host.py": "the ScriptHost Protocol and the session's host adapter",
    "config/grub2/runtime.py": "the ScriptRuntime Protocol",
    "disk/__init__.py": "the package docstring",
    "disk/fs/preload.py": "imports every parser",
    "disk/layer.py": "the VolumeSystem Protocol and its record",
    "errors.py": "the exception classes",
    "kernel/__init__.py": "re-exports",
    "request.py": "BootRequest, a record",
    "sandbox/__init__.py": "re-exports",
}

# module -> the test modules that test it, until it has its own
TESTED_IN = {
    "boot.py": [
        "tests/sandbox/test_answer.py",
        "tests/sandbox/test_replies.py",
        "tests/test_cli_failures.py",
    ],
    "budget.py": ["tests/fuzz/test_hostile_cases.py"],
    "cli.py": ["tests/toolstack/test_xapi.py", "tests/test_cli_guest_text.py", "tests/test_manpage.py"],
    "config/discover.py": ["tests/config/test_formats.py", "tests/test_cli_layouts.py"],
    "config/extlinux_parse.py": ["tests/config/test_extlinux.py"],
    "config/flatreaders.py": ["tests/config/test_formats.py"],
    "config/grub2/builtins.py": ["tests/config/grub2/test_script_language.py"],
    "config/grub2/commands/blscfg.py": ["tests/config/test_bls.py"],
    "config/grub2/commands/boot.py": ["tests/test_differential.py"],
    "config/grub2/commands/chainloader.py": ["tests/test_differential.py"],
    "config/grub2/commands/configfile.py": ["tests/test_differential.py", "tests/test_corpus.py"],
    "config/grub2/commands/devicetree.py": ["tests/kernel/test_kernel_cli.py"],
    "config/grub2/commands/dom0.py": ["tests/test_corpus.py"],
    "config/grub2/commands/multiboot.py": ["tests/test_differential.py"],
    "config/grub2/commands/password.py": ["tests/tui/test_tui_units.py"],
    "config/grub2/commands/probe.py": ["tests/test_differential.py"],
    "config/grub2/env.py": ["tests/config/grub2/test_script_language.py"],
    "config/grub2/ere.py": ["tests/config/grub2/test_script_language.py"],
    "config/grub2/expand.py": ["tests/config/grub2/test_script_language.py"],
    "config/grub2/extcmd.py": ["tests/config/grub2/commands/test_commands.py"],
    "config/grub2/grubenv.py": ["tests/config/grub2/commands/test_loadenv.py"],
    "config/grub2/interp.py": ["tests/config/grub2/test_script_language.py"],
    "config/grub2/lexer.py": ["tests/config/grub2/test_script_language.py"],
    "config/grub2/loader.py": ["tests/config/grub2/commands/test_linux.py", "tests/test_differential.py"],
    "config/grub2/parser.py": ["tests/config/grub2/test_script_language.py"],
    "config/grub2/session.py": ["tests/test_differential.py", "tests/test_corpus.py"],
    "config/guestview.py": ["tests/config/test_formats.py", "tests/config/grub2/commands/test_search.py"],
    "config/load.py": ["tests/config/test_formats.py"],
    "config/menusource.py": ["tests/tui/test_tui_units.py", "tests/test_menu_cli.py"],
    "config/xenserver.py": ["tests/toolstack/test_xapi.py"],
    "disk/fs/_btrfs_codecs.py": ["tests/disk/fs/test_filesystems.py"],
    "disk/fs/_common.py": ["tests/disk/fs/test_filesystems.py"],
    "disk/fs/_csum.py": ["tests/disk/fs/test_filesystems.py", "tests/fuzz/test_atheris_regressions.py"],
    "disk/fs/_deferred.py": ["tests/disk/fs/test_fs.py"],
    "disk/fs/btrfs.py": ["tests/disk/fs/test_filesystems.py", "tests/fuzz/test_atheris_regressions.py"],
    "disk/fs/ext.py": ["tests/disk/fs/test_filesystems.py"],
    "disk/fs/fat.py": ["tests/disk/fs/test_filesystems.py", "tests/fuzz/test_atheris_regressions.py"],
    "disk/fs/iso9660.py": ["tests/disk/fs/test_filesystems.py"],
    "disk/fs/xfs.py": ["tests/disk/fs/test_filesystems.py"],
    "disk/fsapi.py": ["tests/disk/fs/test_filesystems.py"],
    "disk/hostfs.py": ["tests/test_cli_guest_text.py"],
    "disk/partitions.py": ["tests/disk/test_mbr.py", "tests/disk/test_gpt.py"],
    "disk/tree.py": ["tests/disk/fs/test_filesystems.py", "tests/test_extract.py"],
    "guard.py": ["tests/sandbox/test_replies.py"],
    "kernel/decompress.py": ["tests/kernel/test_check.py", "tests/kernel/test_initrd.py"],
    "kernel/elfxen.py": ["tests/kernel/test_check.py"],
    "kernel/files.py": ["tests/kernel/test_kernel_cli.py"],
    "kernel/judge.py": ["tests/kernel/test_verdicts.py"],
    "kernel/stub.py": ["tests/kernel/test_check.py"],
    "limits.py": ["tests/fuzz/test_limits_cli.py"],
    "listing.py": ["tests/sandbox/test_replies.py", "tests/test_menu_cli.py"],
    "menu.py": [
        "tests/config/test_bls.py",
        "tests/config/test_grub_legacy.py",
        "tests/config/test_formats.py",
    ],
    "output.py": ["tests/sandbox/test_answer.py", "tests/test_cli_failures.py"],
    "reader.py": ["tests/sandbox/test_subverted.py", "tests/test_cli_layouts.py"],
    "sandbox/channel.py": ["tests/sandbox/test_replies.py", "tests/sandbox/test_protocol.py"],
    "sandbox/child.py": ["tests/sandbox/test_timeout.py", "tests/sandbox/test_identity.py"],
    "sandbox/landlock.py": ["tests/sandbox/test_confine.py", "tests/sandbox/test_subverted.py"],
    "sandbox/native.py": ["tests/sandbox/test_confine.py"],
    "sandbox/seccomp.py": ["tests/sandbox/test_confine.py", "tests/sandbox/test_strace.py"],
    "titlerules.py": ["tests/toolstack/test_xapi.py"],
    "tui/__init__.py": ["tests/tui/test_console.py"],
    "tui/cmdline.py": ["tests/tui/test_console.py"],
    "tui/page.py": ["tests/tui/test_console.py"],
    "tui/screen.py": ["tests/tui/test_console.py"],
    "tui/tty.py": ["tests/tui/test_tui_units.py", "tests/tui/test_tui_wait.py"],
}


def mirror(module: Path) -> Path:
    """The test module named after `module` (a path under src/pvboot)."""
    if module.name == "__init__.py":
        package = module.parent
        return TESTS / package / f"test_{package.name or 'pvboot'}.py"
    return TESTS / module.parent / f"test_{module.stem.lstrip('_')}.py"


def modules() -> list[Path]:
    return sorted(p.relative_to(SRC) for p in SRC.rglob("*.py"))


def test_every_module_has_its_tests() -> None:
    missing = [
        f"{module} (write {mirror(module).relative_to(ROOT)})"
        for module in modules()
        if not mirror(module).exists() and str(module) not in NO_BEHAVIOUR and str(module) not in TESTED_IN
    ]
    assert not missing, missing


def test_the_exception_lists_only_shrink() -> None:
    known = {str(module) for module in modules()}
    stale = [name for name in [*NO_BEHAVIOUR, *TESTED_IN] if name not in known]
    assert not stale, f"no such module any more: {stale}"
    have_own = [name for name in [*NO_BEHAVIOUR, *TESTED_IN] if mirror(Path(name)).exists()]
    assert not have_own, f"these now have their own test module: drop them from the lists: {have_own}"
    gone = [test for tests in TESTED_IN.values() for test in tests if not (ROOT / test).exists()]
    assert not gone, f"no such test module: {gone}"
    assert not set(NO_BEHAVIOUR) & set(TESTED_IN)


def test_one_way_to_run_pvboot() -> None:
    """Tests run pvboot through tests/pvrun.py (`command`, `environment`, `pvboot`, `boot`), so that how
    pvboot is started (interpreter, src on the path) is decided once."""
    spawn = re.compile(r"""["']-m["'],\s*["']pvboot["']""")
    elsewhere = [
        str(path.relative_to(ROOT))
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "pvrun.py" and "e2e" not in path.parts and spawn.search(path.read_text())
    ]
    assert not elsewhere, elsewhere


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The pvboot modules `path` imports anywhere (functions and TYPE_CHECKING blocks too); `from pkg
    import sub` counts as importing `pkg.sub` only."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            subs = {f"{source}.{alias.name}" for alias in node.names} & known
            found.update(subs)
            if len(subs) < len(node.names) and source in known:
                found.add(source)
    return found - {module}


def test_no_import_cycles() -> None:
    paths = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: _imports(name, path, set(paths)) for name, path in paths.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph[name]):
            assert state.get(dep) != 1, f"import cycle: {' -> '.join([*trail, name, dep])}"
            if dep not in state:
                visit(dep, [*trail, name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
