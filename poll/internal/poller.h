// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/poller.h
//
// The interface between the shared FD core and an OS poller. A Poller
// registers descriptors, reports their readiness to their PollDesc, and
// parks blocked threads (epoll). The IOCP backend's ports implement it too,
// as completion pollers: nothing to register, no readiness; they park
// blocked threads and dequeue completions.
// plan9_stub has no Poller: its FDs never wait in PollDesc::Wait.
#ifndef POLL_INTERNAL_POLLER_H_
#define POLL_INTERNAL_POLLER_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "poll/errors.h"
#include "poll/internal/waiter.h"
#include "poll/loop_backend.h"

namespace gopoll::internal {

class PollDesc;

class Poller {
 public:
  Poller();
  virtual ~Poller() = default;

  // A number no other Poller of this process has had or will have. Pollers
  // are told apart by it, never by address: a destroyed loop's poller and a
  // new one may share an address.
  uint64_t id() const { return id_; }

  // Starts watching OS descriptor `sysfd` for `pd` (edge-triggered, both
  // directions). An error means the descriptor cannot be polled (EPERM for
  // regular files on epoll); the FD then does plain blocking I/O.
  virtual absl::Status Register(intptr_t sysfd, PollDesc* pd) = 0;
  // Stops watching. After it returns no event for `pd` is delivered.
  virtual void Unregister(intptr_t sysfd, PollDesc* pd) = 0;

  // Blocks the calling thread until `w` has been woken, then consumes the
  // wake. The implementation may run the OS wait itself meanwhile.
  virtual void Park(ThreadWaiter& w) = 0;
  // Interrupts the OS wait of the thread currently leading it (called by
  // ThreadWaiter::Wake when its thread leads this poller).
  virtual void Interrupt() = 0;

  // Edge-triggered readiness pollers: true if a read of `sysfd` (a
  // descriptor of `kind` registered here) that returned fewer bytes than
  // it asked for left nothing behind, so that whatever comes next (data, a
  // FIN, a hang-up, an error) brings a new readiness edge. False (the
  // default) where a short read proves nothing: message and packet
  // boundaries, control data, or no readiness edges at all. Asked once per
  // descriptor, by an event loop's read (PollDesc::NoteLoopRead).
  virtual bool ShortReadDrains(intptr_t sysfd, FdKind kind) {
    (void)sysfd;
    (void)kind;
    return false;
  }

  // --- Event loops (pollers made by NewLoopPoller) ---------------------
  // Runs one OS wait on the calling thread, at most `timeout_ms` (-1: until
  // an event or Interrupt()), and delivers the readiness it finds. Only the
  // loop's thread calls it; until Orphan(), Park() of other threads never
  // runs the OS wait of such a poller, it waits for the loop thread to wake
  // it.
  virtual void Poll(int timeout_ms) { (void)timeout_ms; }
  // The loop that owned this poller is gone (LoopCore::Shutdown, after the
  // last loop round). FDs adopted by the loop may outlive it: from now on
  // the blocked threads of those FDs run the OS wait themselves
  // (leader/followers, as on the process-wide poller), so blocking calls,
  // deadlines and Close keep working. Poll() is not called any more.
  void Orphan() {
    orphaned_.store(true, std::memory_order_release);
    OnOrphan();
  }
  // True after Orphan().
  bool orphaned() const { return orphaned_.load(std::memory_order_acquire); }

  // True while a thread is inside a run of the owning loop (LoopRun below):
  // FD::Close waits for the loop's pending operations of an FD only then.
  bool running() const { return running_.load() > 0; }

  // The OS mechanism behind it ("epoll", "io_uring", "iocp"), for
  // Loop::backend_name().
  virtual const char* backend_name() const { return ""; }

 protected:
  // The backend's part of Orphan().
  virtual void OnOrphan() {}

 private:
  friend class LoopRun;
  const uint64_t id_;
  std::atomic<bool> orphaned_{false};
  std::atomic<int> running_{0};
};

// The calling thread runs the loop that owns `p` (null: a loop without a
// poller) for this object's lifetime: Loop::Run and RunUntilDone for the
// whole run, RunOnce for its turn, the loop's shutdown. Runs nest (a
// callback may run or destroy another loop). Counted in the poller
// (running()) and recorded for the thread (IsCurrentLoopPoller).
class LoopRun {
 public:
  explicit LoopRun(Poller* p);
  ~LoopRun();
  LoopRun(const LoopRun&) = delete;
  LoopRun& operator=(const LoopRun&) = delete;

 private:
  friend bool IsCurrentLoopPoller(const Poller* p);
  Poller* const p_;
  const LoopRun* const outer_;
};

// Whether the calling thread is inside a run of the loop that owns `p`
// (non-null; also when it is inside a nested run of another loop there).
// FD::Close does not wait for pending operations there: only this thread,
// once it returns to that loop, can finish them.
bool IsCurrentLoopPoller(const Poller* p);

// A poller owned by one event loop (see poll/loop/loop.h): on Linux an
// IoUringLoopPoller or a loop-owned EpollPoller (`backend`), an
// IocpLoopPoller (the loop's own completion port) on Windows, null on
// plan9_stub (its loops run blocking operations on helper threads).
// `ring_entries`: io_uring's submission queue size (0: the default; tests
// use small rings; above 32768: InvalidArgument on every backend). Linux:
// a ring that cannot be set up falls back to epoll; an error means no
// poller that could be woken could be made (epoll_create1 or eventfd
// failed: EMFILE, ENFILE, ENOMEM). Never aborts.
absl::StatusOr<std::unique_ptr<Poller>> NewLoopPoller(
    LoopBackend backend, unsigned ring_entries = 0);

// The largest ring_entries a loop takes (io_uring's own limit), on every
// backend; LoopCore::Create checks it before any backend is asked.
inline constexpr unsigned kMaxRingEntries = 32768;
// InvalidArgument if `ring_entries` is above kMaxRingEntries.
absl::Status CheckRingEntries(unsigned ring_entries);

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_POLLER_H_
