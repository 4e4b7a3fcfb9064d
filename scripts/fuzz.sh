#!/bin/bash
# The fuzzing suite (tests/fuzz), run for longer than CI runs it.
#
#   scripts/fuzz.sh [--seconds N] [--count N] [--seed S] [--cli N] [--examples N] [-- PYTEST-ARGS...]
#
#   --seconds N   mutation time per image layout (CI: 2.5); default 60
#   --count N     stop each layout after N mutated images (0: no cap); default 0
#   --seed S      the random seed (default: a new one, printed; CI uses a fixed one)
#   --cli N       mutated images per layout also booted through the real CLI; default 10
#   --examples N  hypothesis examples per config grammar (CI: 60); default 2000
#
# Examples:  scripts/fuzz.sh --seconds 600                  # ~2.5 h over the 15 layouts
#            scripts/fuzz.sh --count 5000 --seed 42 -- -k xfs
# Findings (with the seed and the exact mutation) are printed by the failing tests and collected in
# $PVBOOT_FUZZ_OUT (default: $TMPDIR or /tmp)/pvboot-fuzz-findings-SEED.txt; each one should become a
# case in tests/fuzz/test_regressions.py.
# Needs root (loop mounts to build the XFS and Btrfs images) and the tools of scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60 count=0 seed="" cli=10 examples=2000
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --cli) cli=$2; shift 2 ;;
    --examples) examples=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$seed" ] || seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
report="${PVBOOT_FUZZ_OUT:-${TMPDIR:-/tmp}}/pvboot-fuzz-findings-$seed.txt"
: > "$report"
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
echo "fuzz.sh: seed $seed, $seconds s / $count cases per layout, $cli CLI runs per layout, $examples examples per grammar"
status=0
PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" \
PVBOOT_FUZZ_SEED="$seed" PVBOOT_FUZZ_SECONDS="$seconds" PVBOOT_FUZZ_CASES="$count" \
PVBOOT_FUZZ_CLI="$cli" PVBOOT_FUZZ_EXAMPLES="$examples" PVBOOT_FUZZ_REPORT="$report" PVBOOT_FUZZ_DEEP=1 \
  "$python" -m pytest tests/fuzz -p no:cacheprovider -q -s -rf "$@" || status=$?
if [ -s "$report" ]; then
  echo "fuzz.sh: findings in $report"
else
  rm -f "$report"
  echo "fuzz.sh: no findings (seed $seed)"
fi
exit $status
