// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/leader_followers.h
//
// Leader/followers for the process-wide pollers whose OS wait is run by the
// blocked threads themselves (epoll_wait on Linux, GetQueuedCompletionStatus
// on Windows), instead of by a dedicated poller thread.
//
// The first thread that must wait becomes the leader and runs the OS wait;
// threads that must wait while a leader exists park on their own
// ThreadWaiter (followers, first come first served). The leader delivers
// what the OS reports, waking the owners of other events (one wake-up each)
// and only marking itself when an event is its own; once it is woken it
// returns at once and passes the leadership to the oldest follower (the only
// wake-up a hand-over costs, and only when somebody follows). A Wake() of
// the leading thread (deadline, Close, another thread's event) interrupts
// its OS wait through Poller::Interrupt().
#ifndef POLL_INTERNAL_LEADER_FOLLOWERS_H_
#define POLL_INTERNAL_LEADER_FOLLOWERS_H_

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "poll/internal/poller.h"
#include "poll/internal/waiter.h"

namespace gopoll::internal {

class LeaderFollowers {
 public:
  // Blocks until `w` has been woken and consumes the wake (Poller::Park).
  // While `w` leads, calls `wait_once()` until `w` is woken: one OS wait
  // and the delivery of what it found. `wait_once` must return soon after
  // `poller->Interrupt()`, and must MarkWoken() `w` instead of waking it.
  void Park(ThreadWaiter& w, Poller* poller,
            absl::FunctionRef<void()> wait_once);

  // Event loops' pollers: the loop's thread runs every OS wait, so no
  // blocked caller may lead; they all follow, and are woken for their own
  // events by the loop. Call before the first Park.
  void ReserveLeadership();
  // The loop is gone (Poller::Orphan): hands the leadership to the oldest
  // follower, if any; from then on blocked callers lead themselves.
  void ReleaseLeadership();

 private:
  // Runs the OS wait until `w` is woken, then passes the leadership on.
  void Lead(ThreadWaiter& w, Poller* poller,
            absl::FunctionRef<void()> wait_once);
  // Makes the oldest follower (if any) the leader and wakes it.
  void PromoteOldestLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes `w` out of the followers' queue if it is still there.
  void Unfollow(ThreadWaiter& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  ThreadWaiter* leader_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool reserved_ ABSL_GUARDED_BY(mu_) = false;  // ReserveLeadership
  ThreadWaiter* head_ ABSL_GUARDED_BY(mu_) = nullptr;
  ThreadWaiter* tail_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_LEADER_FOLLOWERS_H_
