#!/bin/bash
# Builds a demo guest disk with the real tools (MBR, ext4 /boot in a logical partition, a GRUB 2 menu) and
# boots it with pvboot exactly as libxl would. Needs root (loop-free: mkfs.ext4 -d writes the image).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
W=$(mktemp -d /tmp/pvboot-demo.XXXXXX)
mkdir -p "$W/tree/boot/grub" "$W/out"
# A stand-in kernel: a minimal ELF with Xen's PV/PVH notes (pvboot checks kernels before libxl sees them);
# use a real one if the host has it.
real=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | tail -n 1 || true)
if [ -n "$real" ]; then cp "$real" "$W/tree/boot/vmlinuz-6.1.0-20-amd64"
else .venv/bin/python -c 'import sys; from pvboot.kernel.stub import stub_kernel; sys.stdout.buffer.write(stub_kernel(b"demo"))' > "$W/tree/boot/vmlinuz-6.1.0-20-amd64"; fi
head -c $((24 << 20)) /dev/urandom > "$W/tree/boot/initrd.img-6.1.0-20-amd64"
ln -s vmlinuz-6.1.0-20-amd64 "$W/tree/boot/vmlinuz"
cat > "$W/tree/boot/grub/grub.cfg" <<'CFG'
set default="1>1"
menuentry 'Rescue (not the default)' {
	linux	/boot/vmlinuz root=/dev/xvda5 ro single
}
submenu 'Advanced options' {
	menuentry 'Debian GNU/Linux, recovery' { linux /boot/vmlinuz root=/dev/xvda5 ro single }
	menuentry 'Debian GNU/Linux' {
		linux	/boot/vmlinuz-6.1.0-20-amd64 root=/dev/xvda5 ro quiet
		initrd	/boot/initrd.img-6.1.0-20-amd64
	}
}
CFG
mkfs.ext4 -q -F -d "$W/tree" "$W/boot.ext4" 64M
truncate -s 80M "$W/demo.img"
printf 'label: dos\nstart=2048, size=4M, type=83\nstart=, type=5\nstart=, type=83\n' | sfdisk -q "$W/demo.img"
off=$(sfdisk -J "$W/demo.img" | .venv/bin/python -c 'import json,sys;print(json.load(sys.stdin)["partitiontable"]["partitions"][-1]["start"]*512)')
dd if="$W/boot.ext4" of="$W/demo.img" bs=1M seek="$off" oflag=seek_bytes conv=notrunc status=none
echo "demo disk: $W/demo.img"
.venv/bin/pvboot -l "$W/demo.img"
echo "--- pvboot as libxl runs it (the default is 'Advanced options' > 'Debian GNU/Linux', as GRUB boots):"
.venv/bin/pvboot -q --args='console=hvc0' --output-format=simple --output-directory="$W/out" "$W/demo.img"
ls -l "$W/out"
cmp "$W/tree/boot/vmlinuz-6.1.0-20-amd64" "$W"/out/boot_kernel.* && echo "kernel copied intact"
