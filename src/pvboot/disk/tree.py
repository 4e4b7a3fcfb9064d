"""Path resolution inside one guest filesystem: symlinks stay inside it, hops and lengths are bounded.

This is the only place that walks paths, so every adapter gets the same containment rules: '..' never
climbs above the filesystem's root and an absolute symlink restarts at that root, never at dom0's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pvboot.disk.fsapi import FileSystem, Kind, Node
from pvboot.errors import GuestDataError, LimitError, NotFoundError
from pvboot.limits import Limits


class FileTree:
    """Read-only path operations on one guest filesystem."""

    def __init__(self, fs: FileSystem, limits: Limits, where: str = "") -> None:
        self.fs = fs
        self.limits = limits
        self.where = where  # e.g. "hd0,msdos1", for error messages

    def _name(self, path: str) -> str:
        return f"({self.where}){path}" if self.where else path

    def lookup(self, path: str, follow: bool = True) -> Node:
        """The node at `path`; symlinks are followed (the last one only when `follow`)."""
        last_error: NotFoundError | None = None
        for root in [self.fs.root(), *self.fs.alternate_roots()]:
            try:
                return self._walk(root, path, follow)
            except NotFoundError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    def _walk(self, root: Node, path: str, follow: bool) -> Node:
        hops = 0
        stack: list[Node] = [root]
        pending = _components(path)
        if len(pending) > self.limits.max_path_components:
            raise LimitError(f"path {self._name(path[:80])}: too many components")
        while pending:
            name = pending.pop(0)
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                continue
            current = stack[-1]
            if current.kind is not Kind.DIR:
                raise NotFoundError(f"{self._name(path)}: not a directory")
            node = current.child(name)
            if node is None:
                raise NotFoundError(f"{self._name(path)}: no such file")
            if node.kind is Kind.SYMLINK and (pending or follow):
                hops += 1
                if hops > self.limits.max_symlink_hops:
                    raise LimitError(
                        f"{self._name(path)}: more than {self.limits.max_symlink_hops} symlink hops"
                    )
                target = node.readlink()
                if not target:
                    raise GuestDataError(f"{self._name(path)}: empty symlink")
                if target.startswith("/"):
                    del stack[1:]
                pending = _components(target) + pending
                if len(pending) > self.limits.max_path_components:
                    raise LimitError(f"path {self._name(path[:80])}: too many components")
                continue
            stack.append(node)
        return stack[-1]

    def exists(self, path: str) -> bool:
        try:
            self.lookup(path)
        except NotFoundError:
            return False
        return True

    def is_file(self, path: str) -> bool:
        try:
            return self.lookup(path).kind is Kind.FILE
        except NotFoundError:
            return False

    def is_dir(self, path: str) -> bool:
        try:
            return self.lookup(path).kind is Kind.DIR
        except NotFoundError:
            return False

    def listdir(self, path: str) -> list[str]:
        """Names in the directory at `path`, bounded by `max_dir_entries`."""
        node = self.lookup(path)
        if node.kind is not Kind.DIR:
            raise NotFoundError(f"{self._name(path)}: not a directory")
        names: list[str] = []
        for name in _bounded(node.names(), self.limits.max_dir_entries, self._name(path)):
            names.append(name)
        return names

    def open_file(self, path: str) -> tuple[Node, BinaryIO]:
        """The regular file at `path` and a stream of it."""
        node = self.lookup(path)
        if node.kind is not Kind.FILE:
            raise NotFoundError(f"{self._name(path)}: not a regular file")
        return node, node.open()

    def read_small(self, path: str, cap: int) -> bytes:
        """The whole of a small file (a config), refusing one larger than `cap`."""
        node, stream = self.open_file(path)
        if node.size > cap:
            raise LimitError(f"{self._name(path)}: {node.size} bytes exceeds the limit of {cap}")
        data = stream.read(cap + 1)
        if len(data) > cap:
            raise LimitError(f"{self._name(path)}: exceeds the limit of {cap} bytes")
        return data


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _bounded(names: Iterator[str], bound: int, where: str) -> Iterator[str]:
    for count, name in enumerate(names, start=1):
        if count > bound:
            raise LimitError(f"{where}: more than {bound} directory entries")
        yield name
