"""Where the metadata of each guest image lies: the regions the mutation fuzzer may change.

Only metadata is mutated (superblocks, group descriptors, inodes, directory blocks, extent and B-tree
blocks, partition tables, LVM labels and metadata, qcow2 headers and tables), never file data, so that a
run that exits 0 must have copied the original files. Filesystem structures are located with the real
tools (dumpe2fs/debugfs, xfs_db, btrfs inspect-internal, mshowfat); partition tables, LVM headers,
ISO9660 descriptors and qcow2 tables by their documented fixed offsets.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from dissect.util.hash import crc32c
from fuzzkit import Mutation, Region, read_at

SECTOR = 512
BOOT_PATHS = (
    "/",
    "/boot",
    "/boot/grub",
    "/boot/grub/grub.cfg",
    "/boot/vmlinuz-6.1.0-42-pvboot",
    "/boot/initrd.img-6.1.0-42-pvboot",
    "/boot/vmlinuz",
    "/boot/initrd.img",
)
DIRS = ("/", "/boot", "/boot/grub")
FILES = ("/boot/vmlinuz-6.1.0-42-pvboot", "/boot/initrd.img-6.1.0-42-pvboot", "/boot/grub/grub.cfg")
MAX_DIR_BLOCKS = 8  # per directory


def _tool(*argv: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    return proc.stdout


def _extract(image: Path, offset: int, length: int, dst: Path) -> Path:
    """A sparse copy of image[offset:offset+length] (for tools that cannot take an offset)."""
    with open(image, "rb") as fin, open(dst, "wb") as fout:
        fout.truncate(length)
        fd = fin.fileno()
        pos = offset
        end = offset + length
        while pos < end:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            if start >= end:
                break
            stop = min(os.lseek(fd, start, os.SEEK_HOLE), end)
            fin.seek(start)
            fout.seek(start - offset)
            left = stop - start
            while left:
                chunk = fin.read(min(left, 8 << 20))
                fout.write(chunk)
                left -= len(chunk)
            pos = stop
    return dst


# -- partition tables ----------------------------------------------------------------------------------


def mbr_regions(image: Path) -> tuple[list[Region], list[tuple[int, int, int]]]:
    """The MBR's partition slots and the EBR chain; returns (regions, [(number, offset, size)])."""
    regions = [Region("mbr", 446, 66, False)]
    parts: list[tuple[int, int, int]] = []
    sector0 = read_at(image, 0, SECTOR)
    extended = None
    for slot in range(4):
        raw = sector0[446 + 16 * slot : 462 + 16 * slot]
        ptype, start, count = raw[4], *struct.unpack_from("<II", raw, 8)
        if ptype in (0x05, 0x0F, 0x85):
            extended = start
        elif ptype and count:
            parts.append((slot + 1, start * SECTOR, count * SECTOR))
    ebr, number = extended, 5
    while ebr is not None and number < 64:
        table = read_at(image, ebr * SECTOR, SECTOR)
        regions.append(Region(f"ebr{number}", ebr * SECTOR + 446, 66, False))
        nxt = None
        for slot in range(4):
            raw = table[446 + 16 * slot : 462 + 16 * slot]
            ptype, start, count = raw[4], *struct.unpack_from("<II", raw, 8)
            if ptype in (0x05, 0x0F, 0x85) and extended is not None:
                nxt = extended + start
            elif ptype and count:
                parts.append((number, (ebr + start) * SECTOR, count * SECTOR))
                number += 1
        ebr = nxt
    return regions, parts


