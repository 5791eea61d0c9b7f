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

#include <vector>

#include "poll/fd.h"
#include "poll/perturb.h"
#include "poll/posix/interruptible.h"
#include "poll/posix/posix_calls.h"
#include "poll/unix/epoll_poller.h"

namespace gopoll {

namespace {
// The poller-less PollDesc marks the interruptible-call strategy (non-
// pollable FDs have none either; that strategy's runner serves them too).
bool Interruptible(const PollDesc& pd) { return pd.poller() == nullptr; }
}  // namespace

absl::Status FD::InitBackend(bool pollable, WaitStrategy strategy,
                             Poller* loop_poller) {
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
  s = posix::SetNonblock(sysfd_, true);
  if (!s.ok()) {
    pd_.Unopen(sysfd_);
    return s;
  }
  blocking_.store(false);
  return absl::OkStatus();
}

absl::StatusOr<size_t> FD::ExecIO(
    Dir d, const char* syscall,
    absl::FunctionRef<IoResult(void* ctx)> attempt) {
  if (Interruptible(pd_)) {
    return posix::ExecInterruptible(*this, d, syscall, attempt);
  }
  // Registered with epoll from here on (so pollable).
  absl::Status s = pd_.Prepare(d, kind_);
  if (!s.ok()) return s;
  for (;;) {
    IoResult r = attempt(nullptr);
    if (r.err == 0) return static_cast<size_t>(r.n);
    if (r.err == EINTR) continue;
    if (r.err == EAGAIN) {
      GOPOLL_PERTURB_POINT("execio.would_block");
      s = pd_.Wait(d, kind_);
      if (s.ok()) continue;
      return s;
    }
    return ErrnoError(syscall, static_cast<int>(r.err));
  }
}

absl::Status FD::ConnectImpl(const SockAddr& addr) {
  if (Interruptible(pd_)) return posix::ConnectInterruptible(*this, addr);
  absl::Status s = pd_.Prepare(Dir::kWrite, kind_);
  if (!s.ok()) return s;
  int r;
  do {
    r = ::connect(sysfd_, addr.get(), addr.len);
  } while (r < 0 && errno == EINTR);
  if (r == 0 || errno == EISCONN) return absl::OkStatus();
  if (errno != EINPROGRESS && errno != EALREADY) {
    return ErrnoError("connect", errno);
  }
  for (;;) {
    s = pd_.Wait(Dir::kWrite, kind_);
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

absl::Status FD::RawIOImpl(Dir d, absl::FunctionRef<bool(Sysfd)> f) {
  if (Interruptible(pd_)) return posix::RawIOInterruptible(*this, d, f);
  absl::Status s = pd_.Prepare(d, kind_);
  if (!s.ok()) return s;
  for (;;) {
    if (f(sysfd_)) return absl::OkStatus();
    s = pd_.Wait(d, kind_);
    if (!s.ok()) return s;
  }
}

bool FD::AsyncNative(Poller* loop_poller, bool /*resumable*/) {
  return pd_.pollable() && loop_poller != nullptr &&
         pd_.poller() == loop_poller;
}

void FD::CancelAsync(void* /*backend_op*/) {}
void FD::FreeAsync(void* /*backend_op*/) {}  // readiness ops never fly

}  // namespace gopoll
