"""A CommandContext without a session or a disk, for unit tests of one command module (the `ctx`
fixture of conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from pvboot.config.bls import BlscfgState
from pvboot.config.grub2.auth import AuthConfig
from pvboot.config.grub2.commands import install
from pvboot.config.grub2.commands.search import new_cache
from pvboot.config.grub2.interp import Interpreter
from pvboot.config.source import ConfigFiles
from pvboot.disk.fsapi import Kind
from pvboot.errors import NotFoundError
from pvboot.limits import Limits
from pvboot.menu import BootSpec, Entry, FileRef


class FakeView:
    """Volumes with files, UUIDs and labels; what loaders and search ask of a GuestView."""

    def __init__(
        self, files: dict[str, dict[str, str]], uuids: dict[str, str], labels: dict[str, str]
    ) -> None:
        self.files, self.uuids, self.labels = files, uuids, labels

    def split(self, path: str, root: str | None) -> FileRef:
        if path.startswith("("):
            close = path.index(")")
            return FileRef(path[1:close], path[close + 1 :])
        return FileRef(root, path)

    def kind(self, ref: FileRef) -> Kind | None:
        return Kind.FILE if ref.path in self.files.get(ref.volume or "", {}) else None

    def fallback_for(self, ref: FileRef) -> FileRef | None:
        return None

    def read_text(self, ref: FileRef, limit: int) -> str:
        try:
            return self.files[ref.volume or ""][ref.path]
        except KeyError:
            raise NotFoundError(f"file `{ref.display()}' not found") from None

    def volume_names(self) -> list[str]:
        return list(self.files)

    def find_volume(self, name: str) -> SimpleNamespace | None:
        name = name.strip("()")
        return SimpleNamespace(name=name) if name in self.files else None

    def fs_uuid(self, name: str) -> str | None:
        return self.uuids.get(name)

    def fs_label(self, name: str) -> str | None:
        return self.labels.get(name)

    def fs_type(self, name: str) -> str | None:
        return "ext2" if name in self.files else None


@dataclass
class FakeContext:
    """The context a session gives commands, over a FakeView; `run` runs one script through them."""

    view: FakeView
    volume: str = "hd0,msdos1"
    limits: Limits = field(default_factory=Limits)
    recorder: BootSpec | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    bls_state: BlscfgState | None = None
    search_cache: dict[str, dict[str, str]] = field(default_factory=new_cache)
    entries: list[Entry] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.variables.get(name)

    def set(self, name: str, value: str) -> None:
        self.variables[name] = value

    def write(self, text: str) -> None:
        self.logs.append("out: " + text)

    def log(self, message: str) -> None:
        self.logs.append(message)

    def resolve(self, path: str) -> FileRef:
        return self.view.split(path, self.get("root"))

    def open_ref(self, path: str) -> FileRef:
        return self.resolve(path)

    def read_text(self, path: str) -> str:
        return self.view.read_text(self.open_ref(path), self.limits.max_config_size)

    def config_files(self, volume: str) -> ConfigFiles:
        raise NotImplementedError

    def add_entry(self, entry: Entry) -> None:
        self.entries.append(entry)

    def configfile(self, path: str) -> None:
        raise NotImplementedError

    def run(self, script: str) -> int:
        """`script` run by an interpreter whose commands are bound to this context."""
        interp = Interpreter(_NoHost())
        install(interp.register, self)
        return interp.run_source(script, "<test>")


class _NoHost:
    def read_file(self, path: str) -> str:
        raise NotFoundError(path)

    def file_test(self, op: str, path: str) -> bool:
        return False

    def glob(self, pattern: str) -> list[str]:
        return []

    def log(self, message: str) -> None:
        pass
