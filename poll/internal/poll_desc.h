// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/poll_desc.h
//
// PollDesc is the per-FD state that every backend shares (Go's pollDesc):
//   - a waiter slot per direction, holding nothing, "ready" (an edge arrived
//     and nobody consumed it) or the Waiter blocked on that direction;
//   - the read and write deadlines, armed on the shared TimerQueue, with
//     sequence numbers so that a timer fired for an old deadline is ignored;
//   - the closing flag and a poller error flag.
// Error precedence when an operation checks or wakes: closing, then an
// expired deadline, then a bare poller error event (reads only).
//
// Thread-safety: all methods may be called concurrently, except that at most
// one waiter per direction may wait at a time (FD's fdMutex guarantees it).
#ifndef POLL_INTERNAL_POLL_DESC_H_
#define POLL_INTERNAL_POLL_DESC_H_

#include <atomic>
#include <cstdint>

#include "absl/base/optimization.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "poll/errors.h"
#include "poll/internal/timer_queue.h"
#include "poll/internal/waiter.h"

namespace gopoll::internal {

class Poller;

enum class Dir { kRead = 0, kWrite = 1 };

// While a NonBlockingScope lives on a thread, PollDesc::Wait on that thread
// never blocks: it sets would_block() and returns a code-only kUnavailable
// status at once, which the FD operation returns. An event loop runs one
// attempt of an operation this way and then waits for readiness itself.
class NonBlockingScope {
 public:
  NonBlockingScope();
  ~NonBlockingScope();
  NonBlockingScope(const NonBlockingScope&) = delete;
  NonBlockingScope& operator=(const NonBlockingScope&) = delete;

  // True if the operation stopped because it would have to wait.
  bool would_block() const { return would_block_; }
  // The innermost scope of the calling thread, or null.
  static NonBlockingScope* Current();
  // Completion backends (IOCP): the operation was submitted and is still in
  // the kernel's hands. The backend records its in-flight operation here
  // and sets would_block; calling the same FD operation again in a scope
  // whose backend_op is set collects the result (after `completion` was
  // woken) instead of submitting anew. Only for callers that set
  // `resumable` (they call the operation again with the same arguments).
  void SetInFlight(void* op) {
    backend_op = op;
    would_block_ = true;
  }
  bool resumable = false;
  void* backend_op = nullptr;
  Waiter* completion = nullptr;
  // When collecting: why the caller cancelled the in-flight operation, as
  // seen then (OK if it did not). An aborted operation reports it if the
  // PollDesc has no error any more (the deadline was extended meanwhile).
  absl::Status cancel_reason;

 private:
  friend class PollDesc;
  bool would_block_ = false;
  NonBlockingScope* outer_;
};

class PollDesc {
 public:
  PollDesc();
  ~PollDesc();
  PollDesc(const PollDesc&) = delete;
  PollDesc& operator=(const PollDesc&) = delete;

  // Registers `sysfd` with `poller`. On success the descriptor is pollable:
  // Wait and deadlines work. On failure nothing changes.
  absl::Status Open(Poller* poller, intptr_t sysfd);
  // Makes the descriptor pollable without an OS readiness poller: deadlines
  // work and waiters are woken by deadlines and Close only (IOCP and
  // plan9_stub backends wait for their operations themselves).
  void OpenWithoutPoller();
  // Unregisters from the poller (if any). Call once, before the OS
  // descriptor is closed.
  void Close(intptr_t sysfd);
  // Undoes a successful Open when the FD's Init fails after it: unregisters
  // and makes the descriptor non-pollable again (no operation may run yet).
  void Unopen(intptr_t sysfd);
  bool pollable() const { return pollable_; }
  Poller* poller() const { return poller_; }
  // A word the poller may use to find its registration (epoll: the slot).
  uint64_t poller_data = 0;

  // Go's prepare: fails if the direction is closing/expired, and forgets a
  // stale "ready" (the caller is about to try the operation anyway). A
  // read also forgets the read-drained hint (below): it may leave bytes
  // behind that no new edge announces.
  absl::Status Prepare(Dir d, FdKind kind) {
    if (d == Dir::kRead) read_drained_.store(false, std::memory_order_relaxed);
    if (!pollable_) return absl::OkStatus();
    absl::Status s = CheckErr(d, kind);
    if (ABSL_PREDICT_FALSE(!s.ok())) return s;
    slot(d).store(kNil, std::memory_order_relaxed);
    return absl::OkStatus();
  }
  // Error state of a direction (closing > deadline > poller error), or OK.
  absl::Status CheckErr(Dir d, FdKind kind) const {
    // Inline: every operation checks, and almost always finds nothing.
    const uint32_t info = info_.load(std::memory_order_acquire);
    const uint32_t errs =
        kInfoClosing | (d == Dir::kRead ? kInfoReadExpired | kInfoEventErr
                                        : kInfoWriteExpired);
    if (ABSL_PREDICT_TRUE((info & errs) == 0)) return absl::OkStatus();
    return ErrFromInfo(info, d, kind);
  }
  // Blocks the calling thread until `d` is ready, the deadline passes or the
  // FD closes. OK means "ready: retry the operation".
  absl::Status Wait(Dir d, FdKind kind);

