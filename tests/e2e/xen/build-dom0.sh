#!/bin/bash
# Builds the dom0 of the e2e: $E2E_WORK/xen (uncompressed Xen ELF for QEMU's multiboot loader),
# $E2E_WORK/dom0-kernel and $E2E_WORK/dom0.cpio.gz, an initramfs holding a Debian userland copied from the
# host (busybox, bash, python3.11 and its stdlib, the Xen 4.17 toolstack, QEMU's qdisk backend) with pvboot
# installed in it, and dom0-init.sh as /init. Follows ../shared/tools/e2e-xen (see README.md for the
# differences).
#
# pvboot goes in as a dom0 admin would install it: `pip install --target` of this checkout with the host's
# python3.11 (the dom0 runs that same interpreter), a launcher /usr/local/bin/pvboot (found through PATH for
# `bootloader = "pvboot"`), and the same launcher as /usr/lib/xen-4.17/bin/pygrub for unmodified
# `bootloader = "pygrub"` configs.
#
# The Debian userland part (everything but pvboot and /init) is cached in $E2E_WORK/dom0-base, keyed by the
# installed package versions and the part of this script that builds it; E2E_REBUILD=1 rebuilds it.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
WORK=${E2E_WORK:-/tmp/pvboot-e2e-xen}
KVER=${E2E_KVER:-$(ls /boot/vmlinuz-* | sed 's@/boot/vmlinuz-@@' | sort -V | tail -1)}
XENVER=4.17
XENLIB=/usr/lib/xen-$XENVER
PY=/usr/bin/python3.11
mkdir -p "$WORK"
cd "$WORK"

t0=$(date +%s)
zcat /boot/xen-$XENVER-amd64.gz > xen       # QEMU's multiboot loader needs the ELF, not the .gz
cp /boot/vmlinuz-$KVER dom0-kernel

# ------------------------------------------------------------------------- the Debian base (cached)
key=$( { echo "$KVER"; sed -n '/^# -* the Debian base/,/^# -* pvboot, as an admin/p' "$0";
         dpkg-query -W -f='${Package} ${Version}\n' xen-utils-$XENVER xen-hypervisor-$XENVER-amd64 \
             qemu-system-xen qemu-system-data python3.11 busybox-static libc6 "linux-image-$KVER" 2>/dev/null; } | sha256sum | cut -c1-16)
BASE=$WORK/dom0-base
if [ "${E2E_REBUILD:-0}" = 1 ] || [ "$(cat "$BASE.key" 2>/dev/null)" != "$key" ]; then
R=$BASE
rm -rf "$R" "$BASE.key"
mkdir -p "$R"/usr/{bin,sbin,lib,lib64} "$R"/{proc,sys,dev,run,tmp,root,etc,var/lib/xen,var/log/xen,srv/xen}
ln -s usr/bin "$R/bin"; ln -s usr/sbin "$R/sbin"; ln -s usr/lib "$R/lib"; ln -s usr/lib64 "$R/lib64"
ln -s ../run "$R/var/run"

copy_path() {  # one host path (following its symlink chain) into $R at the same place
    local p=$1 d t
    [ -e "$p" ] || [ -L "$p" ] || { echo "missing $p" >&2; return 1; }
    d=$(readlink -f "$(dirname "$p")")
    mkdir -p "$R$d"
    if [ -L "$p" ]; then
        [ -e "$R$d/$(basename "$p")" ] || [ -L "$R$d/$(basename "$p")" ] || \
            ln -s "$(readlink "$p")" "$R$d/$(basename "$p")"
        t=$(readlink -f "$p")
        copy_path "$t"
    elif [ -d "$p" ]; then
        mkdir -p "$R$d/$(basename "$p")"
    else
        [ -e "$R$d/$(basename "$p")" ] || cp -p "$p" "$R$d/"
    fi
}
copy_tree() {
    local src=$1; shift
    find "$src" \( -type f -o -type l \) "$@" -print | while read -r f; do copy_path "$f"; done
}

for f in /usr/bin/bash /usr/bin/python3 /usr/bin/python3.11 \
         /usr/sbin/losetup /usr/bin/flock /usr/bin/kmod /usr/bin/xenstore \
         /usr/bin/xenstore-{read,write,rm,exists,list,ls,chmod,watch} \
         /usr/bin/env /usr/bin/setsid /usr/bin/stat /usr/bin/readlink \
         /usr/libexec/xen-qemu-system-i386; do
    if [ -e "$f" ]; then copy_path "$f"; fi
done
copy_tree $XENLIB
copy_tree /etc/xen
copy_tree /usr/lib/python3.11 -not -path '*/test/*' -not -path '*/idlelib/*' \
    -not -path '*/tkinter/*' -not -path '*/ensurepip/*' -not -path '*/lib2to3/*' \
    -not -path '*/config-3.11-*' -not -path '*/pydoc_data/*'
copy_tree /usr/lib/x86_64-linux-gnu -name 'libxen*'
copy_tree /usr/lib/x86_64-linux-gnu -name 'libxl*'
copy_path /usr/lib/x86_64-linux-gnu/libgcc_s.so.1   # dlopen()ed by glibc for pthread_cancel
copy_path /usr/lib/x86_64-linux-gnu/libseccomp.so.2  # dlopen()ed by pvboot's sandbox (ctypes)
for t in /lib/terminfo /usr/share/terminfo; do if [ -d $t ]; then copy_tree $t; fi; done
copy_tree /usr/share/qemu/keymaps   # QEMU (a PV guest's qdisk backend) starts with -vnc none, which loads en-us
# kernel modules: the Xen drivers (and xen-blkfront: libxl attaches a qcow2 disk to dom0 for the
# bootloader), blkback + loop, virtio-blk + ext4 for the disk holding the guest images
M=/lib/modules/$KVER
copy_tree $M/kernel/drivers/xen
for m in xen-blkback xen-blkfront loop virtio_pci virtio_blk crc32c_generic ext4; do
    modprobe -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" { print $2 }' | while read -r ko; do
        copy_path "$ko"
    done
