"""GRUB 2.06's `ls` (commands/ls.c, normal/misc.c) and `cat` (commands/cat.c), for the console's command
line; output goes through `interp.write`, errors the way the other commands report them.

- `ls`: the devices, `(hd0) (hd0,msdos2) (hd0,msdos1) ` (each disk, then its partitions in GRUB's
  iteration order: last first), then LVM volumes. `ls -l` describes each device.
- `ls (dev)`: "Partition hd0,msdos1: Filesystem type ext* - Label `x', UUID ... - Partition start at
  1024KiB - Total size 16384KiB". (No modification time: pvboot's filesystem readers do not give one.)
- `ls [-l] [-h] [-a] PATH`: the names in a directory (dot files only with -a), directories with '/'; a
  file's own name; `-l` with sizes (`-h` human-readable) or DIR. PATH without a device is on $root.
- `cat [--dos] FILE`: the file, with bytes that are not printable UTF-8 shown as <hex> as GRUB does
  (and CR as <d> unless --dos and before LF). At most `MAX_CAT` bytes are read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvboot.config.grub2.options import Opt, OptionError, parse
from pvboot.disk.fsapi import Kind
from pvboot.errors import GuestDataError, LimitError, NotFoundError
from pvboot.menu import FileRef

if TYPE_CHECKING:
    from pvboot.config.grub2.session import Grub2Session
    from pvboot.disk.volumes import Volume

MAX_CAT = 64 * 1024  # bytes of a file `cat` shows (the console keeps 64 KiB of output anyway)
MAX_LS = 64 * 1024  # characters of one `ls` listing
LS_OPTIONS = [Opt("long", "l"), Opt("human-readable", "h"), Opt("all", "a")]
CAT_OPTIONS = [Opt("dos")]
_SPACE = " \t\n\r\f\v"


def human_size(size: int) -> str:
    """grub_get_human_size (short form): 1023 -> "1023", 1536 -> "1.50K"."""
    units = ["", "K", "M", "G", "T", "P"]
    fsize, unit = size * 100, 0
    while fsize >= 102400:
        fsize = (fsize + 512) // 1024
        unit += 1
    if unit == 0:
        return str(size)
    return f"{fsize // 100}.{fsize % 100:02d}{units[unit]}"


def _kib(size: int) -> str:
    sectors = size // 512
    return f"{sectors >> 1}{'.5' if sectors & 1 else ''}KiB"


class _LsCat:
    def __init__(self, session: Grub2Session) -> None:
        self.s = session

    def _fail(self, message: str) -> int:
        self.s.log(f"error: {message}")
        if self.s.recorder is not None:
            self.s.recorder.errors.append(message)
        return 1

    def _volumes(self) -> list[Volume]:
        return list(self.s.view.disk.volumes)

    # -- ls
    def ls(self, _interp: object, args: list[str], _block: str | None) -> int:
        try:
            opts = parse(args, LS_OPTIONS)
        except OptionError as exc:
            return self._fail(str(exc))
        long, human, show_all = opts.has("long"), opts.has("human-readable"), opts.has("all")
        if not opts.args:
            return self._devices(long)
        for arg in opts.args:
            self._list(arg, long, human, show_all)
        return 0  # as ls.c: errors are reported, the status stays 0

    def _device_order(self) -> list[tuple[str, Volume | None]]:
        """GRUB's device iteration: the disk, its partitions last first, then the LVM volumes."""
        volumes = self._volumes()
        whole = next((v for v in volumes if v.name == "hd0"), None)
        parts = [v for v in volumes if v.name.startswith("hd0,")]
        others = [v for v in volumes if v.name != "hd0" and not v.name.startswith("hd0,")]
        return [("hd0", whole), *((v.name, v) for v in reversed(parts)), *((v.name, v) for v in others)]

    def _devices(self, long: bool) -> int:
        order = self._device_order()
        if long:
            for name, volume in order:
                self.s.interp.write(self._device_info(name, volume))
            self.s.interp.write("\n")
        else:
            self.s.interp.write("".join(f"({name}) " for name, _ in order) + "\n")
        return 0

    def _device_info(self, name: str, volume: Volume | None) -> str:
        """grub_normal_print_device_info."""
        partition = "," in name
        text = f"\tPartition {name}: " if partition else f"Device {name}: "
        if volume is not None and volume.has_filesystem():
            fstype = volume.fstype or "?"
            text += f"Filesystem type {'ext*' if fstype == 'ext2' else fstype}"
            try:
                label, uuid = volume.label, volume.uuid
            except GuestDataError:
                label = uuid = None
            if label:
                text += f" - Label `{label}'"
            if uuid:
                text += f", UUID {uuid}"
        else:
            text += "No known filesystem detected"
        if partition and volume is not None:
            text += f" - Partition start at {_kib(volume.offset)}"
        else:
            text += " - Sector size 512B"
        size = volume.size if volume is not None else self.s.view.disk.container.size
        return text + f" - Total size {_kib(size)}\n"

    def _list(self, arg: str, long: bool, human: bool, show_all: bool) -> int:
        ref = self.s.resolve(arg)
        if ref.volume is None:
            return self._fail("no server is specified")
        volume = self.s.view.find_volume(ref.volume)
        if volume is None and ref.volume != "hd0":
            return self._fail(f"disk `{ref.volume}' not found")
        if not ref.path:
            self.s.interp.write(self._device_info(ref.volume, volume))
            return 0
        if volume is None or not volume.has_filesystem():
            return self._fail("unknown filesystem")
        try:
            tree = volume.tree()
            node = tree.lookup(ref.path)
            if node.kind is not Kind.DIR:
                if ref.path.endswith("/"):
                    return self._fail("not a directory")
                name = ref.path.rstrip("/").rsplit("/", 1)[-1]
                line = self._line(name, node.kind, node.size, long, human)
                self.s.interp.write(line + ("" if long else "\n"))
                return 0
            names = tree.listdir(ref.path)
        except LimitError:
            raise
        except NotFoundError:
            return self._fail(f"file `{arg}' not found")
        except GuestDataError as exc:
            return self._fail(str(exc))
        out, size = [], 0
        for name in names:
            if not show_all and name.startswith("."):
                continue
            try:
                child = tree.lookup(f"{ref.path.rstrip('/')}/{name}", follow=False)
                kind, length = child.kind, child.size
            except GuestDataError:
                continue
            item = self._line(name, kind, length, long, human)
            out.append(item)
            size += len(item)
            if size > MAX_LS:
                break
        self.s.interp.write("".join(out) + ("" if long else "\n"))
        return 0

    def _line(self, name: str, kind: Kind, size: int, long: bool, human: bool) -> str:
        directory = kind is Kind.DIR
        suffix = "/" if directory else ""
        if not long:
            return f"{name}{suffix} "
        column = "DIR" if directory else human_size(size) if human else str(size)
        return f"{column:<12}{name}{suffix}\n"

    # -- cat
    def cat(self, _interp: object, args: list[str], _block: str | None) -> int:
        try:
            opts = parse(args, CAT_OPTIONS)
        except OptionError as exc:
            return self._fail(str(exc))
        if len(opts.args) != 1:
            return self._fail("filename expected")
        path = opts.args[0]
        ref = self.s.resolve(path)
        try:
            data = self._read(ref)
        except LimitError:
            raise
        except NotFoundError:
            return self._fail(f"file `{path}' not found")
        except GuestDataError as exc:
            return self._fail(str(exc))
        self.s.interp.write(render_cat(data, opts.has("dos")))
        return 0

    def _read(self, ref: FileRef) -> bytes:
        tree = self.s.view.tree_of(ref)
        if tree.lookup(ref.path).kind is not Kind.FILE:
            raise GuestDataError("not a regular file")
        _node, stream = tree.open_file(ref.path)
        return bytes(stream.read(MAX_CAT))


def render_cat(data: bytes, dos: bool) -> str:
    """cat.c's output: valid UTF-8 that is printable (or a space, or >= U+00A1) as is; anything else,
    byte by byte, as <hex>; CR as <d> unless --dos and followed by LF."""
    out: list[str] = []
    i = 0
    while i < len(data):
        byte = data[i]
        length = 1 if byte < 0x80 else 2 if 0xC2 <= byte < 0xE0 else 3 if 0xE0 <= byte < 0xF0 else 4
        chunk = data[i : i + length]
        try:
            ch = chunk.decode("utf-8")
        except UnicodeDecodeError:
            out.append(f"<{byte:x}>")
            i += 1
            continue
        i += length
        if ch == "\r":
            if dos and data[i : i + 1] == b"\n":
                continue
            out.append("<d>")
        elif ch in _SPACE or ord(ch) >= 0xA1 or (ch.isascii() and ch.isprintable()):
            out.append(ch)
        else:
            out.append("".join(f"<{b:x}>" for b in chunk))
    return "".join(out)


def install(session: Grub2Session) -> None:
    commands = _LsCat(session)
    session.interp.register("ls", commands.ls)
    session.interp.register("cat", commands.cat)
