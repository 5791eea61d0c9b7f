#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tools/offline_bazelrc.sh: prints the Bazel flags that let a workspace which
# depends on poll (through poll_deps(), repositories.bzl) build offline on a
# machine where ./bazelw has run once:
#   --distdir: the orig tarballs ./bazelw fetched (poll_deps() pins them by
#     sha256; Bazel takes a file whose name matches a URL's, no download);
#   --override_repository for Bazel's own helper repositories, which Debian's
#     Bazel 4.2.3 would otherwise download: skylib and platforms from
#     Debian's packages, rules_cc/rules_java/remote_coverage_tools from
#     poll's third_party/bazel_stubs;
#   --disk_cache: the build-output cache ./bazelw uses, so the dependencies
#     poll's own builds compiled are not compiled again.
# The file holds this machine's absolute paths: keep it out of version
# control (README.md, "Use it from your project").
# Usage (examples/bazel_consumer): tools/offline_bazelrc.sh > offline.bazelrc
# ./bazelw puts the same lines into poll's own user.bazelrc.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="${POLL_DEPS_CACHE:-$HOME/.cache/poll-deps}"
stubs="$here/third_party/bazel_stubs"
cat <<RC
# Debian's /etc/bazel/bazelrc turns on sandbox debugging (noisy logs).
build --nosandbox_debug
build --disk_cache=~/.cache/bazel-disk
common --distdir=$cache/src
common --override_repository=bazel_skylib=/usr/share/bazel/tools/skylib
common --override_repository=platforms=/usr/share/bazel/tools/platforms
common --override_repository=rules_cc=$stubs/rules_cc
common --override_repository=rules_java=$stubs/rules_java
common --override_repository=remote_coverage_tools=$stubs/remote_coverage_tools
RC
