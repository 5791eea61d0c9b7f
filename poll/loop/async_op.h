// SPDX-License-Identifier: BSD-3-Clause
// poll/loop/async_op.h
//
// AsyncOp is one asynchronous FD operation of an event loop (internal; the
// API is AsyncFd in poll/loop/async_fd.h). It is the Waiter the loop
// publishes into the FD's PollDesc, so readiness, deadlines and Close reach
// it exactly as they reach a blocked thread:
//
//   Start (loop thread): take the direction's lock with TryRWLock (a second
//   operation in the same direction fails with IsBusy), then run one attempt
//   of the FD's own operation in a NonBlockingScope; if it would block,
//   publish the op (PollDesc::Arm) and return.
//   Wake (any thread): queue the op on its loop.
//   Resume (loop thread): consume readiness and attempt again, or finish
//   with the error Close/the deadline left (IsClosing, IsDeadlineExceeded).
//   Finish: release the lock, then deliver the result (callback or
//   coroutine) exactly once.
//
// FDs that are not pollable on the loop's poller (regular files, and every
// FD on backends without a readiness poller) run the blocking operation on
// a helper thread instead (Offload) and deliver on the loop thread; their
// buffers are copied, so an abandoned operation never writes into freed
// memory.
//
// An op owns a reference to its FD and its loop, so neither goes away while
// it is pending; it deletes itself after delivery.
#ifndef POLL_LOOP_ASYNC_OP_H_
#define POLL_LOOP_ASYNC_OP_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>

#include "absl/status/status.h"
#include "poll/fd.h"
#include "poll/internal/waiter.h"
#include "poll/loop/loop_core.h"
#include "poll/loop/op_pool.h"

namespace gopoll {

// "another read (write) is already pending on this FD"; code
// kFailedPrecondition. The loop allows one pending operation per direction
// per FD, like Go's one reader and one writer.
absl::Status ErrBusy(internal::Dir d);
bool IsBusy(const absl::Status& s);

// What an operation of a destroyed loop completes with (code kCancelled).
absl::Status ErrLoopDestroyed();

class AsyncOp : public internal::Waiter {
 public:
  AsyncOp(std::shared_ptr<LoopCore> core, std::shared_ptr<FD> fd,
          internal::Dir d);
  AsyncOp(const AsyncOp&) = delete;
  AsyncOp& operator=(const AsyncOp&) = delete;

  // Loop thread. Runs until the op finishes or waits. True if it finished
  // at once: the result is recorded, the lock released, nothing delivered
  // (the caller delivers, then deletes the op). False: the loop delivers
  // later and deletes the op.
  bool StartInline();
  // Any thread: starts the op on the loop thread (at once when called
  // there) and delivers from the loop's queue.
  void StartOnLoop();

  // Loop thread: the consumer is gone (a destroyed coroutine). The result
  // is never delivered; the op cleans up as soon as it can.
  void Abandon();

  void Wake() final;
  // Called by the loop for a queued op; `completion`: queued by the
  // completion of an in-flight backend operation (IOCP), not by the
  // PollDesc slot.
  void Resume(bool completion = false);
  // Shutdown: if the op waits in a PollDesc slot, takes it out and
  // delivers CancelledError. False if it was not there.
  bool CancelArmed();

  virtual ~AsyncOp();

  // One op per operation: their memory comes from OpPool (op_pool.h).
  static void* operator new(std::size_t size) {
    return op_pool::Allocate(size);
  }
  static void operator delete(void* p, std::size_t size) {
    op_pool::Free(p, size);
  }
  // Pool blocks have the default alignment: an over-aligned op would pick
  // this form and fail to compile rather than get misaligned memory.
  static void* operator new(std::size_t, std::align_val_t) = delete;

