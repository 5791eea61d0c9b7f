// SPDX-License-Identifier: BSD-3-Clause
// The backend-independent half of FD: locking, argument checks, Close,
// deadlines, EOF and write loops. The OS calls are in poll/<backend>/.
#include "poll/fd.h"

#ifndef _WIN32
#include <sys/socket.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "poll/internal/fd_calls.h"
#include "poll/internal/perturb.h"
#include "poll/internal/poller.h"

namespace gopoll {
namespace {

absl::Status LockStatus(internal::FdLockResult r, FdKind kind) {
  switch (r) {
    case internal::FdLockResult::kOk:
      return absl::OkStatus();
    case internal::FdLockResult::kClosing:
      return ErrClosing(kind);
    case internal::FdLockResult::kTooManyRefs:
      return ErrTooManyRefs();
    case internal::FdLockResult::kBusy:
      break;  // only TryRWLock, which FD does not use
  }
  return absl::InternalError("poll: bad lock result");
}

}  // namespace

// A reference on the FD for the duration of a call. The lock result is
// kept as is; a status is built only for a failure.
// `op` names the operation in the errors (WithOp).
class FdRef {
 public:
  FdRef(FD* fd, const char* op) : fd_(fd), op_(op), r_(fd->mu_.Incref()) {}
  ~FdRef() {
    if (ok()) fd_->Unref();
  }
  bool ok() const { return r_ == internal::FdLockResult::kOk; }
  absl::Status status() const {
    return WithOp(LockStatus(r_, fd_->kind_), op_);
  }

 private:
  FD* fd_;
  const char* op_;
  internal::FdLockResult r_;
};

// The read or write lock (plus a reference) for the duration of a call.
class FdLock {
 public:
  FdLock(FD* fd, bool read, const char* op)
      : fd_(fd), read_(read), op_(op), r_(fd->mu_.RWLock(read)) {}
  ~FdLock() {
    if (ok()) fd_->UnlockRW(read_);
  }
  bool ok() const { return r_ == internal::FdLockResult::kOk; }
  absl::Status status() const {
    return WithOp(LockStatus(r_, fd_->kind_), op_);
  }

