#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Starts examples/tls_echo_server (self-signed certificate) on a free
# loopback port, checks its echoes over 20 TLS connections at once with a
# client written with OpenSSL on plain sockets (tls_echo_check), then with
# the openssl command line client (s_client, the server closing it after
# its idle timeout), then stops the server with SIGTERM.
set -euo pipefail
source "$(dirname "$0")/start_server.sh"
server=$1
check=$2
start_server "$server" --idle_timeout=2s
"$check" "$port" 20
got=$(printf 'hello over tls\n' |
  timeout 60 openssl s_client -connect "127.0.0.1:$port" -quiet -ign_eof 2>/dev/null)
[ "$got" = "hello over tls" ] || { echo "s_client got: '$got'"; exit 1; }
kill -TERM $pid
wait $pid
grep -q '^stopped$' "$out"
echo "PASS"
