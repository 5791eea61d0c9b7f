#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tools/readme_block.sh NAME [FILE]: prints the fenced code block that
# follows the line `<!-- ci:NAME -->` in FILE (default: poll's README.md),
# without its fences. .ci/run's embedding legs run the README's own recipes
# this way, so the README cannot drift from what CI checks. Fails if the
# marker or its block is missing.
set -euo pipefail
name=${1:?usage: readme_block.sh NAME [FILE]}
file=${2:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/README.md"}
out=$(awk -v m="<!-- ci:$name -->" '
  $0 == m { found = 1; next }
  found == 1 && /^```/ { found = 2; next }
  found == 2 && /^```/ { exit }
  found == 2 { print }
' "$file")
if [ -z "$out" ]; then
  echo "readme_block.sh: no block marked ci:$name in $file" >&2
  exit 1
fi
printf '%s\n' "$out"
