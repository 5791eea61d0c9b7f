#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# busy_run.sh: runs a test command N times beside CPU hogs, to check that the
# suites hold on a busy machine (tests/timing_window.h), and reports each
# run's result.
#
#   tools/busy_run.sh [-n RUNS] [-j HOGS] [-l LOGDIR] -- COMMAND [ARGS...]
#
#   tools/busy_run.sh -n 3 -- ./bazelw test --jobs=2 //tests/...
#   tools/busy_run.sh -n 3 -- ./bazelw test --config=asan --jobs=2 \
#       --runs_per_test=20 //tests/conformance:conformance_test
#   tools/busy_run.sh -n 3 -- bash -c 'cd build && ctest -j2 --output-on-failure'
#
# HOGS (default 2) busy loops run at normal priority for the whole session
# and are killed when the script ends (also on Ctrl-C). Each run's output goes
# to LOGDIR/run-<i>.log (default: a new directory under /tmp); a failed run's
# last lines are printed. Bazel caches passing test results: pass
# --nocache_test_results (or runs_per_test) to run the tests again each time.
# Exit status: 0 if every run passed, 1 otherwise, 2 on bad usage.
set -uo pipefail

runs=3
hogs=2
logdir=""
usage() {
  sed -n '3,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
while getopts "n:j:l:h" opt; do
  case "$opt" in
    n) runs=$OPTARG ;;
    j) hogs=$OPTARG ;;
    l) logdir=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || usage
case "$runs$hogs" in
  *[!0-9]*) echo "busy_run: -n and -j take numbers" >&2; exit 2 ;;
esac
[ "$runs" -ge 1 ] || { echo "busy_run: -n must be at least 1" >&2; exit 2; }

if [ -z "$logdir" ]; then
  logdir=$(mktemp -d /tmp/busy_run.XXXXXX) || exit 2
else
  mkdir -p "$logdir" || exit 2
fi

hog_pids=()
stop_hogs() {
  local p
  for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${hog_pids[@]}"; do wait "$p" 2>/dev/null; done
  hog_pids=()
}
trap stop_hogs EXIT
trap 'stop_hogs; exit 130' INT TERM

for ((i = 0; i < hogs; i++)); do
  bash -c 'while :; do :; done' &
  hog_pids+=($!)
done
echo "busy_run: $hogs CPU hogs (pids ${hog_pids[*]}), $runs runs of: $*"
echo "busy_run: logs in $logdir"

pass=0
fail=0
for ((i = 1; i <= runs; i++)); do
  log="$logdir/run-$i.log"
  start=$(date +%s)
  "$@" </dev/null >"$log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
  if [ $rc -eq 0 ]; then
    pass=$((pass + 1))
    echo "busy_run: run $i/$runs PASSED in ${took}s (load $load)"
  else
    fail=$((fail + 1))
    echo "busy_run: run $i/$runs FAILED (exit $rc) in ${took}s (load $load); $log ends:"
    tail -n 30 "$log" | sed 's/^/    /'
  fi
done
echo "busy_run: $pass passed, $fail failed of $runs"
[ $fail -eq 0 ]