def gpt_regions(image: Path, sector: int = SECTOR) -> tuple[list[Region], list[tuple[int, int, int]]]:
    """Primary and backup GPT headers and entry arrays (the entries in use); CRC32-protected."""
    header = read_at(image, sector, 92)
    assert header[:8] == b"EFI PART", f"{image}: no GPT at LBA 1 for {sector}-byte sectors"
    (backup_lba,) = struct.unpack_from("<Q", header, 32)
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    table = read_at(image, entries_lba * sector, count * entry_size)
    parts = []
    for index in range(count):
        raw = table[index * entry_size : index * entry_size + 128]
        if raw[:16] != bytes(16):
            first, last = struct.unpack_from("<QQ", raw, 32)
            parts.append((index + 1, first * sector, (last - first + 1) * sector))
    used = max(1, max((n for n, _, _ in parts), default=1) + 1) * entry_size
    regions = [
        Region("gpt-pmbr", 446, 66, False),
        Region("gpt-header", sector, 92, True),
        Region("gpt-entries", entries_lba * sector, used, True),
    ]
    backup = read_at(image, backup_lba * sector, 92)
    if backup[:8] == b"EFI PART":
        regions.append(Region("gpt-backup-header", backup_lba * sector, 92, True))
        (backup_entries,) = struct.unpack_from("<Q", backup, 72)
        regions.append(Region("gpt-backup-entries", backup_entries * sector, used, True))
    return regions, parts


# -- ext2/3/4 ------------------------------------------------------------------------------------------


