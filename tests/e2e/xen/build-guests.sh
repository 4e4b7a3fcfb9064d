#!/bin/bash
# Builds the e2e guests' disks with the real tools (sfdisk, mkfs.ext3/ext4/xfs/btrfs, lvm, qemu-img) into
# $E2E_WORK/srv, the tree that becomes the holder disk mounted at /srv/xen in dom0, next to the xl configs.
#
# Every guest boots the host's Debian kernel and a tiny busybox initrd (guest-init.sh) that prints
# /proc/cmdline. The boot menus are real ones (menus/, see menus/README.md); build_* appends a marker
# ` e2e=<guest>.L<n>` to the n-th kernel line (n counted from 1 in file order), so the command line the
# guest prints names the entry that was booted. expected.txt holds what each guest must print.
#
# Needs root: loop mounts for XFS and Btrfs, a loop device for LVM (activation off, no device-mapper).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${E2E_WORK:-/tmp/pvboot-e2e-xen}
KVER=${E2E_KVER:-$(ls /boot/vmlinuz-* | sed 's@/boot/vmlinuz-@@' | sort -V | tail -1)}
MENUS=$HERE/menus
OUT=$WORK/srv
B=$WORK/guest-build
U=5a1e0b2c-0000-4000-8000-00000000d0d0   # the root filesystem UUID the Debian 12 configs search for

rm -rf "$OUT" "$B"
mkdir -p "$OUT" "$B"

log() { echo "== guests: $*"; }

# --- the guest payload ------------------------------------------------------------------------------
mkdir -p "$B/initrd/bin" "$B/initrd/proc" "$B/initrd/dev"
cp /bin/busybox "$B/initrd/bin/busybox"
for a in sh mount cat echo poweroff sleep; do ln -s busybox "$B/initrd/bin/$a"; done
install -m 0755 "$HERE/guest-init.sh" "$B/initrd/init"
(cd "$B/initrd" && find . | cpio -o -H newc --quiet | gzip -9) > "$B/initrd.img"
KERNEL_SRC=/boot/vmlinuz-$KVER

# put_boot TREE DIR NAME...: kernel vmlinuz-NAME and initrd initrd.img-NAME in TREE/DIR (copies of the
# host's kernel and the e2e initrd: the names are what the boot menus expect)
put_boot() {
    local tree=$1 dir=$2; shift 2
    mkdir -p "$tree/$dir"
    for n in "$@"; do
        cp "$KERNEL_SRC" "$tree/$dir/vmlinuz-$n"
        cp "$B/initrd.img" "$tree/$dir/initrd.img-$n"
    done
}

# mark CASE KIND FILE: append " e2e=CASE.L<n>" to the n-th kernel line
#   KIND grub2: `linux`/`linux16`/`linuxefi` lines; legacy: `kernel` lines; extlinux: `append` lines
mark() {
    local case=$1 kind=$2 file=$3 re
    case $kind in
    grub2) re='^[ \t]*(linux|linux16|linuxefi)[ \t]' ;;
    legacy) re='^[ \t]*kernel[ \t]' ;;
    extlinux) re='^[ \t]*[Aa][Pp][Pp][Ee][Nn][Dd][ \t]' ;;
    esac
    awk -v c="$case" -v re="$re" '$0 ~ re { n++; sub(/[ \t]*$/, ""); $0 = $0 " e2e=" c ".L" n } { print }' \
        "$file" > "$file.new"
    mv "$file.new" "$file"
}

# grubenv FILE KEY=VALUE...: a GRUB environment block (1024 bytes, '#'-padded), as grub-editenv writes it
grubenv() {
    local f=$1; shift
    { echo "# GRUB Environment Block"; for kv in "$@"; do echo "$kv"; done; } > "$f"
    local n; n=$(stat -c %s "$f")
    head -c $((1024 - n)) /dev/zero | tr '\0' '#' >> "$f"
}

# timeout 5 -> 2 s: the console menu waits out the menu's timeout, as GRUB would
shorten_timeout() { sed -i -e 's/set timeout=5$/set timeout=2/' -e 's/^timeout 50$/timeout 20/' "$1"; }

# sparse FILE SIZE_MIB
sparse() { rm -f "$1"; truncate -s "$2M" "$1"; }

# table DISK SCRIPT: write a partition table; prints the start sectors, one a line
table() {
    printf '%s\n' "$2" | sfdisk -q --no-reread --no-tell-kernel "$1"
    sfdisk -J "$1" | python3 -c 'import json,sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]: print(p["start"])'
}

