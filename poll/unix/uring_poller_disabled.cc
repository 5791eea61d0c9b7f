// SPDX-License-Identifier: BSD-3-Clause
// The loop poller of a build without io_uring: always epoll (a request for
// io_uring falls back to epoll, as when the kernel refuses it).
#include "poll/unix/uring_poller_disabled.h"

#include <memory>

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
