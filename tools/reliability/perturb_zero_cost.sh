#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tools/reliability/perturb_zero_cost.sh: shows that the schedule-perturbation
# points (poll/internal/perturb.h) cost nothing in release builds. Builds the
# library's Linux objects (poll/*.cc, poll/internal, poll/unix, poll/posix,
# poll/loop) in opt mode (g++ -O2 -DNDEBUG, like bazel -c opt) twice against
# Debian's abseil:
#   A: the tree as it is (points in place, GOPOLL_PERTURB undefined);
#   B: the tree with every GOPOLL_PERTURB_POINT statement and the
#      include removed (line numbers kept) and without perturb.h/.cc;
# and compares each object's disassembly with relocations (objdump -dr)
# and section sizes. Exits 0 when all are identical. As a check that the
# comparison can fail, A is also built with -DGOPOLL_PERTURB and the
# objects that then differ are counted.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/ensure_packages.sh g++ binutils libabsl-dev >&2
work=$(mktemp -d "${TMPDIR:-/tmp}/perturb-zero-cost.XXXXXX")
trap 'rm -rf "$work"' EXIT

srcs=$(ls poll/*.cc poll/internal/*.cc poll/unix/*.cc poll/posix/*.cc poll/loop/*.cc)
for v in A B P; do
  mkdir -p "$work/$v/gen/poll"
  git ls-files -co --exclude-standard poll | tar cf - -T - | tar xf - -C "$work/$v"
  cp poll/unix/backend_state.h "$work/$v/gen/poll/"
done
# B: the points and their header gone, nothing else changed.
find "$work/B/poll" -name '*.cc' -o -name '*.h' | while read -r f; do
  sed -i -e 's/GOPOLL_PERTURB_POINT("[^"]*");//' \
    -e 's|^#include "poll/internal/perturb.h"$||' "$f"
done
rm "$work/B/poll/internal/perturb.h" "$work/B/poll/internal/perturb.cc"
if grep -rq --include="*.cc" --include="*.h" GOPOLL_PERTURB "$work/B/poll"; then
  echo "perturb_zero_cost: B still mentions GOPOLL_PERTURB" >&2
  exit 2
fi

flags=(-std=c++20 -O2 -DNDEBUG -fPIC -ffunction-sections -fdata-sections
  -Wall -Wextra -Werror)
build() {  # build VARIANT [EXTRA_FLAGS...]
  local v=$1
  shift
  (cd "$work/$v" && for s in $srcs; do
    [ -f "$s" ] || continue
    echo "$s"
  done | xargs -P 2 -I{} sh -c 'g++ "$@" -I. -Igen -c "$0" -o "$(echo "$0" | tr / _).o"' {} \
    "${flags[@]}" "$@")
}
build A
build B
build P -DGOPOLL_PERTURB

dump() { objdump -dr "$1" | tail -n +3; size -A "$1" | tail -n +3; }
same=0
differ=0
for s in $srcs; do
  o="$(echo "$s" | tr / _).o"
  [ -f "$work/B/$o" ] || continue
  if cmp -s <(dump "$work/A/$o") <(dump "$work/B/$o"); then
    same=$((same + 1))
  else
    differ=$((differ + 1))
    echo "DIFFERS: $o"
    diff <(dump "$work/A/$o") <(dump "$work/B/$o") | head -20
  fi
done
# perturb.o of A: no code, no data.
text=$(size -A "$work/A/poll_perturb.cc.o" | awk '$1 ~ /^\.(text|data|bss|rodata)/ {s += $2} END {print s + 0}')
pdiff=0
for s in $srcs; do
  o="$(echo "$s" | tr / _).o"
  [ -f "$work/P/$o" ] && [ -f "$work/B/$o" ] || continue
  cmp -s <(dump "$work/P/$o") <(dump "$work/B/$o") || pdiff=$((pdiff + 1))
done
echo "release objects identical with and without the points: $same, different: $differ"
echo "perturb.cc in release: $text bytes of code and data"
echo "(check: with -DGOPOLL_PERTURB $pdiff objects differ)"
[ "$differ" -eq 0 ] && [ "$text" -eq 0 ]