 private:
  FD* fd_;
  bool read_;
  const char* op_;
  internal::FdLockResult r_;
};

#define POLL_RETURN_IF_ERROR(expr) \
  do {                             \
    absl::Status _st = (expr);     \
    if (!_st.ok()) return _st;     \
  } while (0)

FD::FD(Sysfd sysfd) : sysfd_(sysfd) {}

FD::~FD() {
  if (!mu_.IsClosed()) Close().IgnoreError();
  destroyed_.WaitForNotification();
}

absl::Status FD::Init(FdKind kind, bool pollable) {
  return InitChecked(kind, pollable, WaitStrategy::kAuto, nullptr);
}

absl::Status FD::Init(FdKind kind, bool pollable, WaitStrategy strategy) {
  return InitChecked(kind, pollable, strategy, nullptr);
}

absl::Status FD::Init(FdKind kind, internal::Poller* loop_poller) {
  return InitChecked(
      kind, true,
      loop_poller != nullptr ? WaitStrategy::kPoller : WaitStrategy::kAuto,
      loop_poller);
}

absl::Status FD::InitChecked(FdKind kind, bool pollable, WaitStrategy strategy,
                             internal::Poller* loop_poller) {
  if (mu_.IsClosed()) return ErrClosing(kind_, "init");
  if (sysfd_ == kInvalidSysfd) {
    return absl::InvalidArgumentError("poll: Init of an invalid handle");
  }
  if (initialized_) {
    return absl::FailedPreconditionError(
        "poll: Init of an FD that was already "
        "initialised (Init runs once)");
  }
  // All or nothing: a failed Init leaves the FD as it was (and may be
  // retried).
  const FdKind old_kind = kind_;
  const bool old_zero_read_is_eof = zero_read_is_eof_;
  kind_ = kind;
  GOPOLL_PERTURB_POINT("fd.init");
  absl::Status s = InitBackend(pollable, strategy, loop_poller);
  if (!s.ok()) {
    kind_ = old_kind;
    zero_read_is_eof_ = old_zero_read_is_eof;
    return s;
  }
  initialized_ = true;
  return s;
}

void FD::Unref() {
  if (mu_.Decref()) Destroy();
}

void FD::UnlockRW(bool read) {
  if (mu_.RWUnlock(read)) Destroy();
}

void FD::Destroy() {
  GOPOLL_PERTURB_POINT("close.destroy");
  pd_.Close(sysfd_);
  close_status_ = CloseSysfd();
  sysfd_ = kInvalidSysfd;
  destroyed_.Notify();
}

absl::Status FD::Close() {
  POLL_RETURN_IF_ERROR(
      WithOp(LockStatus(mu_.IncrefAndClose(), kind_), "close"));
  GOPOLL_PERTURB_POINT("close.marked");
  // Wake every blocked operation; they see closing and return.
  pd_.Evict();
  EvictBackend();
  GOPOLL_PERTURB_POINT("close.evicted");
  bool blocking = blocking_.load();
  // Inside a run of the FD's event loop (a callback or task of it), the
  // loop's pending operations of this FD finish only once this thread
  // returns to the loop: do not wait for them there (once the loop is gone,
  // none are pending and Close waits as anywhere).
  internal::Poller* poller = pd_.poller();
  bool loop_thread =
      internal::IsCurrentLoopPoller(poller) && !poller->orphaned();
  Unref();
  // A pollable FD's operations all return promptly now: wait for the last
  // one so that the handle is really closed when Close returns. Blocking
  // operations cannot be interrupted, so Close does not wait for them.
  if (blocking || loop_thread) {
    // (no wait)
  } else if (poller == nullptr) {
    destroyed_.WaitForNotification();
  } else {
    // An event loop's operation ends only when a thread runs the loop,
    // maybe this one after Close returns: wait while the loop runs, not
    // once no thread does (the loop's next run or its destruction then
    // releases the handle). The pauses only notice that case; the
    // condition must hold twice in a row (a loop operation counts itself a
    // moment before a lock attempt that fails once the FD is closed).
    absl::Duration pause = absl::ZeroDuration();
    int seen = 0;
    while (!destroyed_.WaitForNotificationWithTimeout(pause)) {
      const bool loop_holds = loop_locks_.load() > 0 || LoopRunsItsCalls();
      seen = loop_holds && !poller->running() ? seen + 1 : 0;
      if (seen == 2) break;
      pause =
          std::clamp(pause * 2, absl::Milliseconds(1), absl::Milliseconds(20));
    }
  }
  if (destroyed_.HasBeenNotified()) return close_status_;
  return absl::OkStatus();
}

// The operations that can wait are described in poll/internal/fd_calls.h,
// once for these methods and the event loop's forms of them.
using internal::FdCalls;

absl::Status FdCalls::LockError(FdLockResult r, FdKind kind) {
  return LockStatus(r, kind);
}

absl::Status FdCalls::CheckOffset(int64_t off, const char* op) {
  if (off < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": negative offset ", off));
  }
  return absl::OkStatus();
}

absl::Status FdCalls::CheckNet(FdKind kind, const char* op) {
  if (kind == FdKind::kNet) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      op, ": not a socket (FD kind is ", std::string(FdKindName(kind)), ")"));
}

absl::Status FdCalls::CheckAddr(const SockAddr& a, const char* op) {
  if (a.len == 0 || a.len > sizeof(a.storage)) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": empty or invalid address"));
  }
  return absl::OkStatus();
}

absl::Status FdCalls::ErrNoProgress(const char* op) {
  return absl::DataLossError(
      absl::StrCat(op, ": wrote 0 bytes (unexpected end of file)"));
}

absl::Status FdCalls::ErrTooManyBufs(size_t n) {
  return absl::InvalidArgumentError(
      absl::StrCat("readv: too many buffers (", n, " > ", kMaxIov, ")"));
}

namespace {
#ifdef _WIN32
constexpr int kMsgTruncFlag = 0x0100;  // MSG_TRUNC of ws2def.h (Vista on)
#else
constexpr int kMsgTruncFlag = MSG_TRUNC;
#endif
}  // namespace

