// SPDX-License-Identifier: BSD-3-Clause
// poll/unix/epoll_poller.h
//
// The Linux readiness poller: one epoll instance per EpollPoller (created on
// first use), every descriptor registered once, edge-triggered, for
// EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLPRI, and an eventfd to interrupt a wait.
//
// Who runs epoll_wait: the blocked threads themselves (leader/followers,
// poll/internal/leader_followers.h). The leader hands readiness to the owners
// (one futex wake each) and, when its own descriptor becomes ready, returns at
// once (no wake-up at all). A Close or deadline that must wake the leader
// writes the eventfd.
//
// Events name their PollDesc through a slot index plus generation, so an
// event fetched just before Unregister can never reach a freed PollDesc.
//
// Failures never abort: a loop-owned poller whose epoll instance or eventfd
// cannot be opened says so (open_status()) and is not used for a loop; a
// failed epoll_wait other than EINTR is counted and retried after a pause.
#ifndef POLL_UNIX_EPOLL_POLLER_H_
#define POLL_UNIX_EPOLL_POLLER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "poll/internal/leader_followers.h"
#include "poll/internal/poller.h"

namespace gopoll {

class EpollPoller final : public internal::Poller {
 public:
  // The process-wide poller used by blocking callers. Never destroyed.
  static EpollPoller& Default();

  // `loop_owned`: the poller of an event loop, whose thread runs every
  // epoll_wait through Poll(); blocked callers only park (no leaders) until
  // Orphan(), after which they lead as on the process-wide poller.
  explicit EpollPoller(bool loop_owned = false);
  ~EpollPoller() override;
  // A loop-owned poller opens its epoll instance and eventfd at once: the
  // error if that failed (EMFILE, ENFILE, ENOMEM; it could never be
  // woken), else OK. OK for the process-wide poller (it opens lazily, and
  // Register reports).
  absl::Status open_status() const;
  // Failed epoll_wait calls (not EINTR), process-wide: each is retried
  // after a pause, never fatal.
  static std::atomic<uint64_t> wait_failures;

  absl::Status Register(intptr_t sysfd, internal::PollDesc* pd) override;
  // For a completion poller built on this one (poll/unix/uring_poller.h):
  // registers `sysfd` without interest in readiness (the descriptor is
  // checked for pollability like Register), until Activate(). Activate is
  // idempotent and cheap once done; an edge that came before it is not
  // lost (EPOLL_CTL_MOD reports the current readiness).
  absl::Status RegisterDormant(intptr_t sysfd, internal::PollDesc* pd);
  void Activate(intptr_t sysfd, internal::PollDesc* pd);
  // The epoll descriptor (-1 if it could not be created).
  int epoll_fd() const { return epfd_fast_.load(); }
  void Unregister(intptr_t sysfd, internal::PollDesc* pd) override;
  void Park(internal::ThreadWaiter& w) override;
  void Interrupt() override;
  void Poll(int timeout_ms) override { PollCount(timeout_ms); }
  // Poll, returning the number of events delivered; kMaxEvents means there
  // may be more.
  int PollCount(int timeout_ms);
  static constexpr int kMaxEvents = 128;
  const char* backend_name() const override { return "epoll"; }
  // TCP sockets (see the .cc for why not pipes or Unix sockets).
  bool ShortReadDrains(intptr_t sysfd, FdKind kind) override;

  // Registered descriptors (tests).
  size_t registered() const;

 protected:
  void OnOrphan() override;

 private:
  struct Slot {
    internal::PollDesc* pd = nullptr;
    uint32_t gen = 0;
    bool active = true;  // false: RegisterDormant, not yet Activate'd
  };
  absl::Status RegisterWith(intptr_t sysfd, internal::PollDesc* pd,
                            bool dormant);
  absl::Status EnsureOpen() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Delivers one batch of events; `self` is the leading thread's waiter
  // (null for a loop's Poll).
  void Dispatch(const void* events, int n, internal::ThreadWaiter* self);

  internal::LeaderFollowers lf_;  // blocked callers

  mutable absl::Mutex mu_;
  int epfd_ ABSL_GUARDED_BY(mu_) = -1;
  int evfd_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Status open_status_ ABSL_GUARDED_BY(mu_);

  // Registry of PollDescs by slot; readers (dispatch) share, writers
  // (Register/Unregister) exclude them.
  mutable absl::Mutex reg_mu_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(reg_mu_);
  std::vector<uint32_t> free_ ABSL_GUARDED_BY(reg_mu_);
  size_t registered_ ABSL_GUARDED_BY(reg_mu_) = 0;

  // Copies of epfd_/evfd_ for the leader's syscalls (set once, under mu_).
  std::atomic<int> epfd_fast_{-1};
  std::atomic<int> evfd_fast_{-1};
};

}  // namespace gopoll

#endif  // POLL_UNIX_EPOLL_POLLER_H_
