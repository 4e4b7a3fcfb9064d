"""The guest disk image as guest-visible bytes: a raw file or block device, or a read-only qcow2 chain.

Every qcow2 header field is hostile. It is validated here before dissect sees it, and dissect only ever
parses a canonical header rebuilt from the validated fields (which also sidesteps its misreading of v2
headers). L1/L2 tables are read lazily with bounded caches. Unlike qemu, which reads zeros past the end
of a truncated image, pvboot refuses clusters stored past it: a half-copied image must not boot. A
backing file must be a plain sibling of the image naming it, so the guest cannot direct pvboot at any
other host file.
"""

from __future__ import annotations

import errno
import importlib.util
import io
import os
import stat
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from pvboot.disk.stream import append_run
from pvboot.errors import GuestDataError, PvbootError, UsageError
from pvboot.limits import DISK_MAX_VIRTUAL_SIZE, MIB, QCOW2_L2_CACHE_BYTES, Limits, check

QCOW2_MAGIC = b"QFI\xfb"
_V2 = struct.Struct(">4sIQIIQIIQQIIQ")  # the 72-byte version 2 header
_V3 = struct.Struct(">QQQII")  # features, refcount_order, header_length
_SYNTH = struct.Struct(">4sIQIIQIIQQIIQQQQIIB7x")  # what dissect parses: 112 bytes
_EXT_END, _EXT_BACKING_FORMAT = 0, 0xE2792ACA
_INCOMPAT_DIRTY, _INCOMPAT_CORRUPT, _INCOMPAT_DATA_FILE, _INCOMPAT_COMPRESSION, _INCOMPAT_EXTL2 = (
    1 << b for b in range(5)
)


def _dissect_qcow2() -> tuple[Any, Any]:
    """dissect's `qcow2` and `c_qcow2` modules, without running the `dissect.hypervisor` package's
    __init__, which imports every format dissect knows (VMDK, VHDX, VDI, Hyper-V, OVF, ...: ~70 ms of
    start-up) where qcow2 alone costs ~7 ms. The package is registered uninitialised (its __path__ set,
    its body not run), so only the submodules asked for are loaded."""
    if "dissect.hypervisor" not in sys.modules:
        spec = importlib.util.find_spec("dissect.hypervisor")
        if spec is not None and spec.submodule_search_locations is not None:
            sys.modules["dissect.hypervisor"] = importlib.util.module_from_spec(spec)
    from dissect.hypervisor.disk import c_qcow2, qcow2

    return qcow2, c_qcow2


