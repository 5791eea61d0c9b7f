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
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
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

// A write call that returned 0 bytes for a non-empty buffer (Go's
// io.ErrUnexpectedEOF in that place).
absl::Status ErrNoProgress(absl::string_view op) {
  return absl::DataLossError(
      absl::StrCat(op, ": wrote 0 bytes (unexpected end of file)"));
}

absl::Status CheckOffset(int64_t off, absl::string_view op) {
  if (off < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": negative offset ", off));
  }
  return absl::OkStatus();
}

template <typename Span>
absl::Status CheckBufs(absl::Span<const Span> bufs, std::string_view op) {
  for (const auto& b : bufs) {
    absl::Status s = CheckBuffer(b.data(), b.size(), op);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
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
  // On an event loop's thread, pending asynchronous operations of this FD
  // finish only when that thread runs them: do not wait for them there
  // (once the loop is gone, none are pending and Close waits as anywhere).
  internal::Poller* poller = pd_.poller();
  bool loop_thread =
      internal::IsCurrentLoopPoller(poller) && !poller->orphaned();
  Unref();
  // A pollable FD's operations all return promptly now: wait for the last
  // one so that the handle is really closed when Close returns. Blocking
  // operations cannot be interrupted, so Close does not wait for them.
  if (!blocking && !loop_thread) destroyed_.WaitForNotification();
  if (destroyed_.HasBeenNotified()) return close_status_;
  return absl::OkStatus();
}

absl::StatusOr<size_t> FD::Read(absl::Span<char> p) {
  POLL_RETURN_IF_ERROR(CheckBuffer(p.data(), p.size(), "read"));
  FdLock l(this, true, "read");
  if (!l.ok()) return l.status();
  if (p.empty()) return 0;
  if (p.size() > kMaxRW) p = p.subspan(0, kMaxRW);
  absl::StatusOr<size_t> n = WithOp(ReadUnreadFirst(p), "read");
  if (n.ok() && *n == 0 && zero_read_is_eof_) return ErrEof();
  return n;
}

namespace {
#ifdef _WIN32
constexpr int kMsgTruncFlag = 0x0100;  // MSG_TRUNC of ws2def.h (Vista on)
#else
constexpr int kMsgTruncFlag = MSG_TRUNC;
#endif
}  // namespace

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
  POLL_RETURN_IF_ERROR(CheckBuffer(p.data(), p.size(), "pread"));
  POLL_RETURN_IF_ERROR(CheckOffset(off, "pread"));
  // Pread does not move the offset, but it may wait for its direction like
  // Read (IOCP), and one direction has one waiter: take the read lock.
  FdLock l(this, true, "pread");
  if (!l.ok()) return l.status();
  if (p.empty()) return 0;
  if (p.size() > kMaxRW) p = p.subspan(0, kMaxRW);
  absl::StatusOr<size_t> n = WithOp(PreadImpl(p, off), "pread");
  if (n.ok() && *n == 0 && zero_read_is_eof_) return ErrEof();
  return n;
}

absl::StatusOr<size_t> FD::ReadV(absl::Span<const absl::Span<char>> bufs) {
  if (bufs.size() > kMaxIov) {
    return absl::InvalidArgumentError(absl::StrCat(
        "readv: too many buffers (", bufs.size(), " > ", kMaxIov, ")"));
  }
  POLL_RETURN_IF_ERROR(CheckBufs(bufs, "readv"));
  FdLock l(this, true, "readv");
  if (!l.ok()) return l.status();
  size_t total = 0;
  for (const auto& b : bufs) total += b.size();
  if (total == 0) return 0;
  absl::StatusOr<size_t> n = WithOp(
      ABSL_PREDICT_TRUE(unread_.empty()) ? ReadVImpl(bufs) : TakeUnread(bufs),
      "readv");
  if (n.ok() && *n == 0 && zero_read_is_eof_) return ErrEof();
  return n;
}