  // Non-blocking form for event loops and coroutines: returns true if the
  // direction is ready now (readiness consumed), false if `w` was published
  // and will get exactly one Wake(), or the error state.
  absl::StatusOr<bool> Arm(Dir d, FdKind kind, Waiter* w);
  // Takes `w` back out of the slot. True if it was still there (no Wake()
  // will come); false if a Wake() is on its way or done.
  bool Disarm(Dir d, Waiter* w);
  // After `w` was woken: consumes readiness (true) or says the wake came
  // from a deadline or Close (false; see CheckErr).
  bool ConsumeReady(Dir d);

  // The read shortcut of event loops on edge-triggered pollers (epoll):
  // after an event loop's read came back short on a descriptor whose
  // poller says a short read drains it (Poller::ShortReadDrains), the next
  // loop read of the descriptor may wait for the next edge instead of
  // spending a read(2) that can only fail with EAGAIN. Whatever arrives
  // after the short read (data, a FIN, a hang-up) brings a new edge, and an
  // edge that came before the next read starts waits in the slot as
  // "ready". Never after an edge that carried a hang-up, an error or
  // urgent data (`hangup` of NetpollReady: the edge that announced it may
  // have been consumed with the last bytes), nor on a descriptor shared
  // with other code (MarkShared). Every other read of the FD forgets the
  // hint (Prepare). Owned by whoever holds the read lock.
  //
  // After a loop read's attempt: records whether it drained the buffer.
  void NoteLoopRead(intptr_t sysfd, FdKind kind, bool short_read);
  // The next loop read may wait for an edge before its first attempt.
  bool read_drained() const {
    return read_drained_.load(std::memory_order_relaxed) &&
           (info_.load(std::memory_order_acquire) &
            (kInfoHangup | kInfoShared)) == 0;
  }
  // The descriptor is reachable by code outside this FD (Dup, RawControl,
  // SetBlocking): its bytes may be read behind the FD's back, so a short
  // read proves nothing from now on.
  void MarkShared() { info_.fetch_or(kInfoShared, std::memory_order_release); }

  // Called by the poller: readiness edges for either direction; `error_only`
  // means the event was a bare error (EPOLLERR alone); `hangup` that it
  // carried a hang-up, an error or urgent data (epoll: EPOLLRDHUP, EPOLLHUP,
  // EPOLLERR, EPOLLPRI), which ends the read shortcut for good. Returns the
  // waiters taken out of their slots; the caller must Wake() them.
  struct Woken {
    Waiter* r = nullptr;
    Waiter* w = nullptr;
  };
  Woken NetpollReady(bool read, bool write, bool error_only,
                     bool hangup = false);

  // Deadlines (Go's SetDeadline contract). InfiniteFuture() or absl::Time()
  // clears; a time not after now expires the direction at once and wakes
  // its waiter; a future time is armed on the shared TimerQueue.
  // ErrClosing after Evict() (also if not pollable), else ErrNoDeadline if
  // not pollable.
  absl::Status SetDeadline(absl::Time t, bool read, bool write, FdKind kind);

  // Close: marks closing, wakes both waiters, stops the deadline timers.
  // After it returns no timer callback runs for this PollDesc.
  void Evict();
  bool closing() const { return (info_.load() & kInfoClosing) != 0; }
  // For tests: the read deadline as armed (monotonic ns; 0 none, -1
  // expired).
  int64_t ReadDeadlineForTest();

 private:
  static absl::Status ErrFromInfo(uint32_t info, Dir d, FdKind kind);
  static constexpr uint32_t kInfoClosing = 1;
  static constexpr uint32_t kInfoEventErr = 2;
  static constexpr uint32_t kInfoReadExpired = 4;
  static constexpr uint32_t kInfoWriteExpired = 8;
  // Sticky: an edge carried a hang-up/error/urgent data; MarkShared.
  static constexpr uint32_t kInfoHangup = 16;
  static constexpr uint32_t kInfoShared = 32;
  // Poller::ShortReadDrains of the descriptor, asked once.
  static constexpr uint8_t kDrainsUnknown = 0;
  static constexpr uint8_t kDrainsNo = 1;
  static constexpr uint8_t kDrainsYes = 2;
  static constexpr uintptr_t kNil = 0;
  static constexpr uintptr_t kReady = 1;

  std::atomic<uintptr_t>& slot(Dir d) { return d == Dir::kRead ? rg_ : wg_; }
  // Go's netpollunblock: takes the waiter out (setting "ready" if ioready).
  Waiter* Unblock(Dir d, bool ioready);
  static void OnTimer(void* arg, uint64_t seq, Dir d);
  static void OnReadTimer(void* arg, uint64_t seq);
  static void OnWriteTimer(void* arg, uint64_t seq);

  std::atomic<uintptr_t> rg_{kNil};
  std::atomic<uintptr_t> wg_{kNil};
  // kInfo* bits. kInfoClosing is set only by Evict, under mu_ (it replaces
  // a guarded closing flag).
  std::atomic<uint32_t> info_{0};
  bool pollable_ = false;
  // The read shortcut (read_drained()): the last read of the FD was a loop
  // read that drained the buffer; and what the poller said of the
  // descriptor (kDrains*).
  std::atomic<bool> read_drained_{false};
  std::atomic<uint8_t> short_read_drains_{kDrainsUnknown};
  Poller* poller_ = nullptr;

  mutable absl::Mutex mu_;
  // Monotonic deadline in ns: 0 none, -1 expired, else armed.
  int64_t rd_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t wd_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rseq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t wseq_ ABSL_GUARDED_BY(mu_) = 0;
  Timer rt_;
  Timer wt_;
};

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_POLL_DESC_H_
