"""The `ctx` fixture: a FakeContext over two partitions, for the command modules' unit tests."""

from __future__ import annotations

import pytest
from fakectx import FakeContext, FakeView


@pytest.fixture
def ctx() -> FakeContext:
    files = {"hd0,msdos1": {"/vmlinuz": "", "/initrd.img": "", "/grubenv": ""}, "hd0,msdos2": {"/stamp": ""}}
    view = FakeView(files, {"hd0,msdos2": "AB-CD"}, {"hd0,msdos1": "boot"})
    context = FakeContext(view)
    context.variables["root"] = "hd0,msdos1"
    return context