def _oneline(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _os_open(path: str, flags: int) -> int:
    return os.open(path, flags)


# How the image and its backing files are opened. The sandbox's confined reader replaces it so that they
# are the fds it opened while it still could (open_backing_chain; pvboot/sandbox/confine.py).
host_opener: Callable[[str, int], int] = _os_open


class _HostFile:
    """One open host file or block device, read with pread so that several readers can share the fd."""

    def __init__(self, path: str, *, nofollow: bool, fd: int | None = None) -> None:
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK  # NONBLOCK: a FIFO must not hang
        self.fd = host_opener(path, flags | (os.O_NOFOLLOW if nofollow else 0)) if fd is None else fd
        try:
            st = os.fstat(self.fd)
            if stat.S_ISREG(st.st_mode):
                self.size = st.st_size
            elif stat.S_ISBLK(st.st_mode):
                self.size = os.lseek(self.fd, 0, os.SEEK_END)
            else:
                raise OSError(errno.EINVAL, "not a regular file or block device")
            os.set_blocking(self.fd, True)
        except BaseException:
            os.close(self.fd)
            raise
        self.path = path
        self.identity = (st.st_dev, st.st_ino)

    def read_at(self, offset: int, length: int) -> bytes:
        """Exactly `length` bytes, zeros past the end of the file (a raw backing file shorter than its
        overlay reads so, as in qemu)."""
        parts, done = [], 0
        while done < length and offset + done < self.size:
            chunk = os.pread(self.fd, min(length - done, self.size - offset - done, 16 * MIB), offset + done)
            if not chunk:
                break
            parts.append(chunk)
            done += len(chunk)
        data = b"".join(parts)
        return data + bytes(length - len(data)) if len(data) < length else data

    def read_within(self, offset: int, length: int, what: str) -> bytes:
        """Exactly `length` bytes that the image says are stored here: a truncated image is an error."""
        if offset + length > self.size:
            raise GuestDataError(f"{self.path}: {what} at {offset:#x} lies beyond the end of the file")
        return self.read_at(offset, length)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass(frozen=True)
class _Header:
    cluster_bits: int
    size: int
    l1_size: int
    l1_offset: int
    compression_type: int
    backing_name: bytes | None
    backing_format: str | None


def _parse_header(host: _HostFile, limits: Limits) -> _Header:
    """Check every header field pvboot relies on, as qemu's qcow2_do_open does, before any table is read."""
    name = host.path
    if host.size < _V2.size:
        raise GuestDataError(f"{name}: truncated qcow2 header")
    first = host.read_at(0, _V2.size + _V3.size + 8)
    (_, version, bf_offset, bf_size, cluster_bits, size, crypt, l1_size, l1_offset, _rt_offset,
     rt_clusters, _, _) = _V2.unpack_from(first)  # fmt: skip
    if version not in (2, 3):
        raise GuestDataError(f"{name}: unsupported qcow2 version {version}")
    if not 9 <= cluster_bits <= 21:
        raise GuestDataError(f"{name}: qcow2 cluster_bits {cluster_bits} is outside 9..21")
    cluster = 1 << cluster_bits
    incompat, header_length, compression = 0, _V2.size, 0
    if version == 3:
        incompat, _, _, _, header_length = _V3.unpack_from(first, _V2.size)
        if header_length < 104 or header_length % 8 or header_length > cluster:
            raise GuestDataError(f"{name}: bad qcow2 header_length {header_length}")
        if header_length > 104:
            compression = first[104]
    if crypt:
        raise GuestDataError(f"{name}: encrypted qcow2 images are not supported")
    unknown = incompat & ~(_INCOMPAT_DIRTY | _INCOMPAT_CORRUPT | _INCOMPAT_COMPRESSION)
    if unknown & _INCOMPAT_DATA_FILE:
        raise GuestDataError(f"{name}: qcow2 images with an external data file are not supported")
    if unknown & _INCOMPAT_EXTL2:
        raise GuestDataError(f"{name}: qcow2 extended L2 entries (subclusters) are not supported")
    if unknown:
        raise GuestDataError(f"{name}: unknown qcow2 incompatible features {unknown:#x}")
    if compression not in (0, 1) or bool(compression) != bool(incompat & _INCOMPAT_COMPRESSION):
        raise GuestDataError(f"{name}: bad qcow2 compression type {compression}")
    if size > DISK_MAX_VIRTUAL_SIZE:
        raise GuestDataError(f"{name}: qcow2 virtual size {size} is implausible")
    check(l1_size * 8 + rt_clusters * cluster, limits.max_qcow2_table, f"{name}: qcow2 L1 + refcount tables")
    per_l1 = cluster * (cluster // 8)
    if l1_size < -(-size // per_l1):
        raise GuestDataError(f"{name}: qcow2 L1 table too small for the virtual size")
    if l1_offset % cluster or l1_offset + l1_size * 8 > host.size:
        raise GuestDataError(f"{name}: qcow2 L1 table at {l1_offset:#x} is misaligned or past EOF")
    if bf_offset and (bf_offset > cluster or bf_size > min(1023, cluster - bf_offset)):
        raise GuestDataError(f"{name}: bad qcow2 backing file name location")
    area = host.read_at(0, bf_offset + bf_size if bf_offset else cluster)
    backing_name = area[bf_offset : bf_offset + bf_size] if bf_offset and bf_size else None
    return _Header(cluster_bits, size, l1_size, l1_offset, compression, backing_name,
                   _backing_format(area[: bf_offset or cluster], header_length, name))  # fmt: skip


def _backing_format(area: bytes, offset: int, name: str) -> str | None:
    """The backing format header extension, if any (the area is bounded by one cluster)."""
    fmt = None
    while offset + 8 <= len(area):
        magic, length = struct.unpack_from(">II", area, offset)
        offset += 8
        if magic == _EXT_END:
            break
        if length > len(area) - offset:
            raise GuestDataError(f"{name}: qcow2 header extension too large")
        if magic == _EXT_BACKING_FORMAT:
            fmt = area[offset : offset + length].decode("ascii", "replace")
            if fmt not in ("raw", "qcow2"):
                raise GuestDataError(f"{name}: unsupported backing file format {fmt[:32]!r}")
        offset += (length + 7) & ~7
    return fmt


class _L1Table:
    """The L1 table read on demand in 4 KiB chunks, so a large table costs no memory."""

    def __init__(self, host: _HostFile, offset: int, count: int) -> None:
        self._host, self._offset, self._count = host, offset, count
        self._chunk: Callable[[int], bytes] = lru_cache(256)(lambda i: host.read_at(offset + i * 4096, 4096))

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return True

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self._count:
            raise GuestDataError(f"{self._host.path}: qcow2 L1 index {index} out of range")
        return int.from_bytes(self._chunk(index // 512)[index % 512 * 8 :][:8], "big")


class _L2Table:
    """One L2 table kept as bytes (dissect's list of ints costs five times the memory)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def entry(self, index: int) -> int:
        return int.from_bytes(self._data[index * 8 : index * 8 + 8], "big")

    def bitmap(self, index: int) -> int:
        return 0  # extended L2 entries are refused in _parse_header


def _qcow2_layer(
    host: _HostFile, limits: Limits, seen: set[tuple[int, int]], depth: int, follow_backing: bool = True
) -> _Qcow2Layer:
    header = _parse_header(host, limits)
    backing: _HostFile | _Qcow2Layer | None = None
    if header.backing_name and not follow_backing:
        shown = header.backing_name[:64].decode("utf-8", "replace")
        raise GuestDataError(
            f"{host.path}: a qcow2 header naming a backing file ({shown!r}) in an image not named "
            "*.qcow2: pvboot follows it only with --format=qcow2 (a guest can write such a header "
            "into its own raw disk to reach another guest's; --format=raw reads the disk as raw)"
        )
    if header.backing_name:
        backing = _open_backing(host, header, limits, seen, depth + 1)
    try:
        return _Qcow2Layer(host, header, backing)
    except BaseException:
        if backing is not None:
            backing.close()
        raise


def _plain_name(name: bytes) -> bool:
    return b"/" not in name and b"\0" not in name and name not in (b"", b".", b"..")


def _open_backing(
    host: _HostFile, header: _Header, limits: Limits, seen: set[tuple[int, int]], depth: int
) -> _HostFile | _Qcow2Layer:
    """Open the backing file: only a sibling of `host`, never through a symlink, never twice."""
    raw_name = cast(bytes, header.backing_name)
    shown = raw_name[:64].decode("utf-8", "replace")
    if not _plain_name(raw_name):
        raise GuestDataError(f"{host.path}: backing file {shown!r} is not a plain name next to the image")
    check(depth, limits.max_backing_depth, f"{host.path}: qcow2 backing chain depth")
    path = os.path.join(os.path.dirname(host.path) or ".", os.fsdecode(raw_name))
    try:
        child = _HostFile(path, nofollow=True)
    except OSError as e:
        why = "it is a symlink" if e.errno == errno.ELOOP else e.strerror
        raise GuestDataError(f"{host.path}: cannot open backing file {shown!r}: {why}") from None
    try:
        if child.identity in seen:
            raise GuestDataError(f"{host.path}: qcow2 backing chain loops at {shown!r}")
        seen.add(child.identity)
        fmt = header.backing_format
        if fmt is None:  # legacy image: probe, as qemu does
            fmt = "qcow2" if child.read_at(0, 4) == QCOW2_MAGIC else "raw"
        if fmt == "raw":
            return child
        if child.read_at(0, 4) != QCOW2_MAGIC:
            raise GuestDataError(f"{host.path}: backing file {shown!r} is not qcow2")
        return _qcow2_layer(child, limits, seen, depth)
    except BaseException:
        child.close()
        raise


class _Qcow2Layer:
    """One qcow2 image of a chain: dissect maps guest offsets to runs, pvboot reads them."""

    def __init__(self, host: _HostFile, header: _Header, backing: _HostFile | _Qcow2Layer | None) -> None:
        QCow2 = _dissect_qcow2()[0].QCow2

        self.host, self.header, self.backing, self.size = host, header, backing, header.size
        cluster = 1 << header.cluster_bits
        incompat = _INCOMPAT_COMPRESSION if header.compression_type else 0
        synthetic = _SYNTH.pack(QCOW2_MAGIC, 3, 0, 0, header.cluster_bits, header.size, 0, header.l1_size,
                                header.l1_offset, 0, 0, 0, 0, incompat, 0, 0, 4, cluster,
                                header.compression_type)  # fmt: skip
        try:
            self.qcow2 = QCow2(io.BytesIO(synthetic), allow_no_backing_file=True)
        except Exception as e:
            raise GuestDataError(f"{host.path}: qcow2 header rejected: {_oneline(e)}") from None
        self.qcow2.fh = self.qcow2.data_file = io.BytesIO()  # dissect must not read the host file itself
        self.qcow2.l2_table = lru_cache(max(2, min(128, QCOW2_L2_CACHE_BYTES // cluster)))(self._load_l2)
        self.stream = _make_stream(self)

    def _load_l2(self, offset: int) -> _L2Table:
        if offset % (1 << self.header.cluster_bits):
            raise GuestDataError(f"{self.host.path}: unaligned qcow2 L2 table offset {offset:#x}")
        return _L2Table(self.host.read_within(offset, 1 << self.header.cluster_bits, "qcow2 L2 table"))

    def read_at(self, offset: int, length: int) -> bytes:
        self.stream.seek(offset)
        data = self.stream.read(length)
        return data + bytes(length - len(data))

    def close(self) -> None:
        self.host.close()
        if self.backing is not None:
            self.backing.close()


def _make_stream(layer: _Qcow2Layer) -> io.RawIOBase:
    qcow2, c_qcow2 = _dissect_qcow2()
    UNALLOCATED_SUBCLUSTER_TYPES, ZERO_SUBCLUSTER_TYPES = (
        c_qcow2.UNALLOCATED_SUBCLUSTER_TYPES,
        c_qcow2.ZERO_SUBCLUSTER_TYPES,
    )
    T = c_qcow2.QCow2SubclusterType
    if TYPE_CHECKING:
        from dissect.hypervisor.disk.qcow2 import QCow2Stream
    else:
        QCow2Stream = qcow2.QCow2Stream

    class Stream(QCow2Stream):  # type: ignore[misc, unused-ignore]  # dissect is untyped
        """dissect's run mapping; pvboot's reads, with exact lengths and one error type."""

        def runs(self, offset: int, length: int) -> list[tuple[object, int, int, int]]:
            try:
                out = list(self._yield_runs(offset, length))
            except PvbootError:
                raise
            except Exception as e:
                raise GuestDataError(f"{layer.host.path}: bad qcow2 tables: {_oneline(e)}") from None
            if sum(r[3] for r in out) != length or any(r[3] <= 0 for r in out):
                raise GuestDataError(f"{layer.host.path}: inconsistent qcow2 mapping at {offset:#x}")
            return out

        def _read(self, offset: int, length: int) -> bytes:
            cluster = 1 << layer.header.cluster_bits
            out = []
            for kind, guest, host, n in self.runs(offset, length):
                if kind in ZERO_SUBCLUSTER_TYPES:
                    out.append(bytes(n))
                elif kind in UNALLOCATED_SUBCLUSTER_TYPES:
                    out.append(layer.backing.read_at(guest, n) if layer.backing else bytes(n))
                elif kind == T.QCOW2_SUBCLUSTER_COMPRESSED:
                    out.append(self._compressed(host, guest % cluster, n))
                elif kind == T.QCOW2_SUBCLUSTER_NORMAL:
                    if (host - guest % cluster) % cluster:
                        raise GuestDataError(f"{layer.host.path}: unaligned qcow2 data cluster {host:#x}")
                    out.append(layer.host.read_within(host, n, "qcow2 data cluster"))
                else:
                    raise GuestDataError(f"{layer.host.path}: invalid qcow2 cluster type at {guest:#x}")
            return b"".join(out)

        def _compressed(self, descriptor: int, start: int, n: int) -> bytes:
            q = self.qcow2
            coffset = descriptor & q.cluster_offset_mask
            sectors = ((descriptor >> q.csize_shift) & q.csize_mask) + 1
            # Only the start must be stored: qemu does not pad the last compressed sector.
            layer.host.read_within(coffset, 1, "compressed qcow2 cluster")
            raw = layer.host.read_at(coffset, sectors * 512 - (coffset & 511))
            try:
                data = self._decompress(raw)
            except Exception as e:
                raise GuestDataError(
                    f"{layer.host.path}: bad compressed qcow2 cluster: {_oneline(e)}"
                ) from None
            if len(data) != q.cluster_size:
                raise GuestDataError(f"{layer.host.path}: compressed qcow2 cluster decompresses short")
            return bytes(data[start : start + n])

    return cast(
        io.RawIOBase, Stream(layer.qcow2, _L1Table(layer.host, layer.header.l1_offset, layer.header.l1_size))
    )


class Container:
    """The guest-visible disk: `stream` reads its bytes, `host_ranges` says which lie plainly in the host."""

    def __init__(
        self, host: _HostFile, fmt: str, stream: BinaryIO, size: int, layer: _Qcow2Layer | None
    ) -> None:
        self._host, self._layer = host, layer
        self.format, self.stream, self.size, self.path = fmt, stream, size, host.path

    def host_ranges(self, offset: int, length: int) -> list[tuple[int | None, int]]:
        """Split guest [offset, offset+length) (clamped to the disk) into (host offset or None, length) runs.

        A host offset means those guest bytes are the same bytes of `fileno_for_plain()`; None means they
        are compressed, zero, unallocated or in a backing file, and must be read through `stream`.
        """
        length = max(0, min(length, self.size - offset))
        if offset < 0 or length == 0:
            return []
        if self._layer is None:
            return [(offset, length)]
        T = _dissect_qcow2()[1].QCow2SubclusterType

        layer, out = self._layer, cast(list[tuple[int | None, int]], [])
        cluster = 1 << layer.header.cluster_bits
        for kind, guest, host, n in layer.stream.runs(offset, length):  # type: ignore[attr-defined]
            plain = kind == T.QCOW2_SUBCLUSTER_NORMAL and not (host - guest % cluster) % cluster
            append_run(out, host if plain and host + n <= layer.host.size else None, n)
        return out

    def fileno_for_plain(self) -> int:
        """The host fd that `host_ranges` offsets refer to (owned by this container; do not close it)."""
        return self._host.fd

    def close(self) -> None:
        self.stream.close()
        if self._layer is not None:
            self._layer.close()
        self._host.close()

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


QCOW2_NAMES = (".qcow2", ".qcow")  # image names that declare qcow2 as --format=qcow2 does


def declared_qcow2(path: str, fmt: str | None) -> bool:
    """Whether the admin's own words (--format=qcow2, or a *.qcow2 name without --format=raw) let a qcow2
    image at `path` have its backing chain followed (open_container says why)."""
    return fmt == "qcow2" or (fmt is None and path.lower().endswith(QCOW2_NAMES))


def open_backing_chain(image: str, image_fd: int, dir_fd: int, limits: Limits) -> dict[str, int | OSError]:
    """In the confined reader, the one time the image's directory is readable (sandbox/confine.py, step
    11): open the qcow2 backing chain of the image at `image_fd` as open_container will walk it, so that
    the reader needs no directory afterwards. Each header is checked as open_container checks it; each
    name must be a plain name, beside the image (`dir_fd`), a regular file and no symlink, at most
    `limits.max_backing_depth` of them. Returns file name -> fd, or the OSError opening it gave, for the
    reader to report; anything else wrong simply ends the walk (open_container meets it and says so)."""
    opened: dict[str, int | OSError] = {}
    host = _HostFile(image, nofollow=False, fd=os.dup(image_fd))
    seen = {host.identity}
    try:
        while len(opened) < limits.max_backing_depth and host.read_at(0, 4) == QCOW2_MAGIC:
            header = _parse_header(host, limits)
            if not header.backing_name or not _plain_name(header.backing_name):
                break
            name = os.fsdecode(header.backing_name)
            try:
                fd = _open_sibling(dir_fd, name)
            except OSError as exc:
                opened[name] = exc
                break
            opened[name] = fd
            backing = _HostFile(name, nofollow=True, fd=os.dup(fd))
            host.close()
            host = backing
            if host.identity in seen:
                break
            seen.add(host.identity)
            if (header.backing_format or "qcow2") != "qcow2":
                break
    except (OSError, PvbootError):
        pass
    finally:
        host.close()
    return opened


def _open_sibling(dir_fd: int, name: str) -> int:
    """`name` in the directory `dir_fd`, read-only, only a regular file (checked before it is opened,
    so that no device or FIFO is ever opened), never through a symlink."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, "it is a symlink")
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EACCES, "not a regular file (pvboot opens no device the guest names)")
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK | os.O_NOFOLLOW
    fd = os.open(name, flags, dir_fd=dir_fd)
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise OSError(errno.EACCES, "not a regular file (pvboot opens no device the guest names)")
    return fd


def open_container(path: str, limits: Limits, fmt: str | None = None) -> Container:
    """Open the disk image at `path` (trusted: the admin named it) read-only.

    `fmt` "raw" or "qcow2" is the format the admin declared; None probes the qcow2 magic. A guest can
    write a qcow2 header into its own raw disk (into the MBR's boot code, say) and so name a sibling
    image, another guest's disk, as its backing file, whose files pvboot would then boot or copy into
    the guest. So a probed qcow2 has its backing chain followed only when the admin's own name for the
    image says qcow2 (`*.qcow2`, `*.qcow`) or `--format=qcow2` declares it; a probed qcow2 without a
    backing file holds nothing but the guest's own bytes. (libxl hands a bootloader either a raw file
    or a device it attached, so a real qcow2 file only comes from an admin or a control plane.)
    """
    if fmt not in (None, "raw", "qcow2"):
        raise UsageError(f"unsupported disk format {fmt!r} (raw or qcow2)")
    try:
        host = _HostFile(path, nofollow=False)
    except OSError as e:
        raise UsageError(f"cannot open disk image {path}: {e.strerror}") from None
    try:
        is_qcow2 = host.read_at(0, 4) == QCOW2_MAGIC
        if fmt == "qcow2" and not is_qcow2:
            raise GuestDataError(f"{path}: not a qcow2 image")
        if fmt == "raw" or not is_qcow2:
            raw = cast(BinaryIO, open(host.fd, "rb", closefd=False))  # noqa: SIM115 - closed with host
            return Container(host, "raw", raw, host.size, None)
        layer = _qcow2_layer(host, limits, {host.identity}, 0, follow_backing=declared_qcow2(path, fmt))
        return Container(host, "qcow2", cast(BinaryIO, layer.stream), layer.size, layer)
    except BaseException:
        host.close()
        raise