absl::StatusOr<size_t> FD::Write(absl::Span<const char> p, size_t* written) {
  if (written != nullptr) *written = 0;
  POLL_RETURN_IF_ERROR(CheckBuffer(p.data(), p.size(), "write"));
  FdLock l(this, false, "write");
  if (!l.ok()) return l.status();
  size_t done = 0;
  do {
    absl::Span<const char> chunk = p.subspan(done, kMaxRW);
    absl::StatusOr<size_t> n = WithOp(WriteImpl(chunk), "write");
    if (!n.ok()) return n.status();
    done += *n;
    if (written != nullptr) *written = done;
    if (*n == 0 && !chunk.empty()) {
      return ErrNoProgress("write");
    }
  } while (done < p.size());
  return done;
}

absl::StatusOr<size_t> FD::Pwrite(absl::Span<const char> p, int64_t off,
                                  size_t* written) {
  if (written != nullptr) *written = 0;
  POLL_RETURN_IF_ERROR(CheckBuffer(p.data(), p.size(), "pwrite"));
  POLL_RETURN_IF_ERROR(CheckOffset(off, "pwrite"));
  FdLock l(this, false, "pwrite");
  if (!l.ok()) return l.status();
  size_t done = 0;
  do {
    absl::Span<const char> chunk = p.subspan(done, kMaxRW);
    absl::StatusOr<size_t> n =
        WithOp(PwriteImpl(chunk, off + static_cast<int64_t>(done)), "pwrite");
    if (!n.ok()) return n.status();
    done += *n;
    if (written != nullptr) *written = done;
    if (*n == 0 && !chunk.empty()) {
      return ErrNoProgress("pwrite");
    }
  } while (done < p.size());
  return done;
}

absl::StatusOr<size_t> FD::WriteV(absl::Span<const absl::Span<const char>> bufs,
                                  size_t* written) {
  if (written != nullptr) *written = 0;
  POLL_RETURN_IF_ERROR(CheckBufs(bufs, "writev"));
  FdLock l(this, false, "writev");
  if (!l.ok()) return l.status();
  // Work on a copy whose first element shrinks as bytes go out (Go's
  // consume), handing at most kMaxIov buffers to each call.
  std::vector<absl::Span<const char>> rest;
  rest.reserve(bufs.size());
  for (const auto& b : bufs) {
    if (!b.empty()) rest.push_back(b);
  }
  size_t done = 0;
  size_t first = 0;
  while (first < rest.size()) {
    size_t count = std::min(kMaxIov, rest.size() - first);
    absl::StatusOr<size_t> n = WithOp(
        WriteVImpl(absl::MakeConstSpan(rest).subspan(first, count)), "writev");
    if (!n.ok()) return n.status();
    if (*n == 0) return ErrNoProgress("writev");
    done += *n;
    if (written != nullptr) *written = done;
    size_t left = *n;
    while (left > 0 && first < rest.size()) {
      if (left >= rest[first].size()) {
        left -= rest[first].size();
        ++first;
      } else {
        rest[first] = rest[first].subspan(left);
        left = 0;
      }
    }
  }
  return done;
}

namespace {
absl::Status CheckNet(FdKind kind, absl::string_view op) {
  if (kind == FdKind::kNet) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      op, ": not a socket (FD kind is ", std::string(FdKindName(kind)), ")"));
}
}  // namespace

absl::Status FD::CheckAccept() const { return CheckNet(kind_, "accept"); }

absl::Status FD::CheckConnect(const SockAddr& addr) const {
  POLL_RETURN_IF_ERROR(CheckNet(kind_, "connect"));
  if (addr.len == 0 || addr.len > sizeof(addr.storage)) {
    return absl::InvalidArgumentError("connect: empty or invalid address");
  }
  return absl::OkStatus();
}

absl::StatusOr<Accepted> FD::Accept() {
  POLL_RETURN_IF_ERROR(CheckAccept());
  FdLock l(this, true, "accept");
  if (!l.ok()) return l.status();
  return WithOp(AcceptImpl(), "accept");
}

absl::Status FD::Connect(const SockAddr& addr) {
  POLL_RETURN_IF_ERROR(CheckConnect(addr));
  FdLock l(this, false, "connect");
  if (!l.ok()) return l.status();
  return WithOp(ConnectImpl(addr), "connect");
}

