"""XenServer's boot conventions, as XCP-ng's pygrub keeps them (runs in the reader, on guest files).

- `/xenkernel` (else `/boot/xenkernel`) on the disk's first filesystem boots in place of any menu, with
  `/xeninitrd` (`/boot/xeninitrd`) when it exists and the command line the toolstack passes as
  `--default_args` (appliances that ship a kernel for Xen and no boot loader).
- A chosen entry whose kernel is missing boots `/kernel-xenserver` from the same filesystem instead,
  when that exists (a known broken appliance menu).
`--no-xenserver-rules` turns both off; an explicit `--kernel` or `--entry` is never replaced by
`/xenkernel`.
"""

from __future__ import annotations

from pvboot.disk.volumes import GuestDisk
from pvboot.extract import GuestFile
from pvboot.sandbox.protocol import XenKernel

XENKERNEL_PLACES = (("/xenkernel", "/xeninitrd"), ("/boot/xenkernel", "/boot/xeninitrd"))
FALLBACK_KERNEL = "/kernel-xenserver"


def find_xenkernel(disk: GuestDisk) -> XenKernel | None:
    """`/xenkernel` or `/boot/xenkernel` on the first volume with a filesystem (pygrub's first
    partition), else None."""
    volumes = disk.filesystems()
    if not volumes:
        return None
    tree = volumes[0].tree()
    for kernel, initrd in XENKERNEL_PLACES:
        if tree.is_file(kernel):
            return XenKernel(volumes[0].name, kernel, initrd if tree.is_file(initrd) else None)
    return None


def fallback_kernel(kernel: GuestFile) -> GuestFile | None:
    """`/kernel-xenserver` beside a chosen kernel that does not exist, else None."""
    if kernel.tree.is_file(kernel.path) or not kernel.tree.is_file(FALLBACK_KERNEL):
        return None
    return GuestFile(kernel.tree, FALLBACK_KERNEL)
