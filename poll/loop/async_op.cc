// SPDX-License-Identifier: BSD-3-Clause
#include "poll/loop/async_op.h"

#include <utility>

#include "absl/strings/cord.h"
#include "poll/internal/fd_access.h"
#include "poll/internal/perturb.h"
#include "poll/loop/offload.h"

namespace gopoll {
namespace {
constexpr absl::string_view kBusyUrl = "poll.error/busy";

// Why TryRWLock of direction `d` failed (`r` is not kOk).
absl::Status TryLockError(internal::FdLockResult r, internal::Dir d,
                          FdKind kind) {
  switch (r) {
    case internal::FdLockResult::kBusy:
      return ErrBusy(d);
    case internal::FdLockResult::kClosing:
      return ErrClosing(kind);
    case internal::FdLockResult::kTooManyRefs:
      return ErrTooManyRefs();
    case internal::FdLockResult::kOk:
      break;
  }
  return absl::InternalError("poll: TryRWLock succeeded");
}
}  // namespace

absl::Status ErrBusy(internal::Dir d) {
  absl::Status s(absl::StatusCode::kFailedPrecondition,
                 d == internal::Dir::kRead
                     ? "another read is already pending on this FD"
                     : "another write is already pending on this FD");
  s.SetPayload(kBusyUrl, absl::Cord("1"));
  return s;
}

bool IsBusy(const absl::Status& s) {
  return !s.ok() && s.GetPayload(kBusyUrl).has_value();
}

absl::Status ErrLoopDestroyed() {
  return absl::CancelledError("poll: the event loop was destroyed");
}

AsyncOp::AsyncOp(std::shared_ptr<LoopCore> core, std::shared_ptr<FD> fd,
                 internal::Dir d)
    : core_(std::move(core)), fd_(std::move(fd)), dir_(d) {}

AsyncOp::~AsyncOp() = default;

bool AsyncOp::Offloads() const {
  // E.g. not pollable on this loop's poller: the OS call would block the
  // loop thread.
  return core_->poller() == nullptr ||
         !internal::FdAccess::AsyncNative(*fd_, core_->poller(), Resumable());
}

void AsyncOp::Completion::Wake() {
  fired = true;
  op->core_->Enqueue(op, /*completion=*/true);
}

bool AsyncOp::StartInline() {
  if (absl::Status bad = CheckArgs(); !bad.ok()) {
    Fail(std::move(bad));
    return true;
  }
  if (core_->shut_down()) {
    // The loop is gone: nothing would ever run the operation or deliver it
    // (blocking calls of the FD still work; see loop.h).
    Fail(ErrLoopDestroyed());
    return true;
  }
  if (!core_->InLoop()) {
    // A coroutine awaiting this FD's operation from another loop's thread:
    // the op's state belongs to its own loop's thread.
    Fail(absl::FailedPreconditionError(
        "poll: an AsyncFd operation was awaited outside its loop's thread"));
    return true;
  }
  // Offloads() reads the FD's registration, which a Close on another
  // thread tears down with the last reference (Destroy): hold one.
  switch (fd_->mu_.Incref()) {
    case internal::FdLockResult::kOk:
      break;
    case internal::FdLockResult::kClosing:
    case internal::FdLockResult::kBusy:  // (Incref never reports it)
      Fail(ErrClosing(fd_->kind()));
      return true;
    case internal::FdLockResult::kTooManyRefs:
      Fail(ErrTooManyRefs());
      return true;
  }
  const bool offloads = Offloads();
  fd_->Unref();
  if (offloads) {
    state_ = State::kOffloaded;
    BeforeOffload();
    Offload([this] {
      RunBlocking();
      core_->Enqueue(this);
    });
    return false;
  }
  const internal::FdLockResult locked = LockDir(dir_ == internal::Dir::kRead);
  if (locked != internal::FdLockResult::kOk) {
    Fail(TryLockError(locked, dir_, fd_->kind()));
    return true;
  }
  locked_ = true;
  if (internal::FdAccess::OneLoopOpAtATime(*fd_) && !LockOtherDirection()) {
    return true;
  }
  internal::PollDesc& pd = internal::FdAccess::poll_desc(*fd_);
  if (WaitsFirstWhenDrained() && pd.read_drained()) {
    // The last read of this FD was ours and drained the buffer, on a
    // descriptor where nothing can be left behind without a new edge
    // (PollDesc::read_drained): wait for the edge (it may be here
    // already) instead of an attempt that could only fail with EAGAIN.
    absl::StatusOr<bool> ready = pd.Arm(dir_, fd_->kind(), this);
    if (!ready.ok()) {
      Fail(ready.status());
      Release();
      return true;
    }
    if (!*ready) {
      state_ = State::kArmed;
      core_->AddArmed(this);
      return false;
    }
  } else {
    // Otherwise one attempt first, as Go does: a short read proves nothing
    // after a hang-up reported in the same edge as the last data, at
    // message and packet boundaries, control data, TCP's urgent mark, or
    // on a descriptor shared with other code, and an edge that was
    // consumed with the data that came with it does not come again.
    absl::Status s = pd.Prepare(dir_, fd_->kind());
    if (!s.ok()) {
      Fail(s);
      Release();
      return true;
    }
  }
  if (Step()) {
    Release();
    return true;
  }
  return false;
}

void AsyncOp::StartOnLoop() {
  deliver_from_loop_ = true;
  if (core_->InLoop()) {
    // On the loop thread: start now (no user code runs in StartInline);
    // only the delivery is queued, so a callback never runs inside the call
    // that started its operation.
    if (StartInline()) {
      state_ = State::kDone;
      core_->Enqueue(this);
    }
    return;
  }
  core_->Enqueue(this);
}

bool AsyncOp::Step() {
  internal::PollDesc& pd = internal::FdAccess::poll_desc(*fd_);
  for (;;) {
    bool done;
    void* in_flight;
    {
      internal::NonBlockingScope nb;
      nb.resumable = Resumable();
      nb.completion = &completion_;
      nb.backend_op = std::exchange(backend_op_, nullptr);  // to collect
      if (cancelled_) nb.cancel_reason = cancel_reason_;
      done = Attempt();
      in_flight = nb.backend_op;
    }
    if (in_flight != nullptr) {
      // A completion backend took the operation: its completion wakes us;
      // the PollDesc slot still brings deadlines and Close (to cancel it).
      backend_op_ = in_flight;
      completion_.fired = false;
      completion_.ran = false;
      cancelled_ = false;
      state_ = State::kInFlight;
      core_->AddArmed(this);
      absl::Status s = WatchSlot();
      pd_armed_ = s.ok();
      if (!s.ok()) {
        internal::FdAccess::CancelAsync(*fd_, backend_op_);
        cancelled_ = true;
        cancel_reason_ = std::move(s);
      }
      return false;
    }
    if (done) return true;
    GOPOLL_PERTURB_POINT("asyncop.would_block");
    absl::StatusOr<bool> ready = pd.Arm(dir_, fd_->kind(), this);
    if (!ready.ok()) {
      Fail(ready.status());
      return true;
    }
    if (*ready) continue;
    state_ = State::kArmed;
    core_->AddArmed(this);
    return false;
  }
}

void AsyncOp::Wake() { core_->Enqueue(this); }

void AsyncOp::Resume(bool completion) {
  if (state_ == State::kInFlight) {
    ResumeInFlight(completion);
    return;
  }
  switch (state_) {
    case State::kNew:  // StartOnLoop
      if (StartInline()) FinishAndDelete();
      return;
    case State::kOffloaded:  // the helper thread is done
    case State::kDone:
      FinishAndDelete();
      return;
    case State::kQueued:
    case State::kArmed:
    case State::kInFlight:
      break;
  }
  // Woken out of the PollDesc slot: readiness, a deadline or Close.
  core_->RemoveArmed(this);
  state_ = State::kQueued;
  if (abandoned_) {
    Release();
    delete this;
    return;
  }
  if (core_->shut_down()) {
    Fail(ErrLoopDestroyed());
    FinishAndDelete();
    return;
  }
  internal::PollDesc& pd = internal::FdAccess::poll_desc(*fd_);
  GOPOLL_PERTURB_POINT("asyncop.resume");
  if (!pd.ConsumeReady(dir_)) {
    absl::Status s = pd.CheckErr(dir_, fd_->kind());
    if (!s.ok()) {
      Fail(s);
      FinishAndDelete();
      return;
    }
    // The deadline was extended after it fired: just try again.
  }
  if (Step()) FinishAndDelete();
}

void AsyncOp::ResumeInFlight(bool completion) {
  internal::PollDesc& pd = internal::FdAccess::poll_desc(*fd_);
  // Up to two queue entries wake an in-flight op: its completion and a wake
  // out of the PollDesc slot (deadline, Close). Whichever runs last
  // collects; the op must outlive both.
  if (!completion) {
    // Out of the PollDesc slot: a deadline or Close (cancel the operation),
    // or the deadline was extended meanwhile (watch the slot again).
    // A readiness edge woke it too (another reader of the descriptor may
    // have taken the data): the operation is still in flight.
    pd_armed_ = false;
    if (!completion_.fired) {
      absl::Status s = pd.CheckErr(dir_, fd_->kind());
      if (s.ok() && !abandoned_ && !core_->shut_down()) {
        s = WatchSlot();  // the error it found, if any, is the reason
        if (s.ok()) {
          pd_armed_ = true;
          return;
        }
      }
      if (!cancelled_) {
        internal::FdAccess::CancelAsync(*fd_, backend_op_);
        cancelled_ = true;
        cancel_reason_ = s.ok() ? ErrLoopDestroyed() : s;
      }
      return;  // the (aborted) completion comes next
    }
  } else {
    completion_.ran = true;
    if (pd_armed_) {
      if (!pd.Disarm(dir_, this)) return;  // its wake is on the way: wait
      pd_armed_ = false;
    }
  }
  // The completion's own entry is still queued (it was queued before this
  // slot wake ran): it collects, now that the slot is no longer armed.
  if (!completion_.ran) return;
  // Completed, and nothing else will wake the op: collect.
  core_->RemoveArmed(this);
  state_ = State::kQueued;
  if (abandoned_) {
    // (Abandon freed the backend's operation already, once it completed.)
    if (backend_op_ != nullptr) {
      internal::FdAccess::FreeAsync(*fd_, std::exchange(backend_op_, nullptr));
    }
    Release();
    delete this;
    return;
  }
  if (core_->shut_down()) {
    // The loop is being destroyed, but the completion's own result still
    // decides: a read the kernel completed before the cancel delivers its
    // bytes (dropping them lost data from the stream); a cancelled one
    // ends with the loop's CancelledError.
    cancelled_ = true;
    if (cancel_reason_.ok()) cancel_reason_ = ErrLoopDestroyed();
  }
  if (Step()) FinishAndDelete();
}

absl::Status AsyncOp::WatchSlot() {
  internal::PollDesc& pd = internal::FdAccess::poll_desc(*fd_);
  for (;;) {
    absl::StatusOr<bool> ready = pd.Arm(dir_, fd_->kind(), this);
    if (!ready.ok()) return ready.status();
    if (!*ready) return absl::OkStatus();
  }
}

void AsyncOp::Abandon() {
  abandoned_ = true;
  if (state_ == State::kOffloaded) abandoned_offload_.store(true);
  if (state_ == State::kInFlight) {
    // The kernel may still write into the (dying) caller's buffer: cancel
    // and wait here, on the loop thread, until the completion came.
    if (!cancelled_) {
      internal::FdAccess::CancelAsync(*fd_, backend_op_);
      cancelled_ = true;
    }
    while (!completion_.fired) core_->poller()->Poll(10);
    // The cancel may have lost the race: bytes the kernel read are kept
    // for the FD's next read, never dropped (the buffer is still alive
    // here; the lock is still held).
    KeepAbandoned();
    // Freed now, while the FD still has its poller: the Release below may
    // drop the FD's last reference (a Close came first), and then nothing
    // would find the backend to free the operation or to close the
    // connection an abandoned accept took.
    internal::FdAccess::FreeAsync(*fd_, std::exchange(backend_op_, nullptr));
    // The kernel is done with it: the FD is free for the next operation at
    // once (one may start in this very turn, as async_fd.h promises).
    // Leave the slot first (a wake already taken out of it is on its way).
    if (pd_armed_ && internal::FdAccess::poll_desc(*fd_).Disarm(dir_, this)) {
      pd_armed_ = false;
    }
    Release();
    return;  // the queued completion (and any slot wake) delete the op
  }
  if (state_ == State::kArmed &&
      internal::FdAccess::poll_desc(*fd_).Disarm(dir_, this)) {
    core_->RemoveArmed(this);
    Release();
    delete this;
  }
  // Otherwise a Wake is queued or on its way (or a helper thread runs the
  // operation): Resume deletes the op without delivering.
}

bool AsyncOp::CancelArmed() {
  if (state_ == State::kInFlight) {
    // Shutdown: the completion comes (the loop keeps polling) and is
    // delivered as CancelledError.
    if (!cancelled_) {
      internal::FdAccess::CancelAsync(*fd_, backend_op_);
      cancelled_ = true;
    }
    return false;
  }
  if (state_ != State::kArmed ||
      !internal::FdAccess::poll_desc(*fd_).Disarm(dir_, this)) {
    return false;
  }
  core_->RemoveArmed(this);
  Fail(ErrLoopDestroyed());
  FinishAndDelete();
  return true;
}

void AsyncOp::NoteRead(size_t asked, const absl::StatusOr<size_t>& got) {
  internal::FdAccess::poll_desc(*fd_).NoteLoopRead(
      fd_->sysfd(), fd_->kind(), got.ok() && *got > 0 && *got < asked);
}

void AsyncOp::KeepUnread(absl::Span<const char> buf) {
  internal::FdAccess::KeepUnread(*fd_, buf);
}

void AsyncOp::KeepRead(absl::Span<const char> buf) {
  internal::FdAccess::KeepAbandonedRead(*fd_, backend_op_, buf);
}

bool AsyncOp::LockOtherDirection() {
  // A regular file on the io_uring ring: its reads and writes share the
  // file position, which the ring's operations do not lock (read(2) and
  // write(2) do): one at a time, the second is busy.
  const bool other_is_read = dir_ != internal::Dir::kRead;
  const internal::FdLockResult r = LockDir(other_is_read);
  if (r == internal::FdLockResult::kOk) {
    other_locked_ = true;
    return true;
  }
  Release();
  Fail(TryLockError(
      r, other_is_read ? internal::Dir::kRead : internal::Dir::kWrite,
      fd_->kind()));
  return false;
}

void AsyncOp::Release() {
  if (other_locked_) {
    other_locked_ = false;
    UnlockDir(dir_ != internal::Dir::kRead);
  }
  if (!locked_) return;
  locked_ = false;
  UnlockDir(dir_ == internal::Dir::kRead);
}

internal::FdLockResult AsyncOp::LockDir(bool read) {
  // Counted first: a Close that marks the FD after this lock is taken sees
  // the count and does not wait for the loop (FD::Close).
  fd_->loop_locks_.fetch_add(1);
  const internal::FdLockResult r = fd_->mu_.TryRWLock(read);
  if (r != internal::FdLockResult::kOk) fd_->loop_locks_.fetch_sub(1);
  return r;
}

void AsyncOp::UnlockDir(bool read) {
  fd_->loop_locks_.fetch_sub(1);
  fd_->UnlockRW(read);
}

void AsyncOp::FinishAndDelete() {
  Release();
  state_ = State::kDone;
  if (!abandoned_) Deliver();
  delete this;
}

}  // namespace gopoll