absl::StatusOr<MsgResult> FD::ReadMsg(absl::Span<char> p, absl::Span<char> oob,
                                      int flags) {
  POLL_RETURN_IF_ERROR(CheckNet(kind_, "recvmsg"));
  POLL_RETURN_IF_ERROR(CheckBuffer(p.data(), p.size(), "recvmsg"));
  POLL_RETURN_IF_ERROR(CheckBuffer(oob.data(), oob.size(), "recvmsg"));
  FdLock l(this, true, "recvmsg");
  if (!l.ok()) return l.status();
  if (ABSL_PREDICT_FALSE(!unread_.empty())) {
    // Bytes kept from an abandoned loop read: no control data, no sender.
    const absl::Span<char> buf = p.subspan(0, kMaxRW);
    bool truncated = false;
    absl::StatusOr<size_t> n =
        TakeUnread(absl::MakeConstSpan(&buf, 1), &truncated);
    if (!n.ok()) return WithOp(n.status(), "recvmsg");
    MsgResult m;
    m.n = *n;
    if (truncated) m.flags = kMsgTruncFlag;
    return m;
  }
  return WithOp(ReadMsgImpl(p.subspan(0, kMaxRW), oob, flags), "recvmsg");
}

absl::StatusOr<size_t> FD::WriteMsg(absl::Span<const char> p,
                                    absl::Span<const char> oob,
                                    const SockAddr* to, int flags) {
  POLL_RETURN_IF_ERROR(CheckNet(kind_, "sendmsg"));
  POLL_RETURN_IF_ERROR(CheckBuffer(p.data(), p.size(), "sendmsg"));
  POLL_RETURN_IF_ERROR(CheckBuffer(oob.data(), oob.size(), "sendmsg"));
  FdLock l(this, false, "sendmsg");
  if (!l.ok()) return l.status();
  return WithOp(WriteMsgImpl(p.subspan(0, kMaxRW), oob, to, flags), "sendmsg");
}

absl::StatusOr<RecvFromResult> FD::RecvFrom(absl::Span<char> p, int flags) {
  POLL_RETURN_IF_ERROR(CheckNet(kind_, "recvfrom"));
  POLL_RETURN_IF_ERROR(CheckBuffer(p.data(), p.size(), "recvfrom"));
  FdLock l(this, true, "recvfrom");
  if (!l.ok()) return l.status();
  if (ABSL_PREDICT_FALSE(!unread_.empty())) {
    // Bytes kept from an abandoned loop read (poll/internal/unread_bytes.h):
    // their sender is not known.
    const absl::Span<char> buf = p.subspan(0, kMaxRW);
    absl::StatusOr<size_t> n = TakeUnread(absl::MakeConstSpan(&buf, 1));
    if (!n.ok()) return WithOp(n.status(), "recvfrom");
    RecvFromResult r;
    r.n = *n;
    return r;
  }
  return WithOp(RecvFromImpl(p.subspan(0, kMaxRW), flags), "recvfrom");
}

absl::StatusOr<size_t> FD::SendTo(absl::Span<const char> p, const SockAddr& to,
                                  int flags) {
  POLL_RETURN_IF_ERROR(CheckNet(kind_, "sendto"));
  POLL_RETURN_IF_ERROR(CheckBuffer(p.data(), p.size(), "sendto"));
  if (to.len == 0 || to.len > sizeof(to.storage)) {
    return absl::InvalidArgumentError("sendto: empty or invalid address");
  }
  FdLock l(this, false, "sendto");
  if (!l.ok()) return l.status();
  return WithOp(SendToImpl(p.subspan(0, kMaxRW), to, flags), "sendto");
}

absl::Status FD::Shutdown(int how) {
  POLL_RETURN_IF_ERROR(CheckNet(kind_, "shutdown"));
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
  return WithOp(SetBlockingImpl(), "setblocking");
}

absl::StatusOr<Sysfd> FD::Dup() {
  FdRef r(this, "dup");
  if (!r.ok()) return r.status();
  return WithOp(DupImpl(), "dup");
}

absl::Status FD::RawControl(absl::FunctionRef<void(Sysfd)> f) {
  FdRef r(this, "rawcontrol");
  if (!r.ok()) return r.status();
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
