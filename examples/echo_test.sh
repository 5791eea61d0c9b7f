#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Starts examples/echo_server on a free loopback port, drives 1,000
# connections through it with examples/echo_client (every byte checked),
# checks that an idle connection is closed by the server's idle deadline,
# then stops the server with SIGTERM.
set -euo pipefail
source "$(dirname "$0")/start_server.sh"
server=$1
client=$2
# The idle timeout must be long against a loaded machine (sanitizers, CI):
# a busy connection must never look idle.
start_server "$server" --idle_timeout=3s
"$client" --port="$port" --connections=1000 --concurrency=100 --bytes=4096
"$client" --port="$port" --idle_probe --timeout=20s
kill -TERM $pid
wait $pid
grep -q '^stopped$' "$out"
echo "PASS"
