#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Bazel's compiler/linker for --config=windows: the mingw-w64 g++ (posix
# threads). mingw appends ".exe" to extension-less link outputs while Bazel
# expects the exact name, so after a successful link OUT.exe is renamed OUT.
set -u
out=""
scan() {
  local prev=""
  for a in "$@"; do
    [ "$prev" = "-o" ] && out="$a"
    prev="$a"
  done
}
scan "$@"
for a in "$@"; do
  if [ "${a:0:1}" = "@" ] && [ -f "${a:1}" ]; then
    mapfile -t params <"${a:1}"
    scan "${params[@]}"
  fi
done
/usr/bin/x86_64-w64-mingw32-g++-posix "$@"
rc=$?
if [ $rc -eq 0 ] && [ -n "$out" ] && [ ! -e "$out" ] && [ -e "$out.exe" ]; then
  mv "$out.exe" "$out"
fi
exit $rc