def ext_regions(image: Path, offset: int, prefix: str = "ext", paths: Iterable[str] = BOOT_PATHS,
                dirs: Iterable[str] = DIRS, files: Iterable[str] = FILES) -> list[Region]:  # fmt: skip
    """Superblock, group descriptors, the boot files' inodes, directory blocks and extent index blocks."""
    dev = f"{image}?offset={offset}" if offset else str(image)
    info = _tool("dumpe2fs", "-h", dev)
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in info.splitlines()) if v
    )
    block = int(fields["Block size"])
    inode_size = int(fields["Inode size"])
    protected = "metadata_csum" in fields.get("Filesystem features", "")
    groups = -(-int(fields["Block count"]) // int(fields["Blocks per group"]))
    desc = int(fields.get("Group descriptor size", "32"))
    first = int(fields["First block"])
    sb = read_at(image, offset + 1024, 1024)
    fs_seed = _crc_raw(0xFFFFFFFF, sb[0x68:0x78])  # crc32c(~0, s_uuid)
    if struct.unpack_from("<I", sb, 0x60)[0] & 0x2000:  # INCOMPAT_CSUM_SEED
        fs_seed = struct.unpack_from("<I", sb, 0x270)[0]
    sign = protected  # metadata_csum: a mutation may be re-signed, as a hostile guest would
    out = [
        Region(f"{prefix}-superblock", offset + 1024, 1024, protected, sign="ext-sb" if sign else ""),
        Region(f"{prefix}-group-descriptors", offset + (first + 1) * block, groups * desc, protected),
    ]
    seeds: dict[str, int] = {}
    for path in dict.fromkeys([*paths, *dirs, *files]):  # in order: region order is deterministic
        text = _tool("debugfs", "-R", f"imap {path}", dev)
        m = re.search(r"Inode (\d+) is part.*?located at block (\d+), offset (0x[0-9a-f]+)", text, re.S)
        if not m:
            continue
        inum, where = int(m.group(1)), int(m.group(2)) * block + int(m.group(3), 16)
        raw = read_at(image, offset + where, inode_size)
        seeds[path] = _crc_raw(_crc_raw(fs_seed, struct.pack("<I", inum)), raw[0x64:0x68])
        if path in paths:
            out.append(Region(f"{prefix}-inode:{path}", offset + where, inode_size, protected,
                              sign="ext-inode" if sign else "", meta=(fs_seed, inum)))  # fmt: skip
    for path in dirs:
        blocks = [int(b) for b in _tool("debugfs", "-R", f"blocks {path}", dev).split()]
        for i, blk in enumerate(blocks[:MAX_DIR_BLOCKS]):
            out.append(Region(f"{prefix}-dir:{path}#{i}", offset + blk * block, block, protected,
                              sign="ext-dir" if sign else "", meta=(seeds.get(path, 0),)))  # fmt: skip
    for path in files:
        text = _tool("debugfs", "-R", f"ex {path}", dev)
        for m in re.finditer(r"^\s*(\d+)/\s*(\d+)\s+\d+/\s*\d+\s+\d+\s*-\s*\d+\s+(\d+)", text, re.M):
            level, depth, physical = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if level < depth:  # an index entry: `physical` is the next level's block
                out.append(Region(f"{prefix}-extent-node:{path}@{physical}", offset + physical * block,
                                  block, protected, sign="ext-extent" if sign else "",
                                  meta=(seeds.get(path, 0),)))  # fmt: skip
    return out


# -- XFS -----------------------------------------------------------------------------------------------


def xfs_regions(image: Path, offset: int, size: int, work: Path, prefix: str = "xfs",
                paths: Iterable[str] = BOOT_PATHS, dirs: Iterable[str] = DIRS,
                files: Iterable[str] = FILES) -> list[Region]:  # fmt: skip
    """Superblock, AG 0 headers, the boot files' inodes, directory blocks and bmap B+tree blocks."""
    fs = _extract(image, offset, size, work / "xfs-regions.fs") if offset else image
    try:
        geo = _tool("xfs_db", "-r", "-f", "-c", "sb 0", "-c",
                    "p blocksize agblocks agblklog inodesize sectsize dirblklog crc", str(fs))  # fmt: skip
        g = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in geo.splitlines()) if v}
        block, agblocks, agblklog = int(g["blocksize"]), int(g["agblocks"]), int(g["agblklog"])
        sect, dirblock = int(g["sectsize"]), int(g["blocksize"]) << int(g["dirblklog"])
        protected = g.get("crc", "0").split()[0] not in ("0", "")
        xsign = "xfs" if protected else ""
        out = [Region(f"{prefix}-{name}", offset + i * sect, sect, protected, sign=xsign, meta=(crc,))
               for i, (name, crc) in enumerate((("superblock", 224), ("agf", 216), ("agi", 312),
                                                 ("agfl", 32)))]  # fmt: skip

        def linear(fsb: int) -> int:
            return ((fsb >> agblklog) * agblocks + (fsb & ((1 << agblklog) - 1))) * block

        for path in paths:
            text = _tool("xfs_db", "-r", "-f", "-c", f"path {path}", "-c", "stack", str(fs))
            m = re.search(r"byte offset (\d+), length (\d+)", text)
            if m:
                out.append(Region(f"{prefix}-inode:{path}", offset + int(m.group(1)), int(m.group(2)),
                                  protected, sign=xsign, meta=(100,)))  # fmt: skip
        for path in dirs:
            text = _tool("xfs_db", "-r", "-f", "-c", f"path {path}", "-c", "bmap", str(fs))
            count = 0
            for m in re.finditer(r"data offset (\d+) startblock (\d+) \(\d+/\d+\) count (\d+)", text):
                for i in range(0, int(m.group(3)) * block, dirblock):
                    if count < MAX_DIR_BLOCKS:
                        start = linear(int(m.group(2))) + i
                        out.append(Region(f"{prefix}-dir:{path}#{count}", offset + start, dirblock,
                                          protected, sign=xsign, meta=(4,)))  # fmt: skip
                    count += 1
        for path in files:
            text = _tool("xfs_db", "-r", "-f", "-c", f"path {path}", "-c", "p core.format u3.bmbt.ptrs",
                         str(fs))  # fmt: skip
            if "btree" not in text:
                continue
            m = re.search(r"u3\.bmbt\.ptrs\[[^\]]*\] = (.*)", text)
            for ptr in re.findall(r"(?:\d+:)?(\d+)", m.group(1) if m else ""):
                out.append(Region(f"{prefix}-bmbt:{path}@{ptr}", offset + linear(int(ptr)), block,
                                  protected, sign=xsign, meta=(64,)))  # fmt: skip
        return out
    finally:
        if fs != image:
            fs.unlink()


# -- Btrfs ---------------------------------------------------------------------------------------------


