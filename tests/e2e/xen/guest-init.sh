#!/bin/busybox sh
# /init of every e2e guest's initrd: print the kernel command line on the Xen console, then power off.
# The command line is the whole proof: each boot menu entry carries its own e2e= marker, and pvboot
# appends xl's `extra`, so the line names the entry that was booted and shows that --args arrived.
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev 2>/dev/null
c="$(cat /proc/cmdline)"
for i in 1 2 3; do echo "GUEST-BOOTED cmdline=$c"; done > /dev/hvc0
sleep 1
poweroff -f
