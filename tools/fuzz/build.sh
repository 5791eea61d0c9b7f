#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tools/fuzz/build.sh [OUT_DIR]: builds the libFuzzer target fd_ops_fuzzer
# with clang-14 (-fsanitize=fuzzer,address,undefined) from the library's
# sources (poll/*.cc, poll/internal, poll/unix, poll/posix, poll/loop: the Linux
# backend, epoll and the io_uring loop) against Debian's libabsl-dev, outside
# Bazel. Incremental: an object is rebuilt when its source or any header is
# newer. Prints the binary's path. Needs the packages below (installed when run
# as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
tools/ensure_packages.sh clang-14 libclang-rt-14-dev libabsl-dev liburing-dev pkg-config >&2

out="${1:-$root/build-fuzz}"
mkdir -p "$out/obj" "$out/include/poll"
# FD's header includes "poll/backend_state.h": the epoll backend's (Bazel
# maps it with include_prefix, CMake copies it the same way).
cp -p poll/unix/backend_state.h "$out/include/poll/backend_state.h"

cxx=clang++-14
absl_pc=(absl_base absl_status absl_statusor absl_strings absl_cord
  absl_synchronization absl_time absl_flat_hash_set absl_any_invocable
  absl_function_ref absl_span absl_inlined_vector)
read -ra absl_cflags <<<"$(pkg-config --cflags "${absl_pc[@]}")"
read -ra absl_libs <<<"$(pkg-config --libs "${absl_pc[@]}")"
# Without UBSan's vptr check: it reads the object through a pipe it opens
# (compiler-rt's IsAccessibleMemoryRange), and the target runs the library
# with no descriptor free (a loop created at RLIMIT_NOFILE), where that probe
# fails and reports a valid object as "invalid vptr". CI's ubsan leg runs the
# check over the test suites (those not at the descriptor limit).
san=(-fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=all)
cflags=(-std=c++20 -fsized-deallocation -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Werror
  -I"$root" -I"$out/include" "${absl_cflags[@]}")

srcs=(poll/*.cc poll/internal/*.cc poll/unix/*.cc poll/posix/*.cc poll/loop/*.cc tools/fuzz/fd_ops_fuzzer.cc)
# With the io_uring loop: not the stand-in of a build without liburing.
for i in "${!srcs[@]}"; do
  [ "${srcs[$i]}" = poll/unix/uring_poller_disabled.cc ] && unset 'srcs[i]'
done
srcs=("${srcs[@]}")
newest_header=$(find poll tools/fuzz -name '*.h' -printf '%T@\n' | sort -n | tail -1)
objs=()
todo=()
for s in "${srcs[@]}"; do
  o="$out/obj/$(echo "$s" | tr / _).o"
  objs+=("$o")
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] ||
    awk -v h="$newest_header" -v o="$(stat -c %Y "$o")" 'BEGIN{exit !(h > o)}'; then
    todo+=("$s")
  fi
done
export out cxx
if [ ${#todo[@]} -gt 0 ]; then
  echo "fuzz build: compiling ${#todo[@]} sources" >&2
  # The arrays go through the environment as strings. Coverage
  # instrumentation for the library only, less its coroutines: those (the
  # target's own, poll/loop/net_loop.cc's) make clang 14's sancov pass fail
  # ("Cannot represent a difference across sections"), and the target's
  # branches are not what the fuzzer should explore.
  CFLAGS_STR="${cflags[*]}" SAN_STR="${san[*]}" printf '%s\n' "${todo[@]}" |
    CFLAGS_STR="${cflags[*]}" SAN_STR="${san[*]}" xargs -P "${FUZZ_JOBS:-2}" -I{} \
      bash -c 'read -ra cflags <<<"$CFLAGS_STR"; read -ra san <<<"$SAN_STR";
        o="$out/obj/$(echo "$1" | tr / _).o";
        cov=(-fsanitize=fuzzer-no-link);
        case "$1" in tools/fuzz/*|poll/loop/net_loop.cc) cov=() ;; esac;
        "$cxx" "${cflags[@]}" "${san[@]}" "${cov[@]}" -c "$1" -o "$o"' _ {}
fi
"$cxx" "${san[@]}" -fsanitize=fuzzer -o "$out/fd_ops_fuzzer" "${objs[@]}" \
  "${absl_libs[@]}" -luring -lpthread
echo "$out/fd_ops_fuzzer"