def btrfs_regions(image: Path, offset: int = 0) -> list[Region]:
    """The superblock and every node of the root, chunk and file trees (first copy); checksummed."""
    assert offset == 0, "btrfs images are bare here"
    chunks = []
    dump = _tool("btrfs", "inspect-internal", "dump-tree", "-t", "chunk", str(image))
    for m in re.finditer(r"CHUNK_ITEM (\d+)\).*?length (\d+).*?stripe 0 devid \d+ offset (\d+)", dump, re.S):
        chunks.append((int(m.group(1)), int(m.group(2)), int(m.group(3))))
    super_text = _tool("btrfs", "inspect-internal", "dump-super", str(image))
    nodesize = int(re.search(r"^nodesize\s+(\d+)", super_text, re.M).group(1))  # type: ignore[union-attr]

    def physical(logical: int) -> int | None:
        for start, length, phys in chunks:
            if start <= logical < start + length:
                return phys + logical - start
        return None

    csum_type = struct.unpack_from("<H", read_at(image, 0x10000, 4096), 0xC4)[0]
    sign = "btrfs" if csum_type == 0 else ""  # crc32c: re-signed after a mutation like a hostile guest
    out = [Region("btrfs-superblock", 0x10000, 4096, True, sign=sign)]
    trees = _tool("btrfs", "inspect-internal", "dump-tree", str(image))
    seen = set()
    for m in re.finditer(r"^(leaf|node) (\d+) (?:items|level) .*?owner (\S+)", trees, re.M):
        kind, logical, owner = m.group(1), int(m.group(2)), m.group(3)
        if owner not in ("ROOT_TREE", "CHUNK_TREE", "FS_TREE") and not owner.isdigit():
            continue
        where = physical(logical)
        if where is None or logical in seen:
            continue
        seen.add(logical)
        out.append(Region(f"btrfs-{kind}:{owner}@{logical}", where, nodesize, True, sign=sign))
    return out


# -- FAT -----------------------------------------------------------------------------------------------


def fat_regions(image: Path, offset: int, paths: Iterable[str] = BOOT_PATHS) -> list[Region]:
    """Boot sector, FSInfo, the FAT entries the boot files use, and the directories' clusters."""
    boot = read_at(image, offset, SECTOR)
    bps, spc, reserved, nfats = struct.unpack_from("<HBHB", boot, 11)
    fat32_size, root_cluster, fsinfo = struct.unpack_from("<IIH", boot, 36)
    cluster = bps * spc
    data = offset + (reserved + nfats * fat32_size) * bps
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    chains: dict[str, list[int]] = {}
    for path in paths:
        if path in ("/boot/vmlinuz", "/boot/initrd.img"):
            continue
        text = _tool("mshowfat", "-i", f"{image}@@{offset}", f"::{path}", env=env)
        clusters = []
        for a, b in re.findall(r"(\d+)(?:-(\d+))?", text.partition("<")[2]):
            clusters.extend(range(int(a), int(b or a) + 1))
        chains[path] = clusters
    chains["/"] = chains.get("/") or [root_cluster]
    top = max(c for chain in chains.values() for c in chain)
    out = [
        Region("fat-boot-sector", offset, SECTOR, False),
        Region("fat-fsinfo", offset + fsinfo * bps, SECTOR, False),
        Region("fat-table", offset + reserved * bps, (top + 1) * 4, False),
    ]
    for path in DIRS:
        for i, c in enumerate(chains.get(path, [])[:MAX_DIR_BLOCKS]):
            out.append(Region(f"fat-dir:{path}#{i}", data + (c - 2) * cluster, cluster, False))
    return out


# -- ISO9660 -------------------------------------------------------------------------------------------


def iso_regions(image: Path) -> list[Region]:
    """Volume descriptors, path tables and the directories' extents (from the path tables)."""
    out = []
    for index in range(16, 32):
        desc = read_at(image, index * 2048, 2048)
        if desc[1:6] != b"CD001":
            break
        out.append(Region(f"iso-vd{index}", index * 2048, 2048, False))
        if desc[0] in (1, 2):
            name = "pvd" if desc[0] == 1 else f"svd{index}"
            (size,) = struct.unpack_from("<I", desc, 132)
            (l_table,) = struct.unpack_from("<I", desc, 140)
            (m_table,) = struct.unpack_from(">I", desc, 148)
            out.append(Region(f"iso-{name}-ltable", l_table * 2048, size, False))
            out.append(Region(f"iso-{name}-mtable", m_table * 2048, size, False))
            table = read_at(image, l_table * 2048, size)
            pos = 0
            while pos + 8 <= len(table):
                name_len = table[pos]
                if not name_len:
                    break
                (extent,) = struct.unpack_from("<I", table, pos + 2)
                out.append(Region(f"iso-{name}-dir@{extent}", extent * 2048, 2048, False))
                pos += 8 + name_len + (name_len & 1)
        if desc[0] == 255:
            break
    return out


