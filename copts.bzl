"""Compiler options for poll's own code (not for third-party code)."""

POLL_COPTS = select({
    "@platforms//os:windows": ["-Wall", "-Wextra", "-Werror", "-Wno-cast-function-type"],
    "//conditions:default": ["-Wall", "-Wextra", "-Werror"],
})
