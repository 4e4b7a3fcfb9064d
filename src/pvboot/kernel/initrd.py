"""Is an initrd something Linux will unpack? A cpio archive in the newc format, plain or compressed.

Linux's init/initramfs.c `unpack_to_rootfs` skips zero padding, accepts "070701"/"070702" (newc, crc)
headers, decompresses any of its compressors' streams, and rejects "070707" (odc: "use -H newc"). A file
that is none of these is not an initramfs: the kernel falls back to treating it as an old initrd image
(CONFIG_BLK_DEV_INITRD's /dev/ram0) or boots without it. pvboot only warns: such an initrd may be
intended (an ext2 initrd image on an old distribution).
"""

from __future__ import annotations

import io
from typing import BinaryIO

from pvboot.errors import GuestDataError
from pvboot.kernel.decompress import Source, detect, open_decoder, printable
from pvboot.limits import KernelLimits

NEWC = (b"070701", b"070702")
HEAD = 8192


def _what(data: bytes, compressed_ok: bool) -> str | None:
    """None when `data` starts (after zero padding) with a newc cpio header, else what it is instead."""
    body = data.lstrip(b"\0")
    if not body and data:
        return "only zero bytes in its first part"
    if body[:6] in NEWC:
        return None
    if body[:6] == b"070707":
        return "an odc cpio archive: Linux unpacks only newc (cpio -H newc)"
    if body[:2] in (b"\xc7\x71", b"\x71\xc7"):
        return "a binary cpio archive: Linux unpacks only newc (cpio -H newc)"
    if len(data) >= 1082 and data[1080:1082] == b"\x53\xef":
        return "an ext2/3/4 filesystem image, not a cpio initramfs (an old-style initrd for /dev/ram0?)"
    if body[:4] in (b"hsqs", b"sqsh"):
        return "a squashfs image, not a cpio initramfs"
    if detect(body):
        return None if compressed_ok else f"{detect(body)}-compressed inside: Linux decompresses only once"
    return f"not a cpio archive (it starts with {printable(body[:16])!r})"


def check_initrd(stream: BinaryIO, size: int, name: str = "") -> str | None:
    """A warning when the initrd in `stream` is not a (compressed) newc cpio archive, else None.

    `name` (e.g. "(hd0,msdos1)/boot/initrd.img-6.1.0") prefixes the warning. Reads at most a few KiB and
    decodes at most 8 KiB; raises only PvbootError subclasses (GuestDataError when unreadable)."""
    prefix = f"initrd {name}: " if name else ""
    if size <= 0:
        return f"{prefix}the file is empty"
    try:
        stream.seek(0)
        head = stream.read(min(size, HEAD))
    except OSError as exc:
        raise GuestDataError(f"{prefix}cannot read: {exc.strerror or exc}") from None
    body = head.lstrip(b"\0")
    skipped = len(head) - len(body)
    codec = detect(body)
    if codec is None:
        problem = _what(head, True)
        return f"{prefix}{problem}" if problem else None
    try:
        source = Source(stream, skipped, size - skipped)
        decoded = open_decoder(codec, source, KernelLimits()).read(512)
    except GuestDataError as exc:
        return f"{prefix}a {codec} stream that does not decode ({exc})"
    except (ValueError, EOFError, OSError, IndexError) as exc:
        return f"{prefix}a {codec} stream that does not decode ({exc})"
    inner = _what(decoded, False) if decoded else "a stream that decodes to nothing"
    return None if inner is None else f"{prefix}{codec}-compressed, but {inner}"


def check_initrd_bytes(data: bytes, name: str = "") -> str | None:
    """check_initrd on bytes already in memory."""
    return check_initrd(io.BytesIO(data), len(data), name)