FdCalls::ReadMsg::Result FdCalls::ReadMsg::Run(FD& fd) {
  if (ABSL_PREDICT_FALSE(!fd.unread_.empty())) {
    // Bytes kept from an abandoned loop read: no control data, no sender.
    const absl::Span<char> buf = p.subspan(0, kMaxRW);
    bool truncated = false;
    absl::StatusOr<size_t> n =
        fd.TakeUnread(absl::MakeConstSpan(&buf, 1), &truncated);
    if (!n.ok()) return n.status();
    MsgResult m;
    m.n = *n;
    if (truncated) m.flags = kMsgTruncFlag;
    return m;
  }
  return fd.ReadMsgImpl(p.subspan(0, kMaxRW), oob, flags);
}

FdCalls::RecvFrom::Result FdCalls::RecvFrom::Run(FD& fd) {
  if (ABSL_PREDICT_FALSE(!fd.unread_.empty())) {
    // Bytes kept from an abandoned loop read (poll/internal/unread_bytes.h):
    // their sender is not known.
    const absl::Span<char> buf = p.subspan(0, kMaxRW);
    absl::StatusOr<size_t> n = fd.TakeUnread(absl::MakeConstSpan(&buf, 1));
    if (!n.ok()) return n.status();
    RecvFromResult r;
    r.n = *n;
    return r;
  }
  return fd.RecvFromImpl(p.subspan(0, kMaxRW), flags);
}

absl::StatusOr<size_t> FD::Read(absl::Span<char> p) {
  FdCalls::Read c{p};
  return FdCalls::Blocking(*this, c);
}

absl::StatusOr<size_t> FD::TakeUnread(absl::Span<const absl::Span<char>> bufs,
                                      bool* truncated) {
  // As a read of the OS would: closing and an expired deadline come first.
  absl::Status s = pd_.CheckErr(internal::Dir::kRead, kind_);
  if (!s.ok()) return s;
  return unread_.Take(bufs, truncated);
}

absl::StatusOr<size_t> FD::ReadUnreadFirst(absl::Span<char> p) {
  if (ABSL_PREDICT_TRUE(unread_.empty())) return ReadImpl(p);
  return TakeUnread(absl::MakeConstSpan(&p, 1));
}

absl::StatusOr<size_t> FD::Pread(absl::Span<char> p, int64_t off) {
  FdCalls::Pread c{p, off};
  return FdCalls::Blocking(*this, c);
}

absl::StatusOr<size_t> FD::ReadV(absl::Span<const absl::Span<char>> bufs) {
  FdCalls::ReadV<absl::Span<const absl::Span<char>>> c{bufs};
  return FdCalls::Blocking(*this, c);
}

absl::StatusOr<size_t> FD::Write(absl::Span<const char> p, size_t* written) {
  FdCalls::Write c{p};
  absl::StatusOr<size_t> n = FdCalls::Blocking(*this, c);
  if (written != nullptr) *written = c.done;
  return n;
}

absl::StatusOr<size_t> FD::Pwrite(absl::Span<const char> p, int64_t off,
                                  size_t* written) {
  FdCalls::Pwrite c{p, off};
  absl::StatusOr<size_t> n = FdCalls::Blocking(*this, c);
  if (written != nullptr) *written = c.done;
  return n;
}

absl::StatusOr<size_t> FD::WriteV(absl::Span<const absl::Span<const char>> bufs,
                                  size_t* written) {
  FdCalls::WriteV<absl::Span<const absl::Span<const char>>> c{bufs};
  absl::StatusOr<size_t> n = FdCalls::Blocking(*this, c);
  if (written != nullptr) *written = c.done;
  return n;
}

absl::StatusOr<Accepted> FD::Accept() {
  FdCalls::Accept c;
  return FdCalls::Blocking(*this, c);
}

absl::Status FD::Connect(const SockAddr& addr) {
  FdCalls::Connect c{addr};
  return FdCalls::Blocking(*this, c);
}

absl::StatusOr<MsgResult> FD::ReadMsg(absl::Span<char> p, absl::Span<char> oob,
                                      int flags) {
  FdCalls::ReadMsg c{p, oob, flags};
  return FdCalls::Blocking(*this, c);
}

absl::StatusOr<size_t> FD::WriteMsg(absl::Span<const char> p,
                                    absl::Span<const char> oob,
                                    const SockAddr* to, int flags) {
  FdCalls::WriteMsg c = FdCalls::WriteMsg::Make(p, oob, to, flags);
  return FdCalls::Blocking(*this, c);
}

