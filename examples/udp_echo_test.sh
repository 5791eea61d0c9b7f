#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Starts examples/udp_echo_server on a free loopback port, checks its echoes
# with a client written with plain sockets (udp_echo_check: 0 B to 64 KiB
# datagrams, every byte compared), then stops the server with SIGTERM.
set -euo pipefail
source "$(dirname "$0")/start_server.sh"
server=$1
check=$2
start_server "$server"
"$check" "$port"
kill -TERM $pid
wait $pid
grep -q '^stopped$' "$out"
echo "PASS"
