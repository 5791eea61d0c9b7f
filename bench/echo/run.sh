#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Echo throughput: the same load client (echo_load.c, one epoll thread)
# against each server in turn on this machine, at 1, 100 and 1,000
# connections with 64 B and 16 KiB messages. Servers: examples/echo_server
# (one gopoll::Loop, coroutines) on each loop backend this machine has,
# libuv (uv_echo.c) and Go (go_echo.go). Server pinned to CPU 1, client to
# CPU 0 (Go then runs with one P, like the one-thread loops).
# Writes one JSON object per run to OUT (default bench/echo/results.jsonl)
# and prints a table; bench/echo/plot.sh draws OUT.
#
#   bash bench/echo/run.sh [OUT]        # SECONDS=2 per run by default
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-bench/echo/results.jsonl}
secs=${SECONDS_PER_RUN:-2}
need=()
command -v go >/dev/null || need+=(golang-go)
[ -f /usr/include/uv.h ] || need+=(libuv1-dev)
command -v jq >/dev/null || need+=(jq)
command -v taskset >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "run as root, or: apt-get install ${need[*]}" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
cc -O2 -Wall bench/echo/echo_load.c -o "$tmp/echo_load"
cc -O2 -Wall bench/echo/uv_echo.c -luv -o "$tmp/uv_echo"
(cd bench/echo && go build -o "$tmp/go_echo" go_echo.go)
./bazelw build -c opt //examples:echo_server >/dev/null 2>&1
cp bazel-bin/examples/echo_server "$tmp/gopoll_echo"

# start NAME CMD...: starts a server on CPU 1 on a free port; sets port and
# server_pid.
start() {
  local name=$1
  shift
  taskset -c 1 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  server_pid=$!
  for _ in $(seq 100); do
    port=$(sed -nE 's/^listening on [0-9.]+:([0-9]+).*/\1/p' "$tmp/$name.out")
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "$name did not start: $(cat "$tmp/$name.err")" >&2
  exit 1
}
stop() {
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

servers=(gopoll-epoll)
# The loop's other backends, where the binary knows them.
if grep -q io_uring "$tmp/gopoll_echo"; then servers+=(gopoll-io_uring); fi
servers+=(libuv go)
: >"$out"
for size in 64 16384; do
  for conns in 1 100 1000; do
    for s in "${servers[@]}"; do
      case $s in
        gopoll-*) start "$s" env GOPOLL_LOOP_BACKEND="${s#gopoll-}" \
                    "$tmp/gopoll_echo" --port=0 --idle_timeout=inf ;;
        libuv) start "$s" "$tmp/uv_echo" 0 ;;
        go) start "$s" "$tmp/go_echo" 0 ;;
      esac
      taskset -c 0 "$tmp/echo_load" "$s" "$port" "$server_pid" "$conns" \
        "$size" "$secs" >>"$out"
      stop
    done
  done
done
printf '%-16s %6s %6s %12s %10s %14s\n' server conns size requests/s server_cpu requests/cpu_s
jq -r '[.server, .conns, .size, .rps, .server_cpu,
        (if .server_cpu > 0 then .rps / .server_cpu else 0 end)] |
       @tsv' "$out" |
  awk -F'\t' '{printf "%-16s %6d %6d %12.0f %10.2f %14.0f\n", $1, $2, $3, $4, $5, $6}'