# place FS DISK BYTE_OFFSET: copy a filesystem image into the disk, holes stay holes
place() { dd if="$1" of="$2" bs=1M seek="$3" oflag=seek_bytes conv=notrunc,sparse status=none; rm -f "$1"; }

mkext() {  # mkext TYPE TREE IMAGE SIZE_MIB UUID [LABEL]
    mkfs."$1" -q -F -U "$5" ${6:+-L "$6"} -d "$2" "$3" "$4M" >/dev/null
}

# with_mount IMAGE OPTIONS FUNC ARGS...: FUNC MOUNTPOINT ARGS... with IMAGE loop-mounted
with_mount() {
    local img=$1 opts=$2 fn=$3 mnt rc=0; shift 3
    mnt=$(mktemp -d "$B/mnt.XXXXXX")
    mount -o "loop${opts:+,$opts}" "$img" "$mnt"
    "$fn" "$mnt" "$@" || rc=$?
    umount "$mnt"; rmdir "$mnt"
    return $rc
}
copy_into() { cp -a "$2/." "$1/"; }

expect_boot() { printf '%s boot %s\n' "$1" "$2" >> "$OUT/expected.txt"; }
expect_fail() { printf '%s fail %s\n' "$1" "$2" >> "$OUT/expected.txt"; }
expect_xllog() { printf '%s xllog %s\n' "$1" "$2" >> "$OUT/expected.txt"; }
: > "$OUT/expected.txt"

