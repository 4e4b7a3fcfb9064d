"""check_initrd: newc cpio, plain or compressed, passes; what Linux would not unpack as an initramfs warns."""

from __future__ import annotations

import gzip
import io
import lzma
import shutil
import subprocess

import pytest
from kernel_samples import compress, have_tool, newc

from pvboot.kernel import check_initrd
from pvboot.kernel.decompress import MAGICS


def warn(data: bytes, name: str = "") -> str | None:
    return check_initrd(io.BytesIO(data), len(data), name)


ARCHIVE = newc({"init": b"#!/bin/sh\nexec /bin/sh\n", "etc/hostname": b"guest\n"})


def test_plain_newc_and_early_microcode_concatenation():
    assert warn(ARCHIVE) is None
    # Debian/Fedora: an uncompressed early cpio (microcode) followed by the compressed main archive
    assert warn(newc({"kernel/x86/microcode/GenuineIntel.bin": b"\0" * 100}) + gzip.compress(ARCHIVE)) is None
    assert warn(bytes(512) + ARCHIVE) is None  # zero padding before an archive is skipped, as Linux does


@pytest.mark.parametrize("codec", [name for name, _ in MAGICS])
def test_compressed_newc(codec):
    if codec in ("lz4", "lzo") and not have_tool("lz4" if codec == "lz4" else "lzop"):
        pytest.skip(f"needs the {codec} command")
    assert warn(compress(ARCHIVE, codec)) is None
    message = warn(compress(b"just some text, no archive\n" * 10, codec), "(hd0,msdos1)/boot/initrd.img")
    assert message is not None
    assert message.startswith(f"initrd (hd0,msdos1)/boot/initrd.img: {codec}-compressed, but not a cpio")


@pytest.mark.skipif(shutil.which("cpio") is None, reason="needs cpio")
def test_real_cpio_tool_archives(tmp_path):
    (tmp_path / "init").write_text("#!/bin/sh\n")
    newc_out = subprocess.run(
        ["cpio", "-o", "-H", "newc"], input=b"init\n", cwd=tmp_path, capture_output=True, check=True
    ).stdout
    assert warn(newc_out) is None
    assert warn(gzip.compress(newc_out)) is None
    odc = subprocess.run(
        ["cpio", "-o", "-H", "odc"], input=b"init\n", cwd=tmp_path, capture_output=True, check=True
    ).stdout
    assert "odc" in warn(odc)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"PVBOOT-TEST-INITRD:/boot/initrd.img\n", "not a cpio archive"),
        (bytes(1080) + b"\x53\xef" + bytes(1000), "ext2/3/4"),
        (b"hsqs" + bytes(100), "squashfs"),
        (b"\xc7\x71" + bytes(100), "binary cpio"),
        (bytes(4096), "zero bytes"),
        (b"\x1f\x8b\x08\x00" + b"garbage" * 20, "does not decode"),
        (lzma.compress(gzip.compress(ARCHIVE), lzma.FORMAT_XZ), "only once"),
    ],
)
def test_warnings(data, words):
    message = warn(data)
    assert message is not None and words in message
