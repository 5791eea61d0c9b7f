#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Starts examples/echo_server on a free loopback port, drives 1,000
# connections through it with examples/echo_client (every byte checked),
# checks that an idle connection is closed by the server's idle deadline,
# then stops the server with SIGTERM.
set -euo pipefail
server=$1
client=$2
out=$(mktemp)
# The idle timeout must be long against a loaded machine (sanitizers, CI):
# a busy connection must never look idle.
"$server" --port=0 --idle_timeout=3s >"$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 100); do
  grep -q 'listening on' "$out" && break
  sleep 0.1
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out")
[ -n "$port" ] || { cat "$out"; echo "server did not start"; exit 1; }
"$client" --port="$port" --connections=1000 --concurrency=100 --bytes=4096
"$client" --port="$port" --idle_probe --timeout=20s
kill -TERM $pid
wait $pid
grep -q '^stopped$' "$out"
echo "PASS"