# debian_root TREE MENU [GRUBENV-LINES...]: a Debian root filesystem tree, /boot inside it
debian_root() {
    local t=$1 menu=$2; shift 2
    mkdir -p "$t/boot/grub" "$t/etc"
    put_boot "$t" boot 6.1.0-20-amd64 6.1.0-10-amd64
    cp "$MENUS/$menu" "$t/boot/grub/grub.cfg"
    shorten_timeout "$t/boot/grub/grub.cfg"
    if [ $# -gt 0 ]; then grubenv "$t/boot/grub/grubenv" "$@"; fi
    echo "UUID=$U / ext4 errors=remount-ro 0 1" > "$t/etc/fstab"
}

# debian_mbr_disk IMAGE TREE: MBR, partition 1 (bootable) = ext4 with UUID $U holding TREE
debian_mbr_disk() {
    local img=$1 start
    mkext ext4 "$2" "$B/fs" 48 "$U"
    sparse "$img" 50
    start=$(table "$img" $'label: dos\nstart=2048, size=48M, type=83, bootable')
    place "$B/fs" "$img" $((start * 512))
}

# --- GRUB 2, default in a submenu: GRUB_DEFAULT="1>2" (Debian 12 update-grub) ------------------------
build_debian_submenu() {
    local t=$B/t-debian-submenu
    debian_root "$t" debian12-submenu-index.grub.cfg
    mark debian-submenu grub2 "$t/boot/grub/grub.cfg"
    debian_mbr_disk "$OUT/debian-submenu.img" "$t"
    # "Advanced options" > its third entry (6.1.0-10-amd64) = the 4th linux line
    expect_boot debian-submenu "root=UUID=$U ro quiet e2e=debian-submenu.L4 console=hvc0"
}

# --- Fedora-style BLS: blscfg, grubenv saved_entry + $kernelopts; GPT, separate ext4 /boot, Btrfs root --
build_fedora_bls() {
    local t=$B/t-fedora-boot r=$B/t-fedora-root mid=3f2a6b1c9d8e4f7a8b6c5d4e3f2a1b0c v img starts
    local buuid=4e1d0c2b-1111-4a2b-9c3d-0000000b0070 ruuid=7f3e2d1c-2222-4b3c-8d4e-00000000f0ed
    mkdir -p "$t/grub2" "$t/loader/entries"
    for v in 6.1.0-20.fc37.x86_64 6.1.0-10.fc37.x86_64; do
        cp "$KERNEL_SRC" "$t/vmlinuz-$v"; cp "$B/initrd.img" "$t/initramfs-$v.img"
    done
    sed "s/@UUID@/$buuid/g" "$MENUS/fedora37-bls.grub.cfg" > "$t/grub2/grub.cfg"
    shorten_timeout "$t/grub2/grub.cfg"
    # blscfg sorts the newest version first: that entry (0) is the decoy, with options of its own;
    # grubenv's saved_entry names the older one, whose options are $kernelopts from grubenv
    cat > "$t/loader/entries/$mid-6.1.0-20.fc37.x86_64.conf" <<EOC
title Fedora Linux (6.1.0-20.fc37.x86_64) 37 (Thirty Seven)
version 6.1.0-20.fc37.x86_64
linux /vmlinuz-6.1.0-20.fc37.x86_64
initrd /initramfs-6.1.0-20.fc37.x86_64.img
options root=UUID=$ruuid ro rootflags=subvol=root e2e=fedora-bls.NEWEST-DECOY
grub_users \$grub_users
grub_arg --unrestricted
grub_class fedora
EOC
    cat > "$t/loader/entries/$mid-6.1.0-10.fc37.x86_64.conf" <<EOC
title Fedora Linux (6.1.0-10.fc37.x86_64) 37 (Thirty Seven)
version 6.1.0-10.fc37.x86_64
linux /vmlinuz-6.1.0-10.fc37.x86_64
initrd /initramfs-6.1.0-10.fc37.x86_64.img
options \$kernelopts
grub_users \$grub_users
grub_arg --unrestricted
grub_class fedora
EOC
    grubenv "$t/grub2/grubenv" "saved_entry=$mid-6.1.0-10.fc37.x86_64" \
        "kernelopts=root=UUID=$ruuid ro rootflags=subvol=root rhgb quiet e2e=fedora-bls.kernelopts" \
        "boot_success=1"
    mkext ext4 "$t" "$B/boot.fs" 48 "$buuid"
    # root: Btrfs with the subvolumes Fedora's installer makes; the bootloader never needs it
    mkdir -p "$r/etc"
    echo "UUID=$buuid /boot ext4 defaults 1 2" > "$r/etc/fstab"
    sparse "$B/root.fs" 120
    mkfs.btrfs -q -f -U "$ruuid" -L fedora "$B/root.fs" >/dev/null
    fedora_subvols() { btrfs -q subvolume create "$1/root" && btrfs -q subvolume create "$1/home" && cp -a "$2/." "$1/root/"; }
    with_mount "$B/root.fs" "" fedora_subvols "$r"
    img=$OUT/fedora-bls.img
    sparse "$img" 172
    mapfile -t starts < <(table "$img" "label: gpt
start=2048, size=1M, type=21686148-6449-6E6F-744E-656564454649
start=4096, size=48M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
start=, size=120M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4")
    place "$B/boot.fs" "$img" $((starts[1] * 512))
    place "$B/root.fs" "$img" $((starts[2] * 512))
    expect_boot fedora-bls "root=UUID=$ruuid ro rootflags=subvol=root rhgb quiet e2e=fedora-bls.kernelopts console=hvc0"
}

# --- extlinux with `initrd` directives (Debian u-boot-menu), `default l1` --------------------------------
build_extlinux() {
    local t=$B/t-extlinux
    mkdir -p "$t/boot/extlinux"
    put_boot "$t" boot 6.1.0-20-amd64 6.1.0-10-amd64
    sed 's/^default l0$/default l1/' "$MENUS/debian12-uboot-default.extlinux.conf" > "$t/boot/extlinux/extlinux.conf"
    shorten_timeout "$t/boot/extlinux/extlinux.conf"
    mark extlinux extlinux "$t/boot/extlinux/extlinux.conf"
    debian_mbr_disk "$OUT/extlinux.img" "$t"
    # label l1 = the third entry; pvboot passes the line without the " initrd=" SYSLINUX itself appends
    expect_boot extlinux "ro quiet e2e=extlinux.L3 console=hvc0"
}

# --- GRUB legacy (CentOS 6 anaconda grub.conf) on a separate ext3 /boot, default=1 -------------------
build_grub_legacy() {
    local t=$B/t-legacy img starts v
    mkdir -p "$t/grub"
    for v in 2.6.32-754.35.1.el6.x86_64 2.6.32-754.el6.x86_64; do
        cp "$KERNEL_SRC" "$t/vmlinuz-$v"; cp "$B/initrd.img" "$t/initramfs-$v.img"
    done
    cp "$MENUS/centos6.grub.conf" "$t/grub/grub.conf"
    mark grub-legacy legacy "$t/grub/grub.conf"
    ln -s ./grub.conf "$t/grub/menu.lst"
    mkext ext3 "$t" "$B/boot.fs" 48 1c0b0a09-3333-4c4d-8e8f-0000000c0e06
    img=$OUT/grub-legacy.img
    sparse "$img" 66
    mapfile -t starts < <(table "$img" $'label: dos\nstart=2048, size=48M, type=83, bootable\nstart=, size=16M, type=8e')
    place "$B/boot.fs" "$img" $((starts[0] * 512))
    expect_boot grub-legacy "ro root=/dev/mapper/VolGroup-lv_root rd_NO_LUKS LANG=en_US.UTF-8 rd_NO_MD rd_LVM_LV=VolGroup/lv_swap SYSFONT=latarcyrheb-sun16 crashkernel=auto rd_LVM_LV=VolGroup/lv_root KEYBOARDTYPE=pc KEYTABLE=us rd_NO_DM e2e=grub-legacy.L2 console=hvc0"
}

# --- RHEL 7: XFS /boot (mkfs.xfs needs >= 300 MB: a sparse file), grubenv saved_entry = rescue title ----
build_xfs_boot() {
    local t=$B/t-xfs img starts
    local xuuid=89ffef78-82b3-457c-bc57-42cccc373851 k=3.10.0-54.0.1.el7.x86_64 r=0-rescue-af34f0b8cf364cdbbe6d093f8228a37f
    mkdir -p "$t/grub2"
    cp "$KERNEL_SRC" "$t/vmlinuz-$k"; cp "$B/initrd.img" "$t/initramfs-$k.img"
    cp "$KERNEL_SRC" "$t/vmlinuz-$r"; cp "$B/initrd.img" "$t/initramfs-$r.img"
    cp "$MENUS/rhel-7-beta.grub.cfg" "$t/grub2/grub.cfg"
    shorten_timeout "$t/grub2/grub.cfg"
    mark xfs-boot grub2 "$t/grub2/grub.cfg"
    grubenv "$t/grub2/grubenv" "saved_entry=Red Hat Enterprise Linux Everything, with Linux $r"
    sparse "$B/boot.fs" 300
    mkfs.xfs -q -f -m crc=1,uuid=$xuuid "$B/boot.fs"
    with_mount "$B/boot.fs" "" copy_into "$t"
    img=$OUT/xfs-boot.img
    sparse "$img" 318
    mapfile -t starts < <(table "$img" $'label: dos\nstart=2048, size=300M, type=83, bootable\nstart=, size=16M, type=8e')
    place "$B/boot.fs" "$img" $((starts[0] * 512))
    expect_boot xfs-boot "root=/dev/mapper/rhel-root ro rd.lvm.lv=rhel/swap vconsole.keymap=uk crashkernel=auto rd.lvm.lv=rhel/root vconsole.font=latarcyrheb-sun16 e2e=xfs-boot.L2 console=hvc0"
}

# --- Btrfs root with subvolumes @ and @home, /boot inside @ (Ubuntu layout: paths /@/boot/...) ---------
build_btrfs_subvol() {
    local t=$B/t-btrfs img start
    debian_root "$t/@" debian12-saved-empty.grub.cfg \
        "saved_entry=gnulinux-advanced-$U>gnulinux-6.1.0-20-amd64-advanced-$U"
    sed -i -e 's|/boot/vmlinuz|/@/boot/vmlinuz|; s|/boot/initrd|/@/boot/initrd|' \
        -e 's|insmod ext2|insmod btrfs|' -e "s|root=UUID=$U ro|root=UUID=$U ro rootflags=subvol=@|" \
        "$t/@/boot/grub/grub.cfg"
    mark btrfs-subvol grub2 "$t/@/boot/grub/grub.cfg"
    sparse "$B/fs" 120
    mkfs.btrfs -q -f -U "$U" "$B/fs" >/dev/null
    ubuntu_subvols() { btrfs -q subvolume create "$1/@" && btrfs -q subvolume create "$1/@home" && cp -a "$2/@/." "$1/@/"; }
    with_mount "$B/fs" "" ubuntu_subvols "$t"
    img=$OUT/btrfs-subvol.img
    sparse "$img" 122
    start=$(table "$img" $'label: dos\nstart=2048, size=120M, type=83, bootable')
    place "$B/fs" "$img" $((start * 512))
    # saved_entry "advanced>6.1.0-20" = the 2nd linux line
    expect_boot btrfs-subvol "root=UUID=$U ro rootflags=subvol=@ quiet e2e=btrfs-subvol.L2 console=hvc0"
}

# --- LVM: MBR partition 1 = PV of VG vg0 (LVs swap, root); /boot inside the root LV ------------------
# LVM runs on a loop device with activation off and a private config (no device-mapper needed); the
# filesystem is written at the root LV's first extent.
build_lvm() {
    local t=$B/t-lvm img start dev conf=$B/lvm-etc pe_start ranges extent first vgu lvu
    debian_root "$t" debian12-nosubmenu-cmdline.grub.cfg
    img=$OUT/lvm.img
    sparse "$img" 66
    start=$(table "$img" $'label: dos\nstart=2048, size=64M, type=8e')
    mkdir -p "$conf"
    cat > "$conf/lvm.conf" <<EOC
global { activation = 0 use_lvmlockd = 0 locking_dir = "$conf" }
devices { use_devicesfile = 0 obtain_device_list_from_udev = 0 hints = "none" }
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
backup { backup = 0 archive = 0 }
EOC
    dev=$(losetup -f --show -o $((start * 512)) --sizelimit $((64 << 20)) "$img")
    lvmq() { LVM_SYSTEM_DIR=$conf LVM_SUPPRESS_FD_WARNINGS=1 lvm "$@" 2>/dev/null; }
    {
        lvmq pvcreate -q -ff -y "$dev" >/dev/null
        lvmq vgcreate -q -s 4m vg0 "$dev" >/dev/null
        lvmq lvcreate -q -an -Zn -y -L 8m -n swap vg0 >/dev/null
        lvmq lvcreate -q -an -Zn -y -L 48m -n root vg0 >/dev/null
        pe_start=$(lvmq pvs --noheadings --units b --nosuffix -o pe_start "$dev" | tr -d ' ')
        ranges=$(lvmq lvs --noheadings -o seg_pe_ranges vg0/root | tr -d ' ')
        extent=$(lvmq vgs --noheadings --units b --nosuffix -o vg_extent_size vg0 | tr -d ' ')
        vgu=$(lvmq vgs --noheadings -o vg_uuid vg0 | tr -d ' ')
        lvu=$(lvmq lvs --noheadings -o lv_uuid vg0/root | tr -d ' ')
    } || { losetup -d "$dev"; return 1; }
    losetup -d "$dev"
    rm -rf "$conf"
    first=${ranges#*:}; first=${first%%-*}
    # what grub-mkconfig writes for a root on LVM
    sed -i -e "s|'hd0,msdos1'|'lvmid/$vgu/$lvu'|; s|hd0,msdos1|lvmid/$vgu/$lvu|g" \
        -e 's|insmod part_msdos|insmod part_msdos\n\tinsmod lvm|' \
        -e "s|root=UUID=$U|root=/dev/mapper/vg0-root|" "$t/boot/grub/grub.cfg"
    mark lvm grub2 "$t/boot/grub/grub.cfg"
    mkext ext4 "$t" "$B/fs" 48 "$U"
    place "$B/fs" "$img" $((start * 512 + pe_start + first * extent))
    # GRUB_DEFAULT=2 with GRUB_DISABLE_SUBMENU=y: the 3rd entry, 6.1.0-10-amd64
    expect_boot lvm "root=/dev/mapper/vg0-root ro console=hvc0 earlyprintk=xen quiet splash e2e=lvm.L3 console=hvc0"
}

# --- qcow2: Debian disk as qcow2; grub-reboot "1>1" left next_entry in grubenv ----------------------
build_qcow2() {
    local t=$B/t-qcow2
    debian_root "$t" debian12-xen-default.grub.cfg "next_entry=1>1"
    mark qcow2 grub2 "$t/boot/grub/grub.cfg"
    debian_mbr_disk "$B/qcow2.raw" "$t"
    qemu-img convert -f raw -O qcow2 "$B/qcow2.raw" "$OUT/qcow2.qcow2"
    rm -f "$B/qcow2.raw"
    # "Advanced options" > 6.1.0-20 (recovery mode) = the 3rd linux line
    expect_boot qcow2 "root=UUID=$U ro single e2e=qcow2.L3 console=hvc0"
}

# --- restricted mode (libxl --runas): grub-set-default with a title path ---------------------------
build_restricted() {
    local t=$B/t-restricted
    debian_root "$t" debian12-saved-empty.grub.cfg \
        "saved_entry=Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-10-amd64"
    mark restricted grub2 "$t/boot/grub/grub.cfg"
    debian_mbr_disk "$OUT/restricted.img" "$t"
    # xl 4.17 reads restricted mode from its environment only (4.18+: bootloader_restrict in xl.cfg)
    echo "LIBXL_BOOTLOADER_RESTRICT=1" > "$OUT/restricted.env"
    expect_boot restricted "root=UUID=$U ro quiet e2e=restricted.L4 console=hvc0"
    expect_xllog restricted "bootloader arg: --runas=131"   # xen-qemuuser-range-base (131072) + domid
}

# --- bootloader = "pygrub", answered by pvboot installed as pygrub; saved_entry = an id path -----------
build_pygrub_name() {
    local t=$B/t-pygrub
    debian_root "$t" debian12-saved-id.grub.cfg
    cp "$MENUS/debian12-saved-id.grubenv" "$t/boot/grub/grubenv"
    mark pygrub-name grub2 "$t/boot/grub/grub.cfg"
    debian_mbr_disk "$OUT/pygrub-name.img" "$t"
    # "advanced>6.1.0-10 recovery": the 5th linux line (pygrub 4.17 itself boots entry 0 here)
    expect_boot pygrub-name "root=UUID=$U ro single e2e=pygrub-name.L5 console=hvc0"
    expect_xllog pygrub-name "executing bootloader: /usr/lib/xen-4.17/bin/pygrub"
}

# --- the XAPI-style call (XCP-ng/XenServer's xenopsd): pvboot as pygrub, answer on stdout, no libxl --------
# dom0 runs e2e-xapi-boot (xapi-boot.py) for it instead of a bootloader in xl.cfg: a root:disk 0660 loop
# device, `pygrub --output-format=simple -q --runas=UID <PV-bootloader-args> DEV`, xenopsd's parsing and
# path check, then `xl create` with kernel/ramdisk/cmdline, and the files deleted (see README.md)
build_xapi_call() {
    local t=$B/t-xapi
    debian_root "$t" debian12-submenu-index.grub.cfg
    mark xapi-call grub2 "$t/boot/grub/grub.cfg"
    debian_mbr_disk "$OUT/xapi-call.img" "$t"
    # what xenopsd has from XAPI: the VM's PV-bootloader-args (split on single spaces), PV-legacy-args and
    # PV-args, the disk, and the uid pygrub-wrapper derives from the domid (qemu_base + domid; here
    # xen-qemuuser-range-base + 64)
    cat > "$OUT/xapi-call.xapi" <<EOC
bootloader=/usr/lib/xen-4.17/bin/pygrub
disk=/srv/xen/xapi-call.img
runas=$((131072 + 64))
pv_bootloader_args=--extra_args=xapi_extra=1 --vm=7d3c51e2-0a9b-4c1d-8e2f-00000000a0a1
pv_legacy_args=
pv_args=
EOC
    # GRUB_DEFAULT="1>2" as debian-submenu: the 4th linux line, then pvboot appends --extra_args; xenopsd
    # builds "<args> <PV-legacy-args> <PV-args>" (both empty; no xl `extra` either, so no console=hvc0)
    expect_boot xapi-call "root=UUID=$U ro quiet e2e=xapi-call.L4 xapi_extra=1"
    expect_xllog xapi-call "xapi: kernel /var/run/xen/pygrub/"
    expect_xllog xapi-call "xapi: /var/run/xen/pygrub is empty after the delete"
}

# --- not PV-bootable: the default is the Xen (multiboot2) entry; xl create must fail with pvboot's message
build_xen_notpv() {
    local t=$B/t-notpv
    debian_root "$t" debian12-xen-title.grub.cfg
    cp /boot/xen-4.17-amd64.gz /boot/xen-4.17-amd64.efi "$t/boot/"
    mark xen-notpv grub2 "$t/boot/grub/grub.cfg"
    debian_mbr_disk "$OUT/xen-notpv.img" "$t"
    expect_fail xen-notpv "pvboot: RuntimeError: menu entry 'Debian GNU/Linux, with Xen hypervisor' cannot boot as a PV guest"
}

GUESTS=${E2E_GUESTS:-"debian-submenu fedora-bls extlinux grub-legacy xfs-boot btrfs-subvol lvm qcow2 restricted pygrub-name xapi-call xen-notpv"}
for g in $GUESTS; do
    s=$(date +%s.%N)
    "build_${g//-/_}"
    cp "$HERE/xl/$g.cfg" "$OUT/$g.cfg"
    log "$g built in $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
done
echo "$GUESTS" > "$OUT/guests"
if [ "${E2E_DEBUG:-0}" = 1 ]; then touch "$OUT/debug"; fi
rm -rf "$B"
du -sh --apparent-size "$OUT"; du -sh "$OUT"
