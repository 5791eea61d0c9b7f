// SPDX-License-Identifier: BSD-3-Clause
#include "poll/posix/interruptible.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>

#include "poll/internal/fd_access.h"
#include "poll/internal/perturb.h"
#include "poll/posix/interrupter.h"
#include "poll/posix/posix_calls.h"
#include "poll/posix/read_spin.h"

namespace gopoll::posix {
namespace {

// Blocks until `fd` is ready for `events` (used where a call must wait for
// something other than its own completion).
IoResult WaitFor(Sysfd fd, short events) {
  pollfd p{static_cast<int>(fd), events, 0};
  int r = ::poll(&p, 1, -1);
  if (r < 0) return {0, errno};
  return {0, 0};
}

short Events(internal::Dir d) {
  return d == internal::Dir::kRead ? POLLIN : POLLOUT;
}

// Runs `call` with the thread's interrupter published for direction `d`:
// a deadline or Close that passes meanwhile interrupts it (EINTR). An error
// status when the direction had already failed (`call` did not run).
absl::StatusOr<IoResult> InWindow(FD& fd, internal::Dir d,
                                  absl::FunctionRef<IoResult()> call,
                                  ReadSpin* spin) {
  internal::PollDesc& pd = internal::FdAccess::poll_desc(fd);
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
  IoResult r;
  if (!pd.CheckErr(d, fd.kind()).ok()) {
    // Arm saw the error, but somebody had already taken `w` (its Wake is
    // coming): do not start a call that only the re-sent signal would end.
    r = {0, EINTR};
  } else {
    GOPOLL_PERTURB_POINT("interruptible.armed");
    r = call();
    if (spin != nullptr) spin->AfterRead();
  }
  w.End(published && !pd.Disarm(d, &w));
  return r;
}

// Waits, interruptibly, until the FD is ready for `d` (or a signal came):
// for calls that found the descriptor non-blocking after all. `retries`:
// how many times in a row the call was already retried after a wait and
// still would block. Some sockets report readiness that the call does not
// honour (poll says writable, a datagram to a full peer queue still gets
// EAGAIN): then back off, 1, 2, 4 ... 64 ms, instead of spinning.
absl::Status WaitReady(FD& fd, internal::Dir d, int retries) {
  const Sysfd sysfd = fd.sysfd();
  absl::StatusOr<IoResult> r = InWindow(
      fd, d,
      [&] {
        if (retries == 0) return WaitFor(sysfd, Events(d));
        const int ms = 1 << std::min(retries - 1, 6);
        if (::poll(nullptr, 0, ms) < 0) return IoResult{0, errno};
        return IoResult{0, 0};
      },
      nullptr);
  if (!r.ok()) return r.status();
  if (r->err != 0 && r->err != EINTR) {
    return ErrnoError("poll", static_cast<int>(r->err));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<bool> InitInterruptible(FD& fd) {
  absl::StatusOr<FileInfo> fi = Fstat(fd.sysfd());
  if (!fi.ok()) return fi.status();
  // Regular files, directories and block devices do not wait for a peer
  // (and a disk wait cannot be interrupted anyway): not pollable.
  if (fi->is_regular || fi->is_dir || S_ISBLK(fi->mode)) return false;
  absl::Status s = SetNonblock(fd.sysfd(), false);
  if (!s.ok()) return s;
  SyscallInterrupter::Current();  // installs the signal handler
  internal::FdAccess::poll_desc(fd).OpenWithoutPoller();
  return true;
}

absl::StatusOr<size_t> ExecInterruptible(
    FD& fd, internal::Dir d, const char* syscall,
    absl::FunctionRef<IoResult(void* ctx)> attempt, bool wait_on_eagain) {
  internal::PollDesc& pd = internal::FdAccess::poll_desc(fd);
  absl::Status s = pd.Prepare(d, fd.kind());
  if (!s.ok()) return s;
  if (!pd.pollable()) return RunUnpollable(syscall, attempt);
  // Reads that keep waiting spin briefly before they block (read_spin.h).
  ReadSpin* spin = d == internal::Dir::kRead ? &ReadSpin::Current() : nullptr;
  int eagain_retries = 0;
  for (;;) {
    if (spin != nullptr) {
      spin->BeforeRead(fd.sysfd(),
                       [&] { return !pd.CheckErr(d, fd.kind()).ok(); });
    }
    absl::StatusOr<IoResult> r = InWindow(
        fd, d, [&] { return attempt(nullptr); }, spin);
    if (!r.ok()) return r.status();
    // Bytes transferred are returned even if an interrupt raced with them.
    if (r->err == 0) return static_cast<size_t>(r->n);
    if ((r->err == EAGAIN || r->err == EWOULDBLOCK) && wait_on_eagain) {
      // The open file description is non-blocking after all (a descriptor
      // or process sharing it set O_NONBLOCK), or the call asked not to
      // block (MSG_DONTWAIT): wait for readiness, as the poller strategy
      // does, and try again.
      GOPOLL_PERTURB_POINT("interruptible.would_block");
      s = WaitReady(fd, d, eagain_retries++);
      if (!s.ok()) return s;
    } else if (r->err != EINTR) {
      return ErrnoError(syscall, static_cast<int>(r->err));
    }
    // Interrupted, or ready: a deadline or Close ends the operation;
    // another signal, or a deadline extended meanwhile, means try again.
    GOPOLL_PERTURB_POINT("interruptible.interrupted");
    s = pd.CheckErr(d, fd.kind());
    if (!s.ok()) return s;
  }
}

absl::Status ConnectInterruptible(FD& fd, const SockAddr& addr) {
  const int sock = static_cast<int>(fd.sysfd());
  absl::StatusOr<size_t> r = ExecInterruptible(
      fd, internal::Dir::kWrite, "connect",
      [&](void*) {
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
      },
      // EAGAIN from connect (a Unix socket's full backlog) is an error, as
      // on the poller strategy and in Go; waiting would spin, since poll
      // reports an unconnected socket writable.
      /*wait_on_eagain=*/false);
  return r.status();
}

absl::Status RawIOInterruptible(FD& fd, internal::Dir d,
                                absl::FunctionRef<bool(Sysfd)> f) {
  internal::PollDesc& pd = internal::FdAccess::poll_desc(fd);
  absl::Status s = pd.Prepare(d, fd.kind());
  if (!s.ok()) return s;
  if (!pd.pollable()) {
    // Nothing can wait: one call of f, which must finish (Go's rule).
    return f(fd.sysfd()) ? absl::OkStatus() : ErrNotPollable();
  }
  int waits = 0;  // f asked to wait this many times in a row
  for (;;) {
    // The descriptor is blocking, so f's own calls may block: run f inside
    // a window, where a deadline or Close interrupts them (EINTR to f).
    bool done = false;
    absl::StatusOr<IoResult> r = InWindow(
        fd, d,
        [&] {
          done = f(fd.sysfd());
          return IoResult{0, 0};
        },
        nullptr);
    if (!r.ok()) return r.status();
    if (done) return absl::OkStatus();
    s = pd.CheckErr(d, fd.kind());
    if (!s.ok()) return s;
    // f asked to wait (its descriptor is non-blocking after all, or it
    // used MSG_DONTWAIT): wait for readiness, interruptibly.
    s = WaitReady(fd, d, waits++);
    if (!s.ok()) return s;
    s = pd.CheckErr(d, fd.kind());
    if (!s.ok()) return s;
  }
}

}  // namespace gopoll::posix
