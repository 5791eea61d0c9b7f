// SPDX-License-Identifier: BSD-3-Clause
// poll/unix/ring_poller.h
//
// RingLoopPoller: what the unix backend's FD (poll/unix/fd_unix.cc) needs of
// an event loop's completion ring, without liburing. The io_uring loop
// poller (poll/unix/uring_poller.h, part of //poll/loop) implements it; the
// FD backend only ever reaches it through an FD adopted by such a loop, so
// plain-FD programs (//poll, gopoll::poll) neither compile against nor link
// liburing. RingLoopPoller::Of() is null for every other poller (epoll, and
// every poller of a build without io_uring).
#ifndef POLL_UNIX_RING_POLLER_H_
#define POLL_UNIX_RING_POLLER_H_

#include <cstdint>

#include "poll/internal/poll_desc.h"
#include "poll/internal/poller.h"
#include "poll/internal/waiter.h"
#include "poll/posix/async_call.h"

namespace gopoll {

// One operation in the ring's hands (the NonBlockingScope's backend_op).
struct UringOp {
  posix::AsyncCall call;
  internal::Waiter* waiter =
      nullptr;  // woken (on the loop thread) at completion
  bool done = false;
  bool cancel_sent = false;
  // The poller's list of operations in flight.
  UringOp* prev = nullptr;
  UringOp* next = nullptr;
};

// backend_name() of the io_uring loop poller; one definition (in //poll,
// poll/unix/ring_poller.cc), so its address identifies the backend.
extern const char kIoUringBackendName[];

class RingLoopPoller : public internal::Poller {
 public:
  // This poller if `p` is an io_uring loop poller, else null.
  static RingLoopPoller* Of(internal::Poller* p) {
    return p != nullptr && p->backend_name() == kIoUringBackendName
               ? static_cast<RingLoopPoller*>(p)
               : nullptr;
  }
  // True if `pd` was registered ring-only (a regular file: no readiness).
  static bool RingOnly(const internal::PollDesc& pd) {
    return pd.poller_data == kRingOnlyData;
  }

  const char* backend_name() const final { return kIoUringBackendName; }

  // Readiness is about to be waited for on `sysfd` (any thread).
  virtual void Activate(intptr_t sysfd, internal::PollDesc* pd) = 0;
  // Loop thread. A new operation whose completion wakes `completion`;
  // Submit queues it (the call must be described); Cancel asks the ring to
  // cancel it (no-op once completed); Free after its completion.
  virtual UringOp* NewOp(internal::Waiter* completion) = 0;
  virtual void Submit(UringOp* op) = 0;
  virtual void Cancel(UringOp* op) = 0;
  virtual void Free(UringOp* op) = 0;

 protected:
  // PollDesc::poller_data of a ring-only FD (never an epoll slot index).
  static constexpr uint64_t kRingOnlyData = ~uint64_t{0};
};

}  // namespace gopoll

#endif  // POLL_UNIX_RING_POLLER_H_
