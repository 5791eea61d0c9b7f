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
]

FAULT_INJECTION_LINKOPTS = ["-Wl,--wrap=" + c for c in WRAPPED_CALLS]
