#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# At the descriptor limit the echo server must not spin on accept: it runs
# under `prlimit --nofile=16`, 30 clients connect (more than fit), and over
# 2 s the server may log only a few failed accepts (it backs off 5 ms .. 1 s
# with co_await Loop::Sleep; a server that retries at once logs ~100,000 per
# second). Then the clients go away, and a new client is served again.
set -euo pipefail
source "$(dirname "$0")/start_server.sh"
server=$1
start_server prlimit --nofile=16 "$server"

fds=()
for _ in $(seq 30); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$port"
  fds+=("$fd")
done
for _ in $(seq 100); do  # the server reached the limit
  grep -q '^accept: ' "$out" && break
  sleep 0.05
done
grep -q '^accept: ' "$out" || { cat "$out"; echo "never hit the limit"; exit 1; }
before=$(grep -c '^accept: ' "$out")
sleep 2
after=$(grep -c '^accept: ' "$out")
echo "failed accepts logged in 2 s at the limit: $((after - before))"
if [ $((after - before)) -gt 50 ]; then
  echo "FAIL: the server retries accept without backing off"
  exit 1
fi

# Free the descriptors: the server serves a new client again.
for fd in "${fds[@]}"; do exec {fd}>&-; done
exec {c}<>"/dev/tcp/127.0.0.1/$port"
printf 'ping' >&"$c"
reply=""
IFS= read -r -t 20 -N 4 reply <&"$c" || true
exec {c}>&-
[ "$reply" = ping ] || { cat "$out"; echo "FAIL: no echo after the limit ($reply)"; exit 1; }
echo "PASS"
