#!/bin/bash
# The fuzzing suite (tests/fuzz), run for longer than CI runs it.
#
#   scripts/fuzz.sh [--seconds N] [--count N] [--seed S] [--cli N] [--examples N] [-- PYTEST-ARGS...]
#   scripts/fuzz.sh --atheris [--runs N] [--seconds N] [--seed S] [--targets "T1 T2 ..."]
#
#   --seconds N   mutation time per image layout (CI: 2.5); default 60
#   --count N     stop each layout after N mutated images (0: no cap); default 0
#   --seed S      the random seed (default: a new one, printed; CI uses a fixed one)
#   --cli N       mutated images per layout also booted through the real CLI; default 10
#   --examples N  hypothesis examples per config grammar (CI: 60); default 2000
#
#   --atheris     coverage-guided fuzzing instead (tests/fuzz/run_atheris.py, one target at a time):
#     --runs N      executions per target (default 1000000); --seconds N: wall-clock cap per target
#     --seed S      libFuzzer's seed for every target (default: a new one, printed)
#     --targets L   only these targets (default: all; tests/fuzz/run_atheris.py --list)
#   Corpora grow in build/atheris/corpus/TARGET (kept between runs), findings land in
#   build/atheris/findings/TARGET-seedS-crash-SHA1 (+ .txt: seed, traceback, how to reproduce), logs in
#   build/atheris/logs/. A table of executions, seconds, coverage and findings per target ends the run.
#
# Examples:  scripts/fuzz.sh --seconds 600                  # ~2.5 h over the 15 layouts
#            scripts/fuzz.sh --count 5000 --seed 42 -- -k xfs
#            nohup scripts/fuzz.sh --atheris --runs 1000000 > /tmp/atheris-run.log 2>&1 &
# Findings (with the seed and the exact mutation) are printed by the failing tests and collected in
# $PVBOOT_FUZZ_OUT (default: $TMPDIR or /tmp)/pvboot-fuzz-findings-SEED.txt; each one should become a
# case in tests/fuzz/test_regressions.py (atheris findings: tests/fuzz/test_atheris_regressions.py).
# Needs root (loop mounts to build the XFS and Btrfs images) and the tools of scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="" count=0 seed="" cli=10 examples=2000 atheris=0 runs=1000000 targets=""
while [ $# -gt 0 ]; do
  case "$1" in
    --atheris) atheris=1; shift ;;
    --runs) runs=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --cli) cli=$2; shift 2 ;;
    --examples) examples=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$seed" ] || seed=$(( $(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % 2147483646 + 1 ))  # (libFuzzer: 0 is "random")
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python

if [ "$atheris" = 1 ]; then
  runner=tests/fuzz/run_atheris.py
  mkdir -p build/atheris
  [ -n "$targets" ] || targets=$("$python" "$runner" --list | awk '{print $1}')
  summary="${PVBOOT_FUZZ_OUT:-${TMPDIR:-/tmp}}/pvboot-atheris-$seed.txt"
  : > "$summary"
  budget="--runs $runs"
  [ -n "$seconds" ] && budget="$budget --seconds $seconds"
  echo "fuzz.sh: atheris, seed $seed, $budget per target: $(echo $targets | wc -w) targets, one at a time"
  status=0
  for target in $targets; do
    echo "fuzz.sh: $(date +%H:%M:%S) $target ..."
    rc=0
    # shellcheck disable=SC2086
    "$python" "$runner" "$target" $budget --seed "$seed" --json "build/atheris/last-$target.json" \
      | tee -a "$summary" || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 3 ] || status=1  # 3: no seeds here (not root?): said, not a failure
  done
  echo
  echo "fuzz.sh: atheris summary (seed $seed; also in $summary)"
  printf '%-13s %10s %9s %8s %7s %7s %8s\n' target execs seconds exec/s cov ft findings
  for target in $targets; do
    "$python" - "build/atheris/last-$target.json" <<'PY' || true
import json, sys
s = json.load(open(sys.argv[1]))
known = f" +{len(s['known'])} known" if s["known"] else ""
print(f"{s['target']:13} {s['execs']:10} {s['seconds']:9.0f} {s['rate']:8.0f} {s['cov']:7} {s['ft']:7} "
      f"{len(s['findings']):8}{known}{'  ERROR: ' + s['error'] if s['error'] else ''}")
PY
  done
  grep '^finding: ' "$summary" || echo "fuzz.sh: no new findings (seed $seed)"
  exit $status
fi

seconds=${seconds:-60}
report="${PVBOOT_FUZZ_OUT:-${TMPDIR:-/tmp}}/pvboot-fuzz-findings-$seed.txt"
: > "$report"
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
