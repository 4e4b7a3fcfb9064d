#!/bin/bash
# /init of the e2e dom0: bring up the Xen toolstack, mount the disk holding the guest images at /srv/xen,
# run `xl create` for every guest listed in /srv/xen/guests (one after the other; a guest boots while the
# next one's bootloader runs), wait until every guest has gone, and power off. A guest with a
# /srv/xen/<guest>.xapi file is started the way XAPI's xenopsd starts it instead (e2e-xapi-boot).
#
# The full logs go to /srv/xen/logs/<guest>/ (xl -vvv log with dom0-uptime stamps, bootloader pty log,
# guest console, QEMU device-model log), which run.sh reads back from the disk image afterwards; the
# console (QEMU's serial log) only gets E2E-STAGE progress lines and a short summary per guest.
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
up() { local u _; read -r u _ < /proc/uptime; REPLY=$u; }   # no fork: this runs once per xl log line
stage() { up; echo "E2E-STAGE $1 dom0_uptime=$REPLY"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
# devtmpfs lacks the links udev makes; the hotplug scripts' locking.sh needs /dev/stdin
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
stage dom0-userspace
# crc32c_generic: qemu64 has no SSE4.2, so crc32c-intel cannot load and ext4 needs a crc32c
for m in xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xen-blkback xen-blkfront loop \
         virtio_pci virtio_blk crc32c_generic ext4; do
    modprobe $m || echo "E2E: modprobe $m failed"
done
mount -t xenfs xenfs /proc/xen
i=0; while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
mount -t ext4 /dev/vda /srv/xen || echo "E2E: cannot mount the guest image disk /dev/vda"
mkdir -p /run/xen /run/xenstored /var/log/xen/console /var/lib/xen /srv/xen/logs
xenstored --pid-file /run/xenstored.pid || echo "E2E: xenstored failed"
xen-init-dom0 || echo "E2E: xen-init-dom0 failed"
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console \
    || echo "E2E: xenconsoled failed"
# QEMU as dom0's qdisk backend (Debian's /etc/init.d/xen starts the same): libxl attaches a qcow2 disk
# to dom0 through it, so that the bootloader can read it as /dev/xvdX
/usr/libexec/xen-qemu-system-i386 -xen-domid 0 -xen-attach -name dom0 -nographic -M xenpv -daemonize \
    -monitor none -serial none -parallel none -pidfile /run/qemu-dom0.pid \
    >/srv/xen/logs/qemu-dom0.log 2>&1 || echo "E2E: qemu-dom0 failed"
stage toolstack-up
echo "E2E: $(pvboot --version), python $(python3 -c 'import sys; print(sys.version.split()[0])'), $(uname -r)"

read -r -a GUESTS < /srv/xen/guests
if [ -f /srv/xen/debug ]; then   # E2E_DEBUG=1: pvboot's own view of each disk, from a root shell in dom0
    for g in "${GUESTS[@]}"; do
        img=$(sed -n 's/.*target=\([^" ]*\).*/\1/p' "/srv/xen/$g.cfg")
        [ -n "$img" ] || img=$(sed -n 's/^disk=//p' "/srv/xen/$g.xapi" 2>/dev/null)
        mkdir -p "/srv/xen/logs/$g"
        { echo "# pvboot --debug -l $img"; pvboot --debug -l "$img" 2>&1
          echo "# pvboot --debug -q --runas=131072 -n $img"; pvboot --debug -q --runas=131072 -n "$img" 2>&1
        } > "/srv/xen/logs/$g/debug.log"
    done
    stage debug-listings-done
fi

# console watcher: the moment each guest's marker appears
(
    declare -A seen=()
    while [ ! -f /run/e2e-stop-watch ]; do
        for g in "${GUESTS[@]}"; do
            if [ -z "${seen[$g]:-}" ] && grep -qs GUEST-BOOTED "/var/log/xen/console/guest-$g.log"; then
                seen[$g]=1; stage "guest-marker guest=$g"
            fi
        done
        sleep 0.5
    done
) &
WATCH=$!

for g in "${GUESTS[@]}"; do
    L=/srv/xen/logs/$g
    mkdir -p "$L"
    env=()
    if [ -f "/srv/xen/$g.env" ]; then read -r -a env < "/srv/xen/$g.env"; fi
    run=(xl -vvv create "/srv/xen/$g.cfg")
    # the XAPI-style guest: no bootloader in its xl.cfg; e2e-xapi-boot runs pvboot as xenopsd runs pygrub
    # (its stderr into bootloader.log), then `xl -vvv create` with the kernel, ramdisk and command line
    if [ -f "/srv/xen/$g.xapi" ]; then
        run=(e2e-xapi-boot "/srv/xen/$g.xapi" "/srv/xen/$g.cfg" "$L/bootloader.log")
    fi
    stage "xl-create-start guest=$g"
    # every xl line stamped with the dom0 uptime, so that the bootloader/build/hotplug phases can be timed
    { env "${env[@]}" "${run[@]}" 2>&1; echo "XL-RC $?"; } |
        while IFS= read -r l; do up; printf '%s %s\n' "$REPLY" "$l"; done > "$L/xl.log"
    rc=$(sed -n 's/.*XL-RC //p' "$L/xl.log")
    stage "xl-create-done guest=$g rc=$rc"
    for f in /var/log/xen/bootloader.*.log; do
        [ -f "$f" ] && { cat "$f" >> "$L/bootloader.log"; rm -f "$f"; }
    done
    # pvboot's one-line error, if any, straight to the console too
    tr -d '\r' < "$L/bootloader.log" 2>/dev/null | grep -ao 'pvboot: .*' | tail -n 1 | sed "s/^/E2E-BL guest=$g /"
done

i=0
while [ $i -lt 240 ]; do
    alive=0
    for g in "${GUESTS[@]}"; do xl domid "$g" >/dev/null 2>&1 && alive=$((alive+1)); done
    [ $alive = 0 ] && break
    sleep 1; i=$((i+1))
done
stage "guests-gone alive=$alive after=${i}s"
touch /run/e2e-stop-watch; sleep 1; kill $WATCH 2>/dev/null

for g in "${GUESTS[@]}"; do
    L=/srv/xen/logs/$g
    cp "/var/log/xen/console/guest-$g.log" "$L/console.log" 2>/dev/null
    cp "/var/log/xen/qemu-dm-$g.log" "$L/qemu-dm.log" 2>/dev/null
    grep -a GUEST-BOOTED "$L/console.log" 2>/dev/null | head -n 1 | tr -d '\r' | sed "s/^/E2E-CON guest=$g /"
done
cp /var/log/xen/xen-hotplug.log /srv/xen/logs/ 2>/dev/null
kill "$(cat /run/qemu-dom0.pid 2>/dev/null)" 2>/dev/null   # it may hold a qcow2 image open
xl dmesg > /srv/xen/logs/xl-dmesg.log 2>&1
dmesg > /srv/xen/logs/dom0-dmesg.log 2>&1
sync; umount /srv/xen || { sync; echo "E2E: umount /srv/xen failed"; }
stage done
echo o > /proc/sysrq-trigger 2>/dev/null
poweroff -f