absl::StatusOr<RecvFromResult> FD::RecvFrom(absl::Span<char> p, int flags) {
  FdCalls::RecvFrom c{p, flags};
  return FdCalls::Blocking(*this, c);
}

absl::StatusOr<size_t> FD::SendTo(absl::Span<const char> p, const SockAddr& to,
                                  int flags) {
  FdCalls::SendTo c{p, to, flags};
  return FdCalls::Blocking(*this, c);
}

absl::Status FD::Shutdown(int how) {
  POLL_RETURN_IF_ERROR(FdCalls::CheckNet(kind_, "shutdown"));
  if (how < 0 || how > 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("shutdown: bad direction ", how));
  }
  FdRef r(this, "shutdown");
  if (!r.ok()) return r.status();
  return WithOp(ShutdownImpl(how), "shutdown");
}

absl::Status FD::Fsync() {
  FdRef r(this, "fsync");
  if (!r.ok()) return r.status();
  return WithOp(FsyncImpl(), "fsync");
}

absl::StatusOr<int64_t> FD::Seek(int64_t offset, int whence) {
  if (whence < 0 || whence > 2) return ErrBadWhence(whence);
  // Seek changes the offset reads and writes use: take both locks.
  FdLock rl(this, true, "seek");
  if (!rl.ok()) return rl.status();
  FdLock wl(this, false, "seek");
  if (!wl.ok()) return wl.status();
  if (ABSL_PREDICT_FALSE(!unread_.empty())) {
    // Bytes an abandoned read kept (poll/internal/unread_bytes.h) are
    // before the OS's position: relative to the reader's, and dropped.
    if (whence == SEEK_CUR) offset -= static_cast<int64_t>(unread_.size());
    absl::StatusOr<int64_t> r = SeekImpl(offset, whence);
    if (r.ok()) unread_.Clear();
    return WithOp(std::move(r), "seek");
  }
  return WithOp(SeekImpl(offset, whence), "seek");
}

absl::StatusOr<FileInfo> FD::Fstat() {
  FdRef r(this, "fstat");
  if (!r.ok()) return r.status();
  return WithOp(FstatImpl(), "fstat");
}

absl::Status FD::SetBlocking() {
  FdRef r(this, "setblocking");
  if (!r.ok()) return r.status();
  pd_.MarkShared();  // e.g. handed to a child process
  return WithOp(SetBlockingImpl(), "setblocking");
}

absl::StatusOr<Sysfd> FD::Dup() {
  FdRef r(this, "dup");
  if (!r.ok()) return r.status();
  pd_.MarkShared();  // its bytes may now be read elsewhere
  return WithOp(DupImpl(), "dup");
}

absl::Status FD::RawControl(absl::FunctionRef<void(Sysfd)> f) {
  FdRef r(this, "rawcontrol");
  if (!r.ok()) return r.status();
  pd_.MarkShared();  // `f` may read, dup or keep the descriptor
  f(sysfd_);
  return absl::OkStatus();
}

absl::Status FD::RawRead(absl::FunctionRef<bool(Sysfd)> f) {
  FdLock l(this, true, "rawread");
  if (!l.ok()) return l.status();
  return WithOp(RawIOImpl(internal::Dir::kRead, f), "rawread");
}

absl::Status FD::RawWrite(absl::FunctionRef<bool(Sysfd)> f) {
  FdLock l(this, false, "rawwrite");
  if (!l.ok()) return l.status();
  return WithOp(RawIOImpl(internal::Dir::kWrite, f), "rawwrite");
}

absl::Status FD::SetDeadline(absl::Time t) {
  return SetDeadlineImpl(t, true, true);
}
absl::Status FD::SetReadDeadline(absl::Time t) {
  return SetDeadlineImpl(t, true, false);
}
absl::Status FD::SetWriteDeadline(absl::Time t) {
  return SetDeadlineImpl(t, false, true);
}

absl::Status FD::SetDeadlineImpl(absl::Time t, bool read, bool write) {
  FdRef r(this, "setdeadline");
  if (!r.ok()) return r.status();
  POLL_RETURN_IF_ERROR(WithOp(initIO(), "setdeadline"));
  GOPOLL_PERTURB_POINT("fd.after_initio");
  return WithOp(pd_.SetDeadline(t, read, write, kind_), "setdeadline");
}

}  // namespace gopoll
