// The plan9_stub backend's part of FD (Go's fd_plan9 model): descriptors
// stay blocking and ExecIO runs the blocking call in the calling thread,
// with the thread's SyscallInterrupter published in the PollDesc so that a
// deadline or Close interrupts the call. The system calls themselves are
// shared with the epoll backend (poll/posix/fd_posix.cc).
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "poll/fd.h"
#include "poll/plan9_stub/interrupter.h"
#include "poll/poller.h"
#include "poll/posix/posix_calls.h"

namespace gopoll {

// No readiness poller: event loops run blocking operations on helper
// threads (poll/loop/offload.h).
std::unique_ptr<Poller> NewLoopPoller() { return nullptr; }

using plan9_stub::SyscallInterrupter;

absl::Status FD::InitBackend(bool pollable, Poller* /*loop_poller*/) {
  absl::Status s = posix::InitKind(sysfd_, kind_, &zero_read_is_eof_);
  if (!s.ok()) return s;
  if (pollable) {
    // Like epoll, regular files and directories are not pollable: their
    // calls do not block indefinitely, and deadlines report NoDeadline.
    absl::StatusOr<FileInfo> fi = posix::Fstat(sysfd_);
    if (!fi.ok()) return fi.status();
    pollable = !fi->is_regular && !fi->is_dir;
  }
  if (!pollable) {
    blocking_.store(true);
    return absl::OkStatus();
  }
  s = posix::SetNonblock(sysfd_, false);
  if (!s.ok()) return s;
  SyscallInterrupter::Current();  // installs the signal handler
  pd_.OpenWithoutPoller();
  // Blocked calls can be interrupted, so Close waits for them.
  blocking_.store(false);
  return absl::OkStatus();
}

absl::StatusOr<size_t> FD::ExecIO(
    Dir d, const char* syscall,
    absl::FunctionRef<IoResult(void* ctx)> attempt) {
  absl::Status s = pd_.Prepare(d, kind_);
  if (!s.ok()) return s;
  for (;;) {
    IoResult r;
    if (pd_.pollable()) {
      SyscallInterrupter& w = SyscallInterrupter::Current();
      w.Begin();
      absl::StatusOr<bool> armed = pd_.Arm(d, kind_, &w);
      if (!armed.ok()) {
        w.End(false);
        return armed.status();
      }
      r = attempt(nullptr);
      w.End(!pd_.Disarm(d, &w));
    } else {
      r = attempt(nullptr);
    }
    // Bytes transferred are returned even if an interrupt raced with them.
    if (r.err == 0) return static_cast<size_t>(r.n);
    if (r.err == EINTR) {
      s = pd_.CheckErr(d, kind_);
      if (!s.ok()) return s;
      continue;  // another signal, or the deadline was extended meanwhile
    }
    return ErrnoError(syscall, static_cast<int>(r.err));
  }
}

namespace {
// Blocks until `fd` is ready for `events` (used where a call must wait for
// something other than its own completion).
IoResult WaitFor(Sysfd fd, short events) {
  pollfd p{static_cast<int>(fd), events, 0};
  int r = ::poll(&p, 1, -1);
  if (r < 0) return {0, errno};
  return {0, 0};
}
}  // namespace

absl::Status FD::ConnectImpl(const SockAddr& addr) {
  absl::StatusOr<size_t> r = ExecIO(Dir::kWrite, "connect", [&](void*) {
    if (::connect(sysfd_, addr.get(), addr.len) == 0) return IoResult{0, 0};
    int err = errno;
    if (err == EISCONN) return IoResult{0, 0};
    if (err != EALREADY && err != EINPROGRESS) return IoResult{0, err};
    // An interrupted connect goes on in the background: wait for it.
    IoResult w = WaitFor(sysfd_, POLLOUT);
    if (w.err != 0) return w;
    int so_err = 0;
    socklen_t len = sizeof(so_err);
    if (::getsockopt(sysfd_, SOL_SOCKET, SO_ERROR, &so_err, &len) < 0) {
      return IoResult{0, errno};
    }
    return IoResult{0, so_err};
  });
  return r.status();
}

absl::Status FD::RawIOImpl(Dir d, absl::FunctionRef<bool(Sysfd)> f) {
  absl::Status s = pd_.Prepare(d, kind_);
  if (!s.ok()) return s;
  const short events = d == Dir::kRead ? POLLIN : POLLOUT;
  for (;;) {
    if (f(sysfd_)) return absl::OkStatus();
    if (!pd_.pollable()) return ErrNotPollable();
    absl::StatusOr<size_t> r =
        ExecIO(d, "poll", [&](void*) { return WaitFor(sysfd_, events); });
    if (!r.ok()) return r.status();
  }
}

// No readiness poller: loops run every operation on a helper thread.
bool FD::AsyncNative(Poller* /*loop_poller*/, bool /*resumable*/) {
  return false;
}

void FD::CancelAsync(void* /*backend_op*/) {}
void FD::FreeAsync(void* /*backend_op*/) {}

}  // namespace gopoll
