#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# User-space instructions per loop ping-pong round trip, per form, counted
# by callgrind (valgrind, from Debian): the difference between runs of
# 20,000 and 120,000 round trips, divided by 100,000, so setup and teardown
# drop out. Environment passes through (GOPOLL_LOOP_BACKEND=... chooses a
# loop backend where there are several). LOOP_COST_ROUNDS="A B" sets the two
# round counts (default "20000 120000").
#
#   bash bench/loop_cost.sh [FORM...]
#   # default: raw_epoll raw_io_uring callback coroutine
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || {
  echo "needs valgrind: apt-get install valgrind" >&2
  exit 1
}
./bazelw build -c opt //bench:loop_cost >/dev/null 2>&1
bin=bazel-bin/bench/loop_cost
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() {  # count FORM ROUNDS -> total instructions
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$bin" "$1" "$2" \
    2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  sed -nE 's/^summary: ([0-9]+).*/\1/p' "$tmp/cg"
}
read -r r1 r2 <<<"${LOOP_COST_ROUNDS:-20000 120000}"
forms=("$@")
[ ${#forms[@]} -gt 0 ] || forms=(raw_epoll raw_io_uring callback coroutine)
for f in "${forms[@]}"; do
  a=$(count "$f" "$r1")
  b=$(count "$f" "$r2")
  echo "$f: $(((b - a) / (r2 - r1))) instructions per round trip"
done
