# SPDX-License-Identifier: BSD-3-Clause
"""Compiler options for poll's own code (not for third-party code).

The warning set (and -Werror) applies only when poll is built as the main
workspace: its .bazelrc sets --define=poll_warnings=strict. A workspace that
depends on poll does not read that file, so a newer compiler's new warnings
never break an embedder's build.
"""

POLL_COPTS = select({
    "//:strict_warnings": ["-Wall", "-Wextra", "-Werror"],
    "//conditions:default": [],
}) + select({
    "@platforms//os:windows": ["-Wno-cast-function-type"],
    "//conditions:default": [],
})