# -- LVM -----------------------------------------------------------------------------------------------


def lvm_regions(image: Path, pv_offset: int, pv_size: int) -> tuple[list[Region], int]:
    """Label sector, metadata area header and metadata text (CRC-protected); and the LV holding ext4."""
    out = []
    for i in range(4):
        if read_at(image, pv_offset + i * SECTOR, 8) == b"LABELONE":
            out.append(Region("lvm-label", pv_offset + i * SECTOR, SECTOR, True, sign="lvm-label"))
    mda = pv_offset + 4096
    header = read_at(image, mda, SECTOR)
    out.append(Region("lvm-mda-header", mda, SECTOR, True, sign="lvm-mda"))
    text_offset, text_size = struct.unpack_from("<QQ", header, 40)
    if text_size:
        out.append(Region("lvm-metadata", mda + text_offset, text_size, True, sign="lvm-text", meta=(mda,)))
    # the ext4 of the `boot` LV: the first MiB-aligned ext superblock after the metadata area
    for pos in range(pv_offset + (1 << 20), pv_offset + pv_size, 1 << 20):
        if read_at(image, pos + 1024 + 56, 2) == b"\x53\xef":
            return out, pos
    raise AssertionError(f"{image}: no ext4 on the LVM physical volume")


# -- qcow2 ---------------------------------------------------------------------------------------------


