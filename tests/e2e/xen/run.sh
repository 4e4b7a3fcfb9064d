#!/bin/bash
# End-to-end test under real Xen: boots Xen 4.17 in QEMU (TCG) with a Debian dom0 that has pvboot installed,
# and in that one Xen boot runs `xl create` for every guest of build-guests.sh through pvboot. Each guest
# prints its /proc/cmdline on hvc0; verify.py compares it with what the guest's boot menu must give.
# Prints `N/M guests booted` last; exits 0 only when every guest passed. Run as root on Debian 12.
#
# Variables:
#   E2E_WORK       work directory (default /tmp/pvboot-e2e-xen; needs ~1.5 GB, most of it sparse)
#   E2E_GUESTS     the guests to run (default: all, see build-guests.sh)
#   E2E_SKIP_APT=1 do not install packages
#   E2E_REBUILD=1  rebuild the cached Debian part of the dom0
#   E2E_TIMEOUT    seconds for the whole QEMU run (default 900)
#   E2E_CPU, E2E_MEM, E2E_SMP   QEMU -cpu (default qemu64: `max` kills the PV dom0 under TCG), MiB, vCPUs
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
export E2E_WORK=${E2E_WORK:-/tmp/pvboot-e2e-xen}
WORK=$E2E_WORK
TIMEOUT=${E2E_TIMEOUT:-900}
CPU=${E2E_CPU:-qemu64}
MEM=${E2E_MEM:-2048}
SMP=${E2E_SMP:-2}
LOG=$WORK/serial.log
mkdir -p "$WORK"
T0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
ALL_GUESTS=$(sed -n 's/^GUESTS=${E2E_GUESTS:-"\(.*\)"}$/\1/p' "$HERE/build-guests.sh")
die() { echo "E2E: $*" >&2; echo "0/$(echo ${E2E_GUESTS:-$ALL_GUESTS} | wc -w) guests booted"; exit 1; }

# ------------------------------------------------------------------------------------------- packages
PACKAGES=(xen-hypervisor-4.17-amd64 xen-utils-4.17 xenstore-utils qemu-system-xen qemu-system-data qemu-system-x86 qemu-utils
          linux-image-amd64 busybox-static cpio gzip file kmod util-linux fdisk e2fsprogs xfsprogs btrfs-progs
          lvm2 python3.11 python3-pip ncurses-base libseccomp2)
if [ "${E2E_SKIP_APT:-0}" != 1 ]; then
    missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=600 update -qq || die "apt-get update failed"
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || die "apt-get install failed"
    fi
fi
T_APT=$(since "$T0")
echo "== packages ready after ${T_APT}s"

# ------------------------------------------------------------------------------------------- build
t=$(date +%s.%N)
bash "$HERE/build-guests.sh" || die "building the guest disks failed"
# the guest images travel on a second QEMU disk (ext4, sparse on the host), mounted at /srv/xen in dom0:
# the dom0 initramfs lives in RAM, and XFS alone needs 300 MB
apparent=$(du -sm --apparent-size "$WORK/srv" | cut -f1)
rm -f "$WORK/holder.img"
mkfs.ext4 -q -F -L e2e-srv -E root_owner=0:0 -d "$WORK/srv" "$WORK/holder.img" "$((apparent * 5 / 4 + 64))M" \
    || die "building the holder disk failed"
T_GUESTS=$(since "$t")
echo "== guest disks built in ${T_GUESTS}s: holder.img $(du -h --apparent-size "$WORK/holder.img" | cut -f1) ($(du -h "$WORK/holder.img" | cut -f1) allocated)"
t=$(date +%s.%N)
bash "$HERE/build-dom0.sh" || die "building the dom0 failed"
T_DOM0=$(since "$t")
echo "== dom0 built in ${T_DOM0}s"

# ------------------------------------------------------------------------------------------- boot
cd "$WORK"
rm -f "$LOG"
XEN_CMDLINE="console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all console_timestamps=boot dom0_mem=1024M,max:1024M dom0_max_vcpus=$SMP"
DOM0_CMDLINE="console=hvc0 earlyprintk=xen"
TQ=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -cpu "$CPU" -smp "$SMP" -m "$MEM" \
    -nographic -monitor none -serial "file:$LOG" -no-reboot \
    -kernel xen -append "$XEN_CMDLINE" \
    -initrd "dom0-kernel $DOM0_CMDLINE,dom0.cpio.gz" \
    -drive "file=$WORK/holder.img,if=virtio,format=raw,cache=unsafe" \
    >"$WORK/qemu.stdout" 2>&1 &
QPID=$!
echo "== qemu pid $QPID, serial log $LOG"
declare -A seen=()
markers=("xen|Xen version" "dom0-kernel|Linux version" "dom0-userspace|E2E-STAGE dom0-userspace"
         "toolstack-up|E2E-STAGE toolstack-up" "first-xl-create|E2E-STAGE xl-create-start"
         "first-guest-marker|E2E-STAGE guest-marker" "guests-gone|E2E-STAGE guests-gone"
         "done|E2E-STAGE done")
while :; do
    el=$(since "$TQ")
    for m in "${markers[@]}"; do
        name=${m%%|*}; pat=${m#*|}
        if [ -z "${seen[$name]:-}" ] && grep -aqF "$pat" "$LOG" 2>/dev/null; then
            seen[$name]=$el; echo "   [+${el}s] $name"
        fi
    done
    [ -n "${seen[done]:-}" ] && break
    if ! kill -0 "$QPID" 2>/dev/null; then echo "   qemu exited"; break; fi
    if awk -v e="$el" -v t="$TIMEOUT" 'BEGIN{exit !(e>t)}'; then echo "   TIMEOUT after ${TIMEOUT}s"; break; fi
    sleep 1
done
sleep 2
kill "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null
T_BOOT=$(since "$TQ")

# ------------------------------------------------------------------------------------------- verdict
# dom0 left its logs on the holder disk: read them back without mounting it
rm -rf "$WORK/logs"
debugfs -R "rdump /logs $WORK" "$WORK/holder.img" >/dev/null 2>&1 || echo "E2E: cannot read the logs back from holder.img"
echo "== dom0 console (full: $LOG; per-guest logs: $WORK/logs/<guest>/)"
tr -d '\r' < "$LOG" | grep -aE '^(E2E-STAGE|E2E-BL|E2E-CON|E2E: )' | cut -c1-240
echo "== stages (host seconds since QEMU start)"
for m in "${markers[@]}"; do name=${m%%|*}; printf '   %-20s %s\n' "$name" "${seen[$name]:-never}"; done
echo "== times: packages ${T_APT}s, guest disks ${T_GUESTS}s, dom0 ${T_DOM0}s, Xen boot + guests ${T_BOOT}s, total $(since "$T0")s"
echo "== guests (dom0 uptime seconds)"
python3 "$HERE/verify.py" "$WORK/logs" "$LOG" "$WORK/srv/expected.txt"
