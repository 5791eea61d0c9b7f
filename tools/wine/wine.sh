#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# --run_under runner of --config=windows: runs a Windows test or binary under
# Wine. The prefix is shared by all tests (WINEPREFIX from user.bazelrc) and
# tests run unsandboxed (TestRunner=standalone): a prefix shared across
# linux-sandbox PID namespaces is flaky. The wineserver itself is started by
# ./bazelw, outside Bazel: one spawned here would be SIGKILLed by Bazel's
# process-wrapper when this test ends, hanging every other test using it.
export WINEDEBUG=-all
# winedbg disabled: with it, a crashed program (unhandled exception) exits
# with status 0 after the backtrace, so Bazel reported a crashed test as
# PASSED (seen with a page fault in a gtest binary; a 3-line null-pointer
# write exits 0 with winedbg, 5 without). The crash line ("wine: Unhandled
# page fault on ... at address ...") is still printed.
export WINEDLLOVERRIDES="mscoree,mshtml=;winedbg.exe=d"
export WINEPREFIX="${WINEPREFIX:-$HOME/.cache/poll-wine}"
# gtest on Windows treats /a/b as relative: give it Wine's Z:\a\b instead.
if [ -n "${XML_OUTPUT_FILE:-}" ]; then
  export XML_OUTPUT_FILE="Z:${XML_OUTPUT_FILE//\//\\}"
fi
exec /usr/lib/wine/wine64 "$@"
