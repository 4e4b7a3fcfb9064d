"""What the admin (or libxl) asked for, independent of how the command line spelled it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_OUTPUT_DIRECTORY = "/var/run/xen/pygrub"


@dataclass
class BootRequest:
    """One pvboot run, as parsed from pygrub/libxl-compatible arguments."""

    image: str
    kernel: str | None = None
    ramdisk: str | None = None
    args: str | None = None  # appended to the chosen entry's command line
    entry: str | None = None
    interactive: bool = True
    list_entries: bool = False
    not_really: bool = False
    isconfig: bool = False
    debug: bool = False
    output: str | None = None  # None: stdout
    output_format: str = "sxp"
    output_directory: str = DEFAULT_OUTPUT_DIRECTORY
    output_directory_given: bool = False
    offset: int | None = None
    runas: int | None = None
    kernel_check: bool = True  # --no-kernel-check turns it off
    disk_format: str | None = None  # --format=raw|qcow2; None (auto): probe (container.open_container)
    report: bool = False  # --report
    run_log: str | None = None  # --run-log; None: $PVBOOT_RUN_LOG, else /var/log/xen/pvboot.log
    extra_args: str | None = None  # --extra_args (XCP-ng): appended after --args
    default_args: str | None = None  # --default_args (XCP-ng): the command line of a /xenkernel boot
    vm: str | None = None  # --vm (XCP-ng): the VM's UUID, for the logs
    xenserver_rules: bool = True  # /xenkernel and /kernel-xenserver (pvboot/xenserver.py)
    max_menu_wait: float | None = 600.0  # --max-menu-wait: seconds the console waits for a key; None: ever
    record: dict[str, Any] = field(default_factory=dict)  # entry/kernel/kernel_info, for the run log
