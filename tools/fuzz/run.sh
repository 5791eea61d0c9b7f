#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tools/fuzz/run.sh [SECONDS] [LIBFUZZER_FLAGS...]: builds fd_ops_fuzzer
# (build.sh) and fuzzes for SECONDS (default 60), starting from the checked-in
# corpus (tools/fuzz/corpus, read only: new inputs go to a scratch copy).
# Exits non-zero on a crash, a failed check, a leak or a hang (an input
# running over 10 s); the failing input is saved as crash-*/timeout-* in
# FUZZ_ARTIFACTS (default: the scratch directory) and the path printed.
# Reproduce: build-fuzz/fd_ops_fuzzer <that file> (FUZZ_TRACE=1 prints
# the steps).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-60}"
shift || true
bin=$(tools/fuzz/build.sh)
work=$(mktemp -d "${TMPDIR:-/tmp}/poll-fuzz.XXXXXX")
art="${FUZZ_ARTIFACTS:-$work}"
mkdir -p "$work/corpus" "$art"
echo "fuzz: $bin for ${secs}s; scratch $work"
rc=0
# -rss_limit_mb: ASan's shadow plus the loop's threads stay near 400 MB.
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$art/" "$@" \
  "$work/corpus" tools/fuzz/corpus 2>"$work/fuzz.log" || rc=$?
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|stat::|CHECK FAILED|ERROR|SUMMARY' "$work/fuzz.log" || true
if [ "$rc" -ne 0 ]; then
  echo "--- fuzz: failed (exit $rc); last lines of $work/fuzz.log"
  tail -40 "$work/fuzz.log"
  ls "$art"/crash-* "$art"/timeout-* "$art"/leak-* "$art"/oom-* 2>/dev/null || true
  exit "$rc"
fi
rm -rf "$work"
