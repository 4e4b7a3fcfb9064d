"""pvboot: a PV/PVH bootloader for Xen that boots what the guest's own boot loader would boot."""

__version__ = "0.1.0"
