// SPDX-License-Identifier: BSD-3-Clause
// poll/unix/uring_poller_disabled.h
//
// What the unix backend sees of the io_uring loop poller when poll is built
// without it (no liburing needed: CMake `-DGOPOLL_IO_URING=OFF`, or liburing
// not found; Bazel `--define=poll_io_uring=off`): event loops run on epoll,
// no FD is ever on a ring (Of() is always null), so the ring members the
// backend calls behind Of() are never reached. Same names as
// poll/unix/uring_poller.h, so fd_unix.cc has one code path.
#ifndef POLL_UNIX_URING_POLLER_DISABLED_H_
#define POLL_UNIX_URING_POLLER_DISABLED_H_

#include <cstdint>

#include "absl/status/status.h"
#include "poll/internal/poll_desc.h"
#include "poll/internal/poller.h"
#include "poll/posix/async_call.h"

namespace gopoll {

struct UringOp {
  posix::AsyncCall call;
  bool done = false;
};

class IoUringLoopPoller final {
 public:
  // Why there is no io_uring loop in this build.
  static absl::Status Available() {
    return absl::UnimplementedError(
        "io_uring: poll was built without it (liburing, Debian liburing-dev)");
  }
  static IoUringLoopPoller* Of(internal::Poller*) { return nullptr; }
  static bool RingOnly(const internal::PollDesc&) { return false; }

  // Never called (no poller is an IoUringLoopPoller).
  void Activate(intptr_t, internal::PollDesc*) {}
  UringOp* NewOp(internal::Waiter*) { return nullptr; }
  void Submit(UringOp*) {}
  void Cancel(UringOp*) {}
  void Free(UringOp*) {}
};

}  // namespace gopoll

#endif  // POLL_UNIX_URING_POLLER_DISABLED_H_
