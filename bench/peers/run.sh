#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The event-loop ping-pong of poll beside its peers, back to back on this
# machine: the raw epoll loop and gopoll::Loop (callbacks, coroutines) from
# //bench:fd_vs_raw, libuv's callback loop (uv_pingpong.c) and Go's
# goroutines over os.Pipe (go_pingpong.go, GOMAXPROCS=1 and default).
# Same work everywhere: 1 byte there and back over two pipes, reads of up to
# 64 bytes. Needs golang-go and libuv1-dev (installed here if missing, as
# root).
#
#   bash bench/peers/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
command -v go >/dev/null || need+=(golang-go)
[ -f /usr/include/uv.h ] || need+=(libuv1-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "run as root, or: apt-get install ${need[*]}" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -Wall bench/peers/uv_pingpong.c -luv -o "$tmp/uv_pingpong"
(cd bench/peers && go build -o "$tmp/go_pingpong" go_pingpong.go)
./bazelw build -c opt //bench:fd_vs_raw >/dev/null 2>&1
for i in 1 2; do
  echo "--- round $i"
  bazel-bin/bench/fd_vs_raw --benchmark_filter=Loop 2>/dev/null |
    sed -E 's/\x1b\[[0-9;]*m//g' | grep -E '^Loop.*median' |
    sed -E 's|/min_time[^ ]*||' |
    awk '{printf "%s: %s %s per round trip\n", $1, $2, $3}'
  "$tmp/uv_pingpong"
  GOMAXPROCS=1 "$tmp/go_pingpong" | sed 's/goroutines/goroutines, GOMAXPROCS=1/'
  "$tmp/go_pingpong"
done
