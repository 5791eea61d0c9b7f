// SPDX-License-Identifier: BSD-3-Clause
// poll/loop_backend.h
//
// LoopBackend: which OS mechanism an event loop uses where there is a
// choice (Linux: io_uring or epoll). Chosen with LoopOptions::backend
// (poll/loop/loop.h); Loop::backend_name() says which one a loop got.
#ifndef POLL_LOOP_BACKEND_H_
#define POLL_LOOP_BACKEND_H_

// First of all includes: a clear #error below C++20.
// clang-format off
#include "poll/require_cxx20.h"
// clang-format on

namespace gopoll {

enum class LoopBackend {
  // io_uring where the kernel allows it, epoll otherwise; the environment
  // variable GOPOLL_LOOP_BACKEND=epoll|io_uring overrides this default.
  kDefault,
  kEpoll,
  // io_uring; epoll if io_uring is unavailable (ENOSYS, EPERM from
  // kernel.io_uring_disabled or seccomp, missing opcodes).
  kIoUring,
};

}  // namespace gopoll

#endif  // POLL_LOOP_BACKEND_H_