def qcow2_regions(path: Path, name: str = "") -> list[Region]:
    """Header (with its extensions), L1 table, the L2 tables in use and the refcount table."""
    head = read_at(path, 0, 112)
    (_, version, bf_offset, bf_size, cluster_bits, _size, _crypt, l1_size, l1_offset, rt_offset,
     rt_clusters) = struct.unpack_from(">4sIQIIQIIQQI", head)  # fmt: skip
    cluster = 1 << cluster_bits
    header_end = max(104 if version == 3 else 72, bf_offset + bf_size if bf_offset else 0)
    tag = f"qcow2{'-' + name if name else ''}"
    out = [
        Region(f"{tag}-header", 0, min(header_end, cluster), False, name),
        Region(f"{tag}-l1", l1_offset, l1_size * 8, False, name),
        Region(f"{tag}-refcount-table", rt_offset, min(rt_clusters * cluster, 4096), False, name),
    ]
    l1 = read_at(path, l1_offset, l1_size * 8)
    for i in range(l1_size):
        (entry,) = struct.unpack_from(">Q", l1, i * 8)
        l2 = entry & 0x00FFFFFFFFFFFE00
        if l2:
            table = read_at(path, l2, cluster)
            used = max((j for j in range(cluster // 8) if table[j * 8 : j * 8 + 8] != bytes(8)), default=0)
            out.append(Region(f"{tag}-l2#{i}", l2, (used + 1) * 8, False, name))
    return out


# -- checksums: re-signing a mutated structure, as a hostile guest would --------------------------------


def _crc_raw(seed: int, data: bytes) -> int:
    """Linux's crc32c(seed, data), without the inversions (ext4's checksums)."""
    return crc32c.update(seed ^ 0xFFFFFFFF, data) ^ 0xFFFFFFFF


def _crc_std(data: bytes) -> int:
    return int(crc32c.update(0, data))


def _lvm_crc(data: bytes) -> int:
    return ~zlib.crc32(data, ~0xF597A6CF & 0xFFFFFFFF) & 0xFFFFFFFF


def _zero(data: bytes, offset: int, length: int = 4) -> bytes:
    return data[:offset] + bytes(length) + data[offset + length :]


def resign(region: Region, data: bytes, read: Callable[[int, int], bytes]) -> list[tuple[int, bytes]]:
    """(absolute offset, bytes) patches giving `data` -- the mutated bytes of `region` -- a valid checksum
    again ([] when the format has none or the mutation destroyed what locates it). `read(offset, n)` reads
    other bytes of the same file."""
    kind, base, size = region.sign, region.offset, len(data)

    def at(rel: int, value: int, width: int = 4) -> tuple[int, bytes]:
        return base + rel, value.to_bytes(width, "little")

    if kind == "ext-sb":
        return [at(0x3FC, _crc_raw(0xFFFFFFFF, data[:0x3FC]))]
    if kind == "ext-inode":
        fs_seed, inum = region.meta
        seed = _crc_raw(_crc_raw(fs_seed, struct.pack("<I", inum)), data[0x64:0x68])
        buf = _zero(data, 0x7C, 2)
        has_hi = size > 128 and 128 + struct.unpack_from("<H", data, 0x80)[0] >= 0x84
        if has_hi:
            buf = _zero(buf, 0x82, 2)
        crc = _crc_raw(seed, buf)
        return [at(0x7C, crc & 0xFFFF, 2)] + ([at(0x82, crc >> 16, 2)] if has_hi else [])
    if kind == "ext-dir":
        return [at(size - 4, _crc_raw(region.meta[0], data[: size - 12]))]
    if kind == "ext-extent":
        tail = 12 + 12 * struct.unpack_from("<H", data, 4)[0]
        return [at(tail, _crc_raw(region.meta[0], data[:tail]))] if tail + 4 <= size else []
    if kind == "xfs":
        crc_at = region.meta[0]
        return [at(crc_at, _crc_std(_zero(data, crc_at)))]
    if kind == "btrfs":
        return [at(0, _crc_std(data[32:]))]
    if kind == "lvm-label":
        return [at(16, _lvm_crc(data[20:]))]
    if kind == "lvm-mda":
        return [at(0, _lvm_crc(data[4:]))]
    if kind == "lvm-text":
        mda = region.meta[0]
        header = bytearray(read(mda, SECTOR))
        header[56:60] = _lvm_crc(data).to_bytes(4, "little")
        header[0:4] = _lvm_crc(bytes(header[4:])).to_bytes(4, "little")
        return [(mda, bytes(header[:4])), (mda + 56, bytes(header[56:60]))]
    return []


def signed(mut: Mutation, current: bytes, read: Callable[[int, int], bytes]) -> list[Mutation]:
    """`mut` plus the checksum patches that make its region valid again."""
    data = current[: mut.rel] + mut.data + current[mut.rel + len(mut.data) :]
    out = [mut]
    for offset, patch in resign(mut.region, data, read):
        region = Region(f"{mut.region.label}#csum", offset, len(patch), mut.region.protected, mut.region.file)
        out.append(Mutation(region, 0, patch, "csum"))
    return out


# -- layouts -------------------------------------------------------------------------------------------


def regions_for(layout: str, image: Path, work: Path) -> list[Region]:
    """The mutation regions of one layout's image (see tests/layouts.py and tests/fuzz/conftest.py)."""
    if layout in ("ext4-logical", "ext2-mbr", "ext4-mbr"):
        regions, parts = mbr_regions(image)
        _, offset, _ = parts[-1]
        return regions + ext_regions(image, offset)
    if layout == "xfs-gpt":
        regions, parts = gpt_regions(image)
        _, offset, size = parts[-1]
        return regions + xfs_regions(image, offset, size, work)
    if layout == "ext4-gpt-4k":
        regions, parts = gpt_regions(image, 4096)
        return regions + ext_regions(image, parts[0][1])
    if layout == "fat32-esp":
        regions, parts = gpt_regions(image)
        return regions + fat_regions(image, parts[0][1])
    if layout == "lvm":
        regions, parts = gpt_regions(image)
        _, pv_offset, pv_size = parts[0]
        lvm, lv_offset = lvm_regions(image, pv_offset, pv_size)
        return regions + lvm + ext_regions(image, lv_offset)
    if layout in ("bare-ext4", "ext4-frag"):
        return ext_regions(image, 0)
    if layout == "xfs-frag":
        return xfs_regions(image, 0, image.stat().st_size, work)
    if layout in ("btrfs-zstd", "btrfs-frag"):
        return btrfs_regions(image)
    if layout == "iso9660":
        return iso_regions(image)
    if layout in ("qcow2", "qcow2-compressed"):
        return qcow2_regions(image)
    if layout == "qcow2-backing":
        return qcow2_regions(image, image.name) + qcow2_regions(image.parent / "base.qcow2", "base.qcow2")
    raise KeyError(layout)
