// SPDX-License-Identifier: BSD-3-Clause
// The loop poller of a build without io_uring (no liburing needed: CMake
// -DGOPOLL_IO_URING=OFF, or liburing not found; Bazel
// --define=poll_io_uring=off): always epoll (a request for io_uring falls
// back to epoll, as when the kernel refuses it). No FD is ever on a ring
// then (RingLoopPoller::Of is null for every poller).
#include <memory>

#include "absl/status/statusor.h"
#include "poll/internal/poller.h"
#include "poll/loop_backend.h"
#include "poll/unix/epoll_poller.h"

namespace gopoll {

absl::StatusOr<std::unique_ptr<internal::Poller>> internal::NewLoopPoller(
    LoopBackend, unsigned) {
  auto p = std::make_unique<EpollPoller>(/*loop_owned=*/true);
  absl::Status s = p->open_status();
  if (!s.ok()) return s;  // nothing could wake the loop
  return std::unique_ptr<internal::Poller>(std::move(p));
}

}  // namespace gopoll
