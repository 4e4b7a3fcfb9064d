#!/bin/bash
# The CI step for the e2e under real Xen (called from .ci/run): installs what it needs, builds, boots
# Xen 4.17 in QEMU and runs every guest through pvboot. Its last line is `N/M guests booted`; the exit
# status is non-zero unless every guest passed. Budget: under 15 minutes on 2 cores (see README.md).
#
# Leaves everything for inspection under $E2E_WORK (default /tmp/pvboot-e2e-xen-ci): serial.log (Xen,
# dom0 console), logs/<guest>/{xl.log,bootloader.log,console.log} and run.log (this step's output).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export E2E_WORK=${E2E_WORK:-/tmp/pvboot-e2e-xen-ci}
export E2E_TIMEOUT=${E2E_TIMEOUT:-720}   # QEMU run; the whole step stays under 15 minutes
mkdir -p "$E2E_WORK"
start=$(date +%s)
echo "== e2e under real Xen (tests/e2e/xen/run.sh), work dir $E2E_WORK"
bash "$HERE/run.sh" 2>&1 | tee "$E2E_WORK/run.log"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^[0-9]+/[0-9]+ guests booted$' "$E2E_WORK/run.log" | tail -n 1)
echo "== e2e step took $(( $(date +%s) - start )) s; logs in $E2E_WORK"
echo "${summary:-0/0 guests booted}"
if [ -z "$summary" ] && [ "$rc" = 0 ]; then rc=1; fi
exit "$rc"
