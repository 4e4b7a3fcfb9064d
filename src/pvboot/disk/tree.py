"""Path resolution inside one guest filesystem: symlinks stay inside it, hops and lengths are bounded.

This is the only place that walks paths, so every adapter gets the same containment rules: '..' never
climbs above the filesystem's root and an absolute symlink restarts at that root, never at dom0's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Protocol

from pvboot import budget
from pvboot.disk.fsapi import FileSystem, Kind, Node
from pvboot.errors import GuestDataError, LimitError, NotFoundError
from pvboot.limits import FS_TREE_CHILD_CACHE, Limits


class Placement(Protocol):
    """Where a volume's bytes lie in the host's image file (for zero-copy extraction)."""

    def host_ranges(self, offset: int, length: int) -> list[tuple[int | None, int]]:
        """Volume bytes [offset, offset+length), clamped to the volume, as (host offset or None, length) runs
        of `host_fd()`; None: not stored plainly there (compressed, zero, in a backing file)."""
        ...

    def host_fd(self) -> int:
        """The host fd the offsets refer to (not to be closed)."""
        ...


class FileTree:
    """Read-only path operations on one guest filesystem."""

    def __init__(
        self, fs: FileSystem, limits: Limits, where: str = "", placement: Placement | None = None
    ) -> None:
        self.fs = fs
        self.limits = limits
        self.where = where  # e.g. "hd0,msdos1", for error messages
        self.placement = placement  # None: file bytes can only be read through Node.open()
        # (id(directory), name) -> (directory, its entry `name` or None): config readers look the same
        # paths up again and again (each entry's kernel, `search --file`, globs), and every adapter's
        # child() scans the directory. Holding the directory keeps its id from being reused.
        self._children: dict[tuple[int, str], tuple[Node, Node | None]] = {}

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
        charge = budget.current()  # a boot loader script's step budget pays for its walks
        while pending:
            name = pending.pop(0)
            if charge is not None:
                charge(budget.PATH_COMPONENT_STEPS)
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                continue
            current = stack[-1]
            if current.kind is not Kind.DIR:
                raise NotFoundError(f"{self._name(path)}: not a directory")
            node = self._child(current, name)
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

    def _child(self, directory: Node, name: str) -> Node | None:
        key = (id(directory), name)
        hit = self._children.get(key)
        if hit is not None and hit[0] is directory:
            return hit[1]
        node = directory.child(name)
        if len(self._children) >= FS_TREE_CHILD_CACHE:
            self._children.clear()
        self._children[key] = (directory, node)
        return node

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

    def regular_file(self, path: str) -> Node:
        """The regular file at `path` (symlinks followed)."""
        node = self.lookup(path)
        if node.kind is not Kind.FILE:
            raise NotFoundError(f"{self._name(path)}: not a regular file")
        return node

    def open_file(self, path: str) -> tuple[Node, BinaryIO]:
        """The regular file at `path` and a stream of it."""
        node = self.regular_file(path)
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
