// SPDX-License-Identifier: BSD-3-Clause
// The epoll backend's part of FD. A pollable FD waits one of two ways,
// chosen at Init (WaitStrategy, poll/fd.h):
//   - kInterruptibleCall (the default for blocking callers): the blocking
//     call, interrupted by deadlines and Close (poll/posix/interruptible.h,
//     shared with plan9_stub); the PollDesc has no poller;
//   - kPoller (event loops, or on request): registered with the EpollPoller
//     and non-blocking; ExecIO retries after readiness.
// The system calls shared with other POSIX backends are in
// poll/posix/fd_posix.cc.
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "poll/fd.h"
#include "poll/internal/fd_access.h"
#include "poll/internal/perturb.h"
#include "poll/posix/async_call.h"
#include "poll/posix/interruptible.h"
#include "poll/posix/posix_calls.h"
#include "poll/unix/epoll_poller.h"
#include "poll/unix/ring_poller.h"

namespace gopoll {

namespace {
// The poller-less PollDesc marks the interruptible-call strategy (non-
// pollable FDs have none either; that strategy's runner serves them too).
bool Interruptible(const internal::PollDesc& pd) {
  return pd.poller() == nullptr;
}

// On an io_uring loop's FD readiness is watched only once somebody waits
// for it (poll/unix/ring_poller.h); call before the first wait.
void WantReadiness(internal::PollDesc& pd, Sysfd fd) {
  if (RingLoopPoller* ring = RingLoopPoller::Of(pd.poller())) {
    ring->Activate(fd, &pd);
  }
}

// `syscall` would block: waits for readiness of `d` (PollDesc::Wait). A
// ring-only FD (a regular file on an io_uring loop that someone made
// non-blocking) has nothing that reports readiness: EAGAIN, not a wait
// that only a deadline or Close would end.
absl::Status WaitReadiness(internal::PollDesc& pd, Sysfd fd, internal::Dir d,
                           FdKind kind, const char* syscall) {
  if (RingLoopPoller::RingOnly(pd)) return ErrnoError(syscall, EAGAIN);
  WantReadiness(pd, fd);
  return pd.Wait(d, kind);
}

// An event loop's operation on the ring (Go's contract as on IOCP, see
// poll/windows/fd_windows.cc): never waits here. Submits the call (its
// completion wakes nb.completion on the loop thread) or collects the
// operation the loop hands back after that completion.
absl::StatusOr<size_t> ExecOnRing(
    FD& fd, RingLoopPoller& ring, internal::NonBlockingScope& nb,
    internal::Dir d, const char* syscall,
    absl::FunctionRef<IoResult(void* ctx)> attempt) {
  internal::PollDesc& pd = internal::FdAccess::poll_desc(fd);
  for (;;) {
    auto* op = static_cast<UringOp*>(std::exchange(nb.backend_op, nullptr));
    if (op == nullptr) {
      absl::Status s = pd.Prepare(d, fd.kind());
      if (!s.ok()) return s;
      op = ring.NewOp(nb.completion);
      op->call.fd = static_cast<int>(fd.sysfd());
      op->call.never_inline = RingLoopPoller::RingOnly(pd);
      IoResult r = attempt(&op->call);
      if (op->call.op == posix::AsyncCall::Op::kNone) {
        // The hook answered without describing a call (a refusal such as
        // a stream's ESPIPE for pread): nothing to submit.
        ring.Free(op);
        if (r.err == 0) return static_cast<size_t>(r.n);
        return ErrnoError(syscall, static_cast<int>(r.err));
      }
      ring.Submit(op);
      nb.SetInFlight(op);
      return absl::Status(absl::StatusCode::kUnavailable, "");
    }
    // Its completion's result decides, even when a deadline or Close
    // cancelled it: a cancel that lost the race delivers the real result
    // (bytes the kernel read are never dropped).
    op->call.collect = true;
    const bool accept = op->call.op == posix::AsyncCall::Op::kAccept;
    IoResult r = attempt(&op->call);
    ring.Free(op);
    if (r.err == 0) return static_cast<size_t>(r.n);
    if (r.err == ECANCELED || r.err == EINTR) {
      absl::Status s = pd.CheckErr(d, fd.kind());
      if (!s.ok()) return s;
      // Cancelled for a deadline that was extended since: as on IOCP, the
      // reason seen when it was cancelled.
      if (!nb.cancel_reason.ok()) return nb.cancel_reason;
      continue;  // not cancelled by us (the ring changed threads): again
    }
    if (accept && r.err == ECONNABORTED) continue;  // take the next one
    if (r.err == EAGAIN) {
      // The kernel would not wait for this descriptor: wait for
      // readiness (the loop arms the op), then submit again.
      return WaitReadiness(pd, fd.sysfd(), d, fd.kind(), syscall);
    }
    return ErrnoError(syscall, static_cast<int>(r.err));
  }
}

}  // namespace

absl::Status FD::InitBackend(bool pollable, WaitStrategy strategy,
                             internal::Poller* loop_poller) {
  absl::Status s = posix::InitKind(sysfd_, kind_, &zero_read_is_eof_);
  if (!s.ok()) return s;
  if (!pollable) {
    blocking_.store(true);
    return absl::OkStatus();
  }
  if (loop_poller == nullptr && strategy != WaitStrategy::kPoller) {
    absl::StatusOr<bool> p = posix::InitInterruptible(*this);
    if (!p.ok()) return p.status();
    // Blocked calls can be interrupted, so Close waits for them.
    blocking_.store(!*p);
    return absl::OkStatus();
  }
  // A regular file is never "not ready": epoll refuses most (EPERM) and
  // reports the rest (FUSE) always ready, so a read could block the thread
  // that waited. Files do plain blocking I/O (Go's "isBlocking" files),
  // except on an io_uring loop, whose ring runs them (its Register tells
  // them apart: RingOnly). A kNet FD is a socket (InitKind checked).
  struct stat st;
  if (RingLoopPoller::Of(loop_poller) == nullptr && kind_ != FdKind::kNet &&
      ::fstat(static_cast<int>(sysfd_), &st) == 0 && S_ISREG(st.st_mode)) {
    blocking_.store(true);
    return absl::OkStatus();
  }
  s = pd_.Open(loop_poller != nullptr ? loop_poller : &EpollPoller::Default(),
               sysfd_);
  if (!s.ok()) {
    // epoll refuses regular files and directories (EPERM): they do plain
    // blocking I/O, like Go's "isBlocking" files.
    if (OsErrorCode(s) == EPERM) {
      blocking_.store(true);
      return absl::OkStatus();
    }
    return s;
  }
  if (RingLoopPoller::RingOnly(pd_)) {
    // A regular file on an io_uring loop: its loop operations run on the
    // ring (deadlines and Close cancel them); blocking calls stay plain
    // blocking calls, which Close does not wait for (as for any file).
    s = posix::SetNonblock(sysfd_, false);
    if (!s.ok()) {
      pd_.Unopen(sysfd_);
      return s;
    }
    blocking_.store(true);
    return absl::OkStatus();
  }
  s = posix::SetNonblock(sysfd_, true);
  if (!s.ok()) {
    pd_.Unopen(sysfd_);
    return s;
  }
  blocking_.store(false);
  return absl::OkStatus();
}

absl::StatusOr<size_t> FD::ExecIO(
    internal::Dir d, const char* syscall,
    absl::FunctionRef<IoResult(void* ctx)> attempt) {
  if (Interruptible(pd_)) {
    return posix::ExecInterruptible(*this, d, syscall, attempt);
  }
  // Registered with epoll or an io_uring loop from here on (so pollable).
  absl::Status s;
  if (RingLoopPoller* ring = RingLoopPoller::Of(pd_.poller())) {
    internal::NonBlockingScope* nb = internal::NonBlockingScope::Current();
    if (nb != nullptr && nb->resumable) {
      return ExecOnRing(*this, *ring, *nb, d, syscall, attempt);
    }
    // Blocking callers of other threads, and loop operations that cannot
    // be collected later: readiness (WaitReadiness activates it).
  }
  s = pd_.Prepare(d, kind_);
  if (!s.ok()) return s;
  for (;;) {
    IoResult r = attempt(nullptr);
    if (r.err == 0) return static_cast<size_t>(r.n);
    if (r.err == EINTR) continue;
    if (r.err == EAGAIN) {
      GOPOLL_PERTURB_POINT("execio.would_block");
      s = WaitReadiness(pd_, sysfd_, d, kind_, syscall);
      if (s.ok()) continue;
      return s;
    }
    return ErrnoError(syscall, static_cast<int>(r.err));
  }
}

absl::Status FD::ConnectImpl(const SockAddr& addr) {
  if (Interruptible(pd_)) return posix::ConnectInterruptible(*this, addr);
  absl::Status s = pd_.Prepare(internal::Dir::kWrite, kind_);
  if (!s.ok()) return s;
  int r;
  do {
    r = ::connect(sysfd_, addr.get(), addr.len);
  } while (r < 0 && errno == EINTR);
  if (r == 0 || errno == EISCONN) return absl::OkStatus();
  if (errno != EINPROGRESS && errno != EALREADY) {
    return ErrnoError("connect", errno);
  }
  WantReadiness(pd_, sysfd_);
  for (;;) {
    s = pd_.Wait(internal::Dir::kWrite, kind_);
    if (!s.ok()) return s;
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(sysfd_, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
      return ErrnoError("getsockopt", errno);
    }
    switch (err) {
      case EINPROGRESS:
      case EALREADY:
      case EINTR:
        continue;
      case EISCONN:
        return absl::OkStatus();
      case 0: {
        // Readiness can be spurious: connected only if there is a peer.
        SockAddr peer;
        socklen_t plen = sizeof(peer.storage);
        if (::getpeername(sysfd_, peer.get(), &plen) == 0) {
          return absl::OkStatus();
        }
        continue;
      }
      default:
        return ErrnoError("connect", err);
    }
  }
}

absl::Status FD::RawIOImpl(internal::Dir d, absl::FunctionRef<bool(Sysfd)> f) {
  if (Interruptible(pd_)) return posix::RawIOInterruptible(*this, d, f);
  absl::Status s = pd_.Prepare(d, kind_);
  if (!s.ok()) return s;
  for (;;) {
    if (f(sysfd_)) return absl::OkStatus();
    s = WaitReadiness(pd_, sysfd_, d, kind_,
                      d == internal::Dir::kRead ? "rawread" : "rawwrite");
    if (!s.ok()) return s;
  }
}

bool FD::AsyncNative(internal::Poller* loop_poller, bool resumable) {
  if (!pd_.pollable() || loop_poller == nullptr ||
      pd_.poller() != loop_poller) {
    return false;
  }
  // A ring-only file (a regular file on an io_uring loop) has no readiness:
  // only operations the ring runs (resumable ones) stay on the loop thread.
  return resumable || !RingLoopPoller::RingOnly(pd_);
}

// In flight only on an io_uring loop (epoll's operations never fly).
void FD::CancelAsync(void* backend_op) {
  if (RingLoopPoller* ring = RingLoopPoller::Of(pd_.poller())) {
    ring->Cancel(static_cast<UringOp*>(backend_op));
  }
}

void FD::FreeAsync(void* backend_op) {
  if (RingLoopPoller* ring = RingLoopPoller::Of(pd_.poller())) {
    auto* op = static_cast<UringOp*>(backend_op);
    // An accept whose consumer is gone: the connection it took is closed,
    // not leaked.
    if (op->done && op->call.op == posix::AsyncCall::Op::kAccept &&
        op->call.res >= 0) {
      ::close(static_cast<int>(op->call.res));
    }
    ring->Free(op);
  }
}

bool FD::LoopRunsItsCalls() const { return false; }

bool FD::OneLoopOpAtATime() const { return RingLoopPoller::RingOnly(pd_); }

void FD::KeepAbandonedRead(void* backend_op, absl::Span<const char> buf) {
  if (RingLoopPoller::Of(pd_.poller()) == nullptr) return;
  auto* op = static_cast<UringOp*>(backend_op);
  // A read at an offset (pread) took nothing from a stream: nothing to keep.
  if (!op->done || op->call.op != posix::AsyncCall::Op::kRead ||
      op->call.off >= 0 || op->call.res < 0) {
    return;
  }
  const size_t n = std::min(static_cast<size_t>(op->call.res), buf.size());
  KeepUnread(buf.subspan(0, n));
}

void FD::KeepUnread(absl::Span<const char> buf) {
  unread_.Keep(buf, posix::IsMessageSocket(sysfd_, kind_));
}

}  // namespace gopoll
