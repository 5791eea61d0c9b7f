#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Accept at the descriptor limit must not spin: runs the loop's echo server
# under `prlimit --nofile=16`, connects 30 clients (more than fit), and
# prints the server's CPU use over 3 s (a server that retries accept4's
# EMFILE at once spins near a full core; like Go's net/http, the example
# backs off 5 ms..1 s with co_await Loop::Sleep: ~0%). The pass/fail form of
# this check is //examples:echo_accept_limit_test.
#   bash tools/reliability/accept_limit_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
port=${PORT:-$((20000 + RANDOM % 20000))}
./bazelw build //examples:echo_server >/dev/null 2>&1
bin=$(mktemp); install -m 755 bazel-bin/examples/echo_server "$bin"
log=$(mktemp)
prlimit --nofile=16 "$bin" --port="$port" >"$log" 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null || true; rm -f "$bin" "$log"' EXIT
sleep 0.5
python3 - "$port" <<'PY' &
import socket, sys, time
cs = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(30)]
time.sleep(5)
PY
cli=$!
sleep 1
t0=$(awk '{print $14+$15}' /proc/$srv/stat)
sleep 3
t1=$(awk '{print $14+$15}' /proc/$srv/stat)
wait $cli
pct=$(( (t1 - t0) * 100 / (3 * $(getconf CLK_TCK)) ))
echo "echo_server at the descriptor limit: ${pct}% of a core over 3 s ($(grep -c 'accept4' "$log") accept errors logged)"
