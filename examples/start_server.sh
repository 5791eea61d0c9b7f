# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the example tests: start_server CMD... runs the echo server
# (CMD with --port=0) in the background with its output in $out, stops it on
# exit, and sets $pid and $port once it prints "listening on HOST:PORT".
start_server() {
  out=$(mktemp)
  "$@" --port=0 >"$out" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
  for _ in $(seq 100); do
    grep -q 'listening on' "$out" && break
    sleep 0.1
  done
  port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out")
  [ -n "$port" ] || { cat "$out"; echo "server did not start"; exit 1; }
}
