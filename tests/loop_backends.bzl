# SPDX-License-Identifier: BSD-3-Clause
"""Loop suites on both Linux loop backends."""

def loop_test(name, **kwargs):
    """A cc_test of the event loop, run on both Linux loop backends.

    `name` runs on the default backend (io_uring on Linux where the kernel
    allows it, poll/unix/uring_poller.h); `name + "_epoll"` runs the same
    test with GOPOLL_LOOP_BACKEND=epoll, on Linux's default backend only
    (plan9_stub and Windows have a single loop backend: the first target
    covers them).
    """
    native.cc_test(name = name, **kwargs)
    env = dict(kwargs.pop("env", {}))
    env["GOPOLL_LOOP_BACKEND"] = "epoll"
    compat = [
        c
        for c in kwargs.pop("target_compatible_with", [])
        if c != "@platforms//os:linux"
    ]
    native.cc_test(
        name = name + "_epoll",
        env = env,
        target_compatible_with = compat + select({
            "//poll:plan9_stub_backend": ["@platforms//:incompatible"],
            "//conditions:default": ["@platforms//os:linux"],
        }),
        **kwargs
    )