 protected:
  // The FD method's own argument checks (e.g. socket calls need kNet), made
  // before anything else: an error is the operation's result. (The loop's
  // operations make exactly their FD method's, poll/internal/fd_calls.h.)
  virtual absl::Status CheckArgs() { return absl::OkStatus(); }
  // One attempt, inside a NonBlockingScope; true when finished (result or
  // error recorded), false when it would block.
  virtual bool Attempt() = 0;
  // True if Attempt() may be called again to collect an in-flight
  // completion (completion backends run such ops without helper threads).
  virtual bool Resumable() const { return false; }
  // On the loop thread, just before the operation goes to a helper thread:
  // take what RunBlocking needs from the caller (the caller, e.g. a
  // coroutine frame holding the buffer, may be destroyed from then on).
  virtual void BeforeOffload() {}
  // The whole operation through the blocking FD API (on a helper thread).
  virtual void RunBlocking() = 0;
  // Records an error result.
  virtual void Fail(absl::Status s) = 0;
  // Hands the result over (loop thread, lock already released).
  virtual void Deliver() = 0;
  // Abandoned while in flight, and its completion came: a read keeps what
  // the kernel read into its (still valid) buffer with KeepRead, so that
  // the FD's next read returns it (poll/internal/unread_bytes.h).
  virtual void KeepAbandoned() {}
  void KeepRead(absl::Span<const char> buf);
  // Helper thread, in RunBlocking: the consumer was destroyed while the
  // operation ran there (a read then keeps its bytes with KeepUnread before
  // it releases the FD's lock; one abandoned after that drops them).
  bool AbandonedOffload() const { return abandoned_offload_.load(); }
  void KeepUnread(absl::Span<const char> buf);
  // Plain reads (AsyncRead / Read): the op may wait for readiness before
  // its first attempt when the FD's last read drained the buffer
  // (PollDesc::read_drained), and records after each finished attempt
  // whether it drained it (NoteRead: `got` bytes of `asked`).
  virtual bool WaitsFirstWhenDrained() const { return false; }
  void NoteRead(size_t asked, const absl::StatusOr<size_t>& got);

  FD& fd() { return *fd_; }
  LoopCore& core() { return *core_; }
  std::shared_ptr<LoopCore> core_ref() const { return core_; }

 private:
  enum class State { kNew, kArmed, kQueued, kOffloaded, kInFlight, kDone };
  // Wakes the op when its in-flight backend operation completes.
  struct Completion final : internal::Waiter {
    explicit Completion(AsyncOp* o) : op(o) {}
    void Wake() override;
    AsyncOp* op;
    bool fired = false;  // queued (loop thread only: completions come there)
    bool ran = false;    // its queue entry ran (ResumeInFlight(true))
  };
  void ResumeInFlight(bool completion);
  // In flight: publishes the op in its PollDesc slot, which from now on
  // brings only deadlines and Close (the backend waits for the data
  // itself). Readiness found there is dropped, never taken for a wake:
  // an op in flight must always be reachable. The error state otherwise.
  absl::Status WatchSlot();
  bool Offloads() const;
  // Attempts until finished (true) or armed (false).
  bool Step();
  void Release();
  // With the own direction locked: locks the other one too (FDs whose
  // loop operations run one at a time); false (failed, released) if busy.
  bool LockOtherDirection();
  // TryRWLock / UnlockRW of a direction, counted in the FD's loop_locks_.
  internal::FdLockResult LockDir(bool read);
  void UnlockDir(bool read);
  // Release + Deliver (unless abandoned) + delete.
  void FinishAndDelete();

  friend class LoopCore;  // the intrusive list of armed ops below

  std::shared_ptr<LoopCore> core_;
  std::shared_ptr<FD> fd_;
  const internal::Dir dir_;
  // LoopCore's list of armed ops (loop thread only).
  AsyncOp* armed_prev_ = nullptr;
  AsyncOp* armed_next_ = nullptr;
  bool in_armed_list_ = false;
  State state_ = State::kNew;
  bool locked_ = false;
  bool other_locked_ = false;  // LockOtherDirection
  bool abandoned_ = false;
  // Abandoned while a helper thread runs the operation (Abandon sets it;
  // the helper thread reads it, under the FD's lock: AbandonedOffload).
  std::atomic<bool> abandoned_offload_{false};
  bool deliver_from_loop_ = false;  // StartOnLoop: deliver when finished
  // In flight (completion backends): the backend's operation, whether the
  // op also waits in the PollDesc slot (deadline/Close), and whether it was
  // cancelled.
  void* backend_op_ = nullptr;
  bool pd_armed_ = false;
  bool cancelled_ = false;
  // Why it was cancelled (handed to the backend when collecting).
  absl::Status cancel_reason_;
  Completion completion_{this};
};

}  // namespace gopoll

#endif  // POLL_LOOP_ASYNC_OP_H_
