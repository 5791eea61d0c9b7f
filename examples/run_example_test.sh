#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Runs an example binary and checks its exit status and the lines it prints.
set -euo pipefail
out=$("$1")
echo "$out"
grep -q 'timeout: yes' <<<"$out"
grep -q 'read: "hello"' <<<"$out"
grep -q 'closing: yes' <<<"$out"
