"""`ls` (commands/ls.c, normal/misc.c), for the console's command line; output goes to the screen.

- `ls`: the devices, `(hd0) (hd0,msdos2) (hd0,msdos1) ` (each disk, then its partitions in GRUB's
  iteration order: last first), then LVM volumes. `ls -l` describes each device.
- `ls (dev)`: "Partition hd0,msdos1: Filesystem type ext* - Label `x', UUID ... - Partition start at
  1024KiB - Total size 16384KiB". (No modification time: pvboot's filesystem readers do not give one.)
- `ls [-l] [-h] [-a] PATH`: the names in a directory (dot files only with -a), directories with '/'; a
  file's own name; `-l` with sizes (`-h` human-readable) or DIR. PATH without a device is on $root. A
  listing stops after GRUB_MAX_LS characters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvboot.config.grub2.context import CommandContext, fail, file_failure
from pvboot.config.grub2.extcmd import Command
from pvboot.config.grub2.options import Option, Parsed
from pvboot.disk.fsapi import Kind
from pvboot.errors import GuestDataError
from pvboot.limits import GRUB_MAX_LS

if TYPE_CHECKING:
    from pvboot.disk.volumes import Volume

OPTIONS = (Option("long", "l"), Option("human-readable", "h"), Option("all", "a"))


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


def ls(ctx: CommandContext, opts: Parsed, _block: str | None) -> int:
    long, human, show_all = opts.has("long"), opts.has("human-readable"), opts.has("all")
    if not opts.args:
        return _devices(ctx, long)
    for arg in opts.args:
        _list(ctx, arg, long, human, show_all)
    return 0  # as ls.c: errors are reported, the status stays 0


def _device_order(ctx: CommandContext) -> list[tuple[str, Volume | None]]:
    """GRUB's device iteration: the disk, its partitions last first, then the LVM volumes."""
    volumes = list(ctx.view.disk.volumes)
    whole = next((v for v in volumes if v.name == "hd0"), None)
    parts = [v for v in volumes if v.name.startswith("hd0,")]
    others = [v for v in volumes if v.name != "hd0" and not v.name.startswith("hd0,")]
    return [("hd0", whole), *((v.name, v) for v in reversed(parts)), *((v.name, v) for v in others)]


def _devices(ctx: CommandContext, long: bool) -> int:
    order = _device_order(ctx)
    if long:
        for name, volume in order:
            ctx.write(_device_info(ctx, name, volume))
        ctx.write("\n")
    else:
        ctx.write("".join(f"({name}) " for name, _ in order) + "\n")
    return 0


def _device_info(ctx: CommandContext, name: str, volume: Volume | None) -> str:
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
    size = volume.size if volume is not None else ctx.view.disk.container.size
    return text + f" - Total size {_kib(size)}\n"


def _list(ctx: CommandContext, arg: str, long: bool, human: bool, show_all: bool) -> int:
    ref = ctx.resolve(arg)
    if ref.volume is None:
        return fail(ctx, "no server is specified")
    volume = ctx.view.find_volume(ref.volume)
    if volume is None and ref.volume != "hd0":
        return fail(ctx, f"disk `{ref.volume}' not found")
    if not ref.path:
        ctx.write(_device_info(ctx, ref.volume, volume))
        return 0
    if volume is None or not volume.has_filesystem():
        return fail(ctx, "unknown filesystem")
    try:
        tree = volume.tree()
        node = tree.lookup(ref.path)
        if node.kind is not Kind.DIR:
            if ref.path.endswith("/"):
                return fail(ctx, "not a directory")
            name = ref.path.rstrip("/").rsplit("/", 1)[-1]
            line = _line(name, node.kind, node.size, long, human)
            ctx.write(line + ("" if long else "\n"))
            return 0
        names = tree.listdir(ref.path)
    except GuestDataError as exc:
        return file_failure(ctx, exc, arg)
    out, size = [], 0
    for name in names:
        if not show_all and name.startswith("."):
            continue
        try:
            child = tree.lookup(f"{ref.path.rstrip('/')}/{name}", follow=False)
            kind, length = child.kind, child.size
        except GuestDataError:
            continue
        item = _line(name, kind, length, long, human)
        out.append(item)
        size += len(item)
        if size > GRUB_MAX_LS:
            break
    ctx.write("".join(out) + ("" if long else "\n"))
    return 0


def _line(name: str, kind: Kind, size: int, long: bool, human: bool) -> str:
    directory = kind is Kind.DIR
    suffix = "/" if directory else ""
    if not long:
        return f"{name}{suffix} "
    column = "DIR" if directory else human_size(size) if human else str(size)
    return f"{column:<12}{name}{suffix}\n"


COMMANDS = [Command("ls", ls, OPTIONS)]
