#include "poll/posix/interruptible.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "poll/posix/interrupter.h"
#include "poll/posix/posix_calls.h"
#include "poll/posix/read_spin.h"

namespace gopoll::posix {

absl::StatusOr<bool> InitInterruptible(FD& fd) {
  absl::StatusOr<FileInfo> fi = Fstat(fd.sysfd());
  if (!fi.ok()) return fi.status();
  if (fi->is_regular || fi->is_dir) return false;
  absl::Status s = SetNonblock(fd.sysfd(), false);
  if (!s.ok()) return s;
  SyscallInterrupter::Current();  // installs the signal handler
  fd.poll_desc().OpenWithoutPoller();
  return true;
}

absl::StatusOr<size_t> ExecInterruptible(
    FD& fd, Dir d, const char* syscall,
    absl::FunctionRef<IoResult(void* ctx)> attempt) {
  PollDesc& pd = fd.poll_desc();
  absl::Status s = pd.Prepare(d, fd.kind());
  if (!s.ok()) return s;
  // Reads that keep waiting spin briefly before they block (read_spin.h).
  ReadSpin* spin =
      d == Dir::kRead && pd.pollable() ? &ReadSpin::Current() : nullptr;
  for (;;) {
    IoResult r;
    if (spin != nullptr) {
      spin->BeforeRead(fd.sysfd(),
                       [&] { return !pd.CheckErr(d, fd.kind()).ok(); });
    }
    if (pd.pollable()) {
      SyscallInterrupter& w = SyscallInterrupter::Current();
      w.Begin();
      absl::StatusOr<bool> armed = pd.Arm(d, fd.kind(), &w);
      if (!armed.ok()) {
        w.End(false);
        return armed.status();
      }
      // `true`: the slot held a readiness mark (no poller sets one on this
      // strategy, but if one did) and `w` was not published.
      const bool published = !*armed;
      r = attempt(nullptr);
      if (spin != nullptr) spin->AfterRead();
      w.End(published && !pd.Disarm(d, &w));
    } else {
      r = attempt(nullptr);
    }
    // Bytes transferred are returned even if an interrupt raced with them.
    if (r.err == 0) return static_cast<size_t>(r.n);
    if (r.err == EINTR) {
      s = pd.CheckErr(d, fd.kind());
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

absl::Status ConnectInterruptible(FD& fd, const SockAddr& addr) {
  const int sock = static_cast<int>(fd.sysfd());
  absl::StatusOr<size_t> r =
      ExecInterruptible(fd, Dir::kWrite, "connect", [&](void*) {
        if (::connect(sock, addr.get(), addr.len) == 0) return IoResult{0, 0};
        int err = errno;
        if (err == EISCONN) return IoResult{0, 0};
        if (err != EALREADY && err != EINPROGRESS) return IoResult{0, err};
        // An interrupted connect goes on in the background: wait for it.
        IoResult w = WaitFor(sock, POLLOUT);
        if (w.err != 0) return w;
        int so_err = 0;
        socklen_t len = sizeof(so_err);
        if (::getsockopt(sock, SOL_SOCKET, SO_ERROR, &so_err, &len) < 0) {
          return IoResult{0, errno};
        }
        return IoResult{0, so_err};
      });
  return r.status();
}

absl::Status RawIOInterruptible(FD& fd, Dir d,
                                absl::FunctionRef<bool(Sysfd)> f) {
  absl::Status s = fd.poll_desc().Prepare(d, fd.kind());
  if (!s.ok()) return s;
  const short events = d == Dir::kRead ? POLLIN : POLLOUT;
  for (;;) {
    if (f(fd.sysfd())) return absl::OkStatus();
    if (!fd.poll_desc().pollable()) return ErrNotPollable();
    absl::StatusOr<size_t> r = ExecInterruptible(
        fd, d, "poll", [&](void*) { return WaitFor(fd.sysfd(), events); });
    if (!r.ok()) return r.status();
  }
}

}  // namespace gopoll::posix