done
for f in modules.order modules.builtin modules.builtin.modinfo; do copy_path $M/$f; done
depmod -b "$R" "$KVER"
ln -sf kmod "$R/usr/bin/modprobe"; ln -sf kmod "$R/usr/bin/insmod"; ln -sf kmod "$R/usr/bin/lsmod"
ln -sf ../bin/kmod "$R/usr/sbin/modprobe"   # the kernel's request_module() runs /sbin/modprobe
# /usr/sbin/xl on Debian is a version-dispatch script: use the real binaries
for b in xl xenstored xenconsoled xen-init-dom0; do ln -sf $XENLIB/bin/$b "$R/usr/sbin/$b"; done

# shared-library closure of every ELF
for pass in 1 2; do
    find "$R" -type f \( -perm -u+x -o -name '*.so*' \) | while read -r f; do
        file -b "$f" 2>/dev/null | grep -q '^ELF' || continue
        { ldd "$f" 2>/dev/null || true; } | { grep -oE '/[^ ]+' || true; } | while read -r lib; do
            if [ -e "$lib" ]; then copy_path "$lib"; fi
        done
    done
done

cp /bin/busybox "$R/usr/bin/busybox"
for a in $(/bin/busybox --list); do
    [ -e "$R/usr/bin/$a" ] || [ -L "$R/usr/bin/$a" ] || ln -s busybox "$R/usr/bin/$a"
done
[ -e "$R/usr/bin/sh" ] || ln -s bash "$R/usr/bin/sh"

# root, plus the range-base user libxl derives restricted bootloader uids from (base + domid), as
# docs/features/qemu-deprivilege.pandoc sets it up
cat > "$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
xen-qemuuser-range-base:x:131072:131072:Xen restricted bootloader/QEMU uid range:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
# the disk group: XAPI's block devices (SM's /dev/sm/backend/...) are root:disk 0660 (guest xapi-call)
printf 'root:x:0:\ndisk:x:6:\nnogroup:x:65534:\n' > "$R/etc/group"
touch "$R/etc/fstab"
echo "$key" > "$BASE.key"
echo "== dom0 base built in $(( $(date +%s) - t0 )) s ($(du -sh "$R" | cut -f1))"
else
echo "== dom0 base: cached ($BASE)"
fi

# ------------------------------------------------------------------------- pvboot, as an admin installs it
OV=$WORK/pvboot-overlay
rm -rf "$OV"
mkdir -p "$OV/usr/lib/pvboot" "$OV/usr/local/bin" "$OV$XENLIB/bin"
t1=$(date +%s)
PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install -q --disable-pip-version-check --no-warn-script-location \
    --target "$OV/usr/lib/pvboot" "$REPO" 2>&1 | { grep -v "^WARNING: Location" || true; }
rm -rf "$OV/usr/lib/pvboot/bin"
"$PY" -m compileall -q -j0 "$OV/usr/lib/pvboot" >/dev/null
cat > "$OV/usr/local/bin/pvboot" <<'EOF'
#!/usr/bin/python3.11 -I
import sys
sys.path.insert(0, "/usr/lib/pvboot")
from pvboot.cli import main
sys.exit(main())
EOF
chmod 0755 "$OV/usr/local/bin/pvboot"
install -m 0755 "$OV/usr/local/bin/pvboot" "$OV$XENLIB/bin/pygrub"   # pvboot installed as pygrub
echo "== pvboot $("$PY" -c "import sys; sys.path.insert(0, '$OV/usr/lib/pvboot'); import pvboot; print(pvboot.__version__)") installed into the overlay in $(( $(date +%s) - t1 )) s ($(du -sh "$OV" | cut -f1))"

# ------------------------------------------------------------------------- pack: base + overlay + /init
t2=$(date +%s)
R=$WORK/dom0-root
rm -rf "$R"
cp -a "$BASE" "$R"
cp -a "$OV"/. "$R"/
# the ELF libraries of the overlay (backports.zstd is a C extension)
find "$OV" -type f -name '*.so*' | while read -r f; do
    { ldd "$f" 2>/dev/null || true; } | { grep -oE '/[^ ]+' || true; } | while read -r lib; do
        [ -e "$R$lib" ] || { mkdir -p "$R$(dirname "$lib")"; cp -pL "$lib" "$R$lib"; }
    done
done
install -m 0755 "$HERE/dom0-init.sh" "$R/init"
install -m 0755 "$HERE/xapi-boot.py" "$R/usr/local/bin/e2e-xapi-boot"   # xenopsd's way to boot (xapi-call)
install -D -m 0644 "$HERE/../../toolstack/xenopsd.py" "$R/usr/local/lib/e2e/xenopsd.py"   # its parser
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > dom0.cpio.gz
echo "== dom0 initramfs packed in $(( $(date +%s) - t2 )) s: $(du -h dom0.cpio.gz | cut -f1) ($(du -sh "$R" | cut -f1) unpacked)"
rm -rf "$R"
