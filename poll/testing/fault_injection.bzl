# SPDX-License-Identifier: BSD-3-Clause
"""Linker options that route the library's system calls through
//poll/testing:fault_injection (test binaries only; see fault_injection.h).
A test using them must also set linkstatic = True: --wrap only redirects
references resolved in the binary's own link, not inside shared libraries."""

WRAPPED_CALLS = [
    "read",
    "write",
    "readv",
    "writev",
    "pread",
    "pwrite",
    "recvmsg",
    "sendmsg",
    "recvfrom",
    "send",
    "sendto",
    "accept4",
    "connect",
    "shutdown",
    "close",
    "poll",
    "epoll_wait",
    "epoll_create1",
    "eventfd",
    "io_uring_queue_init",
    "io_uring_submit",
    "io_uring_submit_and_wait",
    "io_uring_submit_and_wait_timeout",
    "io_uring_submit_and_get_events",
]

FAULT_INJECTION_LINKOPTS = ["-Wl,--wrap=" + c for c in WRAPPED_CALLS]
