"""What a file is: Linux bzImage/ELF/arm64 Image/arm zImage, whether Xen can start it as a PV or PVH
guest (its Xen ELF notes), initrd and device-tree sanity. Runs in the confined child, on guest bytes.

Entry points: `check_kernel`, `check_initrd`, `validate_dtb`; `check_boot_files` runs all three on the
chosen entry's files, `clean_reply_fields` is the parent's check of what the child reported.
"""

from pvboot.kernel.check import KernelInfo, check_kernel
from pvboot.kernel.dtb import DtbError, DtbInfo, validate_dtb
from pvboot.kernel.files import (
    BootFilesCheck,
    KernelNotBootable,
    check_boot_files,
    clean_reply_fields,
    refusal,
    write_devicetree,
)
from pvboot.kernel.initrd import check_initrd
from pvboot.limits import KernelLimits

__all__ = [
    "BootFilesCheck",
    "DtbError",
    "DtbInfo",
    "KernelInfo",
    "KernelLimits",
    "KernelNotBootable",
    "check_boot_files",
    "check_initrd",
    "check_kernel",
    "clean_reply_fields",
    "refusal",
    "validate_dtb",
    "write_devicetree",
]
