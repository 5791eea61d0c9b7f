#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# bench/loop_cost_guard.sh [--update]: keeps the event loop's own cost from
# creeping back. Counts user-space instructions per loop ping-pong round
# trip (bench/loop_cost.sh: callgrind, -c opt) for both forms on both Linux
# loop backends and compares them with bench/loop_cost_baseline.txt. Fails
# if a figure is more than 15% above its baseline; a figure more than 15%
# below is reported (run with --update to make the gain the new baseline).
# Where io_uring is unavailable (kernel, seccomp) its figures are left out,
# and the output says so. --update writes the current figures.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/ensure_packages.sh valgrind
base=bench/loop_cost_baseline.txt
limit=15
export LOOP_COST_ROUNDS="${LOOP_COST_ROUNDS:-2000 22000}"

build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
./bazelw build -c opt //bench:loop_cost >"$build_log" 2>&1 || {
  cat "$build_log"
  exit 1
}
backends=(epoll)
rc=0
bazel-bin/bench/loop_cost raw_io_uring 1 >/dev/null || rc=$?
case "$rc" in
  0) backends+=(io_uring) ;;
  3) echo "loop_cost_guard: io_uring unavailable here: epoll figures only" ;;
  *) echo "loop_cost_guard: the io_uring probe failed (exit $rc)"; exit 1 ;;
esac

declare -A now
for b in "${backends[@]}"; do
  out=$(GOPOLL_LOOP_BACKEND="$b" bash bench/loop_cost.sh callback coroutine)
  while read -r form n _; do
    now["$b ${form%:}"]=$n
  done <<<"$out"
done

if [ "${1:-}" = --update ]; then
  {
    echo "# Instructions per loop ping-pong round trip (bench/loop_cost_guard.sh):"
    echo "# backend form instructions. Measured $(date -u +%Y-%m-%d) on $(uname -m), $(nproc) CPUs."
    for k in "${!now[@]}"; do echo "$k ${now[$k]}"; done | sort
  } >"$base"
  cat "$base"
  exit 0
fi

bad=0
for k in $(printf '%s\n' "${!now[@]}" | sed 's/ /:/' | sort); do
  key=${k/:/ }
  n=${now[$key]}
  ref=$(awk -v b="${key% *}" -v f="${key#* }" '$1 == b && $2 == f {print $3}' "$base")
  if [ -z "$ref" ]; then
    echo "$key: $n instructions per round trip (no baseline)"
    bad=1
    continue
  fi
  pct=$(( (n - ref) * 100 / ref ))
  verdict=ok
  if [ "$n" -gt $(( ref * (100 + limit) / 100 )) ]; then
    verdict="FAILED: more than ${limit}% above the baseline"
    bad=1
  elif [ "$n" -lt $(( ref * (100 - limit) / 100 )) ]; then
    verdict="ok, more than ${limit}% below: bench/loop_cost_guard.sh --update keeps the gain"
  fi
  printf '%-20s %6d instructions per round trip (baseline %d, %+d%%): %s\n' \
    "$key" "$n" "$ref" "$pct" "$verdict"
done
exit "$bad"
