// SPDX-License-Identifier: BSD-3-Clause
// poll/unix/uring_poller.h
//
// IoUringLoopPoller: an event loop's poller on io_uring (Linux), a
// completion poller in the shape of the IOCP loop poller
// (poll/windows/iocp.h): the loop's operations are submitted to the ring
// (FD::ExecIO under a resumable NonBlockingScope describes the call in a
// posix::AsyncCall, the poller turns it into an SQE) and stay in flight
// until their completion wakes the AsyncOp, which collects the result by
// running the same FD operation again (see poll/internal/poll_desc.h,
// NonBlockingScope). Deadlines and Close reach an in-flight operation
// through its PollDesc slot, as on IOCP; the loop then asks the ring to
// cancel it (IORING_OP_ASYNC_CANCEL). Its completion still comes exactly
// once: -ECANCELED (the FD operation reports the deadline or Close), or the
// real result when the cancel lost the race (-ENOENT/-EALREADY for the
// cancel; data the kernel read is delivered).
//
// The loop thread submits everything queued and waits for completions in
// one io_uring_submit_and_wait per loop turn.
//
// Thread model: any thread may enter the ring. It is set up without
// IORING_SETUP_SINGLE_ISSUER, DEFER_TASKRUN and COOP_TASKRUN, so whichever
// thread runs the loop now (Loop::Run on a new thread, ~Loop on another
// thread) submits to the same ring, cancels what is in flight there and
// waits for the real completions: the kernel posts them without help from
// the thread that submitted (the task work it queues to that thread
// interrupts whatever it is doing, and io-wq workers post their own). No
// completion is ever made up for an operation the kernel may still run,
// and the kernel never writes into a buffer after its operation was
// reported done. One consequence: a thread that exits has its
// io-wq work and poll-driven requests cancelled by the kernel
// (-ECANCELED, or -EINTR, without the I/O done); an -ECANCELED the loop
// did not ask for therefore means "not done" and the operation is
// submitted again (FD::ExecIO, poll/unix/fd_unix.cc).
//
// Resource exhaustion: a ring that cannot be set up (EMFILE, ENOMEM at the
// RLIMIT_MEMLOCK charge, EINVAL) makes NewLoopPoller fall back to epoll;
// a ring whose own epoll instance or eventfd cannot be opened is not
// created (nothing could wake it). A failed io_uring_enter other than
// EINTR/ETIME/EBUSY/EAGAIN is counted (wait_failures) and retried on the
// next turn after a pause, never fatal.
//
// Readiness is still needed on these FDs: by blocking calls of other
// threads (FD::Read on fd() of an AsyncFd), by the loop's operations that
// are not ring operations (Connect), and after the kernel refused to wait
// (-EAGAIN). For them every FD is registered, dormant, with an internal
// loop-owned EpollPoller, activated at the first readiness wait; the ring
// watches that epoll descriptor (a multishot poll), so its events and
// Interrupt() (its eventfd) end the loop's wait too. After Orphan() the
// threads blocked on those FDs lead the epoll wait themselves.
//
// A submission queue found full is flushed (io_uring_submit) before the
// next SQE, also for a cancel; a completion queue that overflowed (the
// kernel keeps the extra completions, IORING_FEAT_NODROP) is drained until
// its overflow flag clears: nothing is lost and -EBUSY never reaches users.
//
// Regular files, which epoll refuses, are taken by the ring alone
// ("ring-only": RingOnly(pd)): their loop reads and writes are ring
// operations too (at the file position), so deadlines and Close cancel them
// as any other, where the epoll loop can only hand them to helper threads.
// Nothing reports their readiness, and none is needed: the ring waits for
// the data itself (the descriptor is left without O_NONBLOCK, which would
// make the ring fail a page-cache miss with EAGAIN). Their operations are
// submitted with IOSQE_ASYNC: a file system that does not honour the
// ring's non-blocking first attempt (FUSE, NFS) would otherwise block the
// loop thread inside io_uring_enter; the kernel's worker that runs them
// instead is interrupted by the cancel.
#ifndef POLL_UNIX_URING_POLLER_H_
#define POLL_UNIX_URING_POLLER_H_

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "poll/internal/poll_desc.h"
#include "poll/internal/poller.h"
#include "poll/posix/async_call.h"
#include "poll/unix/epoll_poller.h"
#include "poll/unix/ring_poller.h"

namespace gopoll {

class IoUringLoopPoller final : public RingLoopPoller {
 public:
  static constexpr unsigned kDefaultEntries = 256;
  // io_uring's largest submission queue (IORING_MAX_ENTRIES).
  static constexpr unsigned kMaxEntries = internal::kMaxRingEntries;
  // Whether io_uring can be used at all (setup refused for good, opcodes
  // missing); a resource error of the probe is returned but not kept.
  static absl::Status Available();
  // A poller on a new ring of `entries` submission entries (0: the
  // default), or null and `why`: io_uring unavailable, `entries` above
  // kMaxEntries, the ring's setup failed, or its epoll/eventfd could not
  // be opened.
  static std::unique_ptr<IoUringLoopPoller> Create(unsigned entries,
                                                   absl::Status* why);
  ~IoUringLoopPoller() override;

  absl::Status Register(intptr_t sysfd, internal::PollDesc* pd) override;
  void Unregister(intptr_t sysfd, internal::PollDesc* pd) override;
  void Park(internal::ThreadWaiter& w) override { epoll_.Park(w); }
  void Interrupt() override { epoll_.Interrupt(); }
  void Poll(int timeout_ms) override;

  // RingLoopPoller (poll/unix/ring_poller.h).
  void Activate(intptr_t sysfd, internal::PollDesc* pd) override {
    epoll_.Activate(sysfd, pd);
  }
  UringOp* NewOp(internal::Waiter* completion) override;
  void Submit(UringOp* op) override;
  void Cancel(UringOp* op) override;
  void Free(UringOp* op) override;

  // Process-wide counters (tests): completion-queue overflows drained, full
  // submission queues flushed, failed io_uring_enter/submit calls retried,
  // and:
  static std::atomic<uint64_t> cq_overflows;
  static std::atomic<uint64_t> sq_full_flushes;
  static std::atomic<uint64_t> wait_failures;
  // Cancels that found their operation completing or completed
  // (-EALREADY/-ENOENT): the operation's own completion reports.
  static std::atomic<uint64_t> cancels_lost;

 protected:
  void OnOrphan() override { epoll_.Orphan(); }

 private:
  IoUringLoopPoller() : epoll_(/*loop_owned=*/true) {}
  io_uring_sqe* GetSqe();
  // Completes every completion posted in the queue now (no system call).
  void CollectPosted();
  // Collects every posted completion (draining an overflow).
  void Reap();
  void Complete(uint64_t data, int32_t res, uint32_t flags);
  void ArmEpoll();

  EpollPoller epoll_;
  io_uring ring_{};
  bool ring_ok_ = false;  // ring_ was set up (else it is never exited)
  bool epoll_armed_ = false;
  UringOp* inflight_ = nullptr;  // list head
};

}  // namespace gopoll

#endif  // POLL_UNIX_URING_POLLER_H_
