#!/bin/bash
# --run_under runner of --config=windows: runs a Windows test or binary under
# Wine. The prefix is shared by all tests (WINEPREFIX from user.bazelrc) and
# tests run unsandboxed (TestRunner=standalone): a prefix shared across
# linux-sandbox PID namespaces is flaky. The wineserver itself is started by
# ./bazelw, outside Bazel: one spawned here would be SIGKILLed by Bazel's
# process-wrapper when this test ends, hanging every other test using it.
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
export WINEPREFIX="${WINEPREFIX:-$HOME/.cache/poll-wine}"
# gtest on Windows treats /a/b as relative: give it Wine's Z:\a\b instead.
if [ -n "${XML_OUTPUT_FILE:-}" ]; then
  export XML_OUTPUT_FILE="Z:${XML_OUTPUT_FILE//\//\\}"
fi
exec /usr/lib/wine/wine64 "$@"
