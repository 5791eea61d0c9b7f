// SPDX-License-Identifier: BSD-3-Clause
// poll/net.h on an event loop: Listen, Dial, ShutdownSignal, and
// AsyncFd::LocalAddr/PeerAddr. The socket steps are poll/net.cc's.
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "poll/errors.h"
#include "poll/internal/net_sockets.h"
#include "poll/loop/async_fd.h"
#include "poll/loop/loop.h"
#include "poll/loop/task.h"
#include "poll/net.h"

#ifndef _WIN32
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "absl/base/const_init.h"
#include "absl/synchronization/mutex.h"
#endif

namespace gopoll {
namespace {

Task<absl::StatusOr<AsyncFd>> DialParsed(Loop* loop, std::string addr,
                                         absl::StatusOr<SockAddr> a,
                                         absl::Time deadline) {
  if (!a.ok()) co_return a.status();
  absl::StatusOr<Sysfd> s = internal_net::StreamSocket(*a);
  if (!s.ok()) co_return internal_net::WithAddr(s.status(), "dial", addr);
  absl::StatusOr<AsyncFd> conn = loop->Adopt(*s, FdKind::kNet);
  if (!conn.ok()) {
    co_return internal_net::WithAddr(conn.status(), "dial", addr);
  }
  absl::Status st = conn->SetWriteDeadline(deadline);
  if (st.ok()) st = co_await conn->Connect(*a);
  if (st.ok()) st = conn->SetWriteDeadline(absl::InfiniteFuture());
  if (!st.ok()) {
    (void)conn->Close();
    co_return internal_net::WithAddr(st, "dial", addr);
  }
  co_return std::move(*conn);
}

#ifndef _WIN32
// SIGINT/SIGTERM while someone waits: the handler writes the signal's
// number to a process-wide pipe (made once, never closed); each waiter
// reads a dup of its read end on its loop.
absl::Mutex sig_mu(absl::kConstInit);
int sig_waiters ABSL_GUARDED_BY(sig_mu) = 0;
int sig_pipe[2] ABSL_GUARDED_BY(sig_mu) = {-1, -1};
struct sigaction sig_old_int ABSL_GUARDED_BY(sig_mu);
struct sigaction sig_old_term ABSL_GUARDED_BY(sig_mu);
std::atomic<int> sig_write_end{-1};

void OnShutdownSignal(int sig) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(sig);
  const int w = sig_write_end.load(std::memory_order_relaxed);
  if (w >= 0) {
    ssize_t r = ::write(w, &b, 1);
    (void)r;  // a full pipe already holds a signal for the waiters
  }
  errno = saved;
}

// One waiter's registration: a dup of the pipe's read end (its to own).
absl::StatusOr<Sysfd> WatchSignals() {
  absl::MutexLock l(&sig_mu);
  if (sig_pipe[0] < 0) {
    if (::pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      sig_pipe[0] = sig_pipe[1] = -1;
      return ErrnoError("pipe2", errno);
    }
    sig_write_end.store(sig_pipe[1]);
  }
  const int fd = ::fcntl(sig_pipe[0], F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("fcntl", errno);
  if (sig_waiters == 0) {
    // Signals of an earlier wait that nobody took are not this wait's.
    // Polled first: a waiter's FD may have made the shared read end
    // blocking (backends whose loops make blocking calls on helper
    // threads), and an empty pipe must not block here.
    char drain[64];
    pollfd pfd{sig_pipe[0], POLLIN, 0};
    while (::poll(&pfd, 1, 0) == 1 &&
           ::read(sig_pipe[0], drain, sizeof(drain)) > 0) {
    }
    struct sigaction sa = {};
    sa.sa_handler = OnShutdownSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (::sigaction(SIGINT, &sa, &sig_old_int) != 0 ||
        ::sigaction(SIGTERM, &sa, &sig_old_term) != 0) {
      const int err = errno;
      ::sigaction(SIGINT, &sig_old_int, nullptr);
      ::close(fd);
      return ErrnoError("sigaction", err);
    }
  }
  ++sig_waiters;
  return fd;
}

void UnwatchSignals() {
  absl::MutexLock l(&sig_mu);
  if (--sig_waiters == 0) {
    ::sigaction(SIGINT, &sig_old_int, nullptr);
    ::sigaction(SIGTERM, &sig_old_term, nullptr);
  }
}

// Ends a registration when the waiting coroutine finishes or is destroyed.
struct SignalWatch {
  SignalWatch() = default;
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;
  ~SignalWatch() { UnwatchSignals(); }
};

Task<absl::StatusOr<int>> WaitSignal(Loop* loop) {
  absl::StatusOr<Sysfd> r = WatchSignals();
  if (!r.ok()) co_return r.status();
  SignalWatch watch;
  absl::StatusOr<AsyncFd> fd = loop->Adopt(*r, FdKind::kPipe);
  if (!fd.ok()) co_return fd.status();
  char b = 0;
  absl::StatusOr<size_t> n = co_await fd->Read(absl::MakeSpan(&b, 1));
  (void)fd->Close();
  if (!n.ok()) co_return n.status();
  co_return static_cast<int>(static_cast<unsigned char>(b));
}
#else
Task<absl::StatusOr<int>> WaitSignal(Loop*) {
  co_return absl::UnimplementedError(
      "ShutdownSignal: not on Windows yet (console control events)");
}
#endif

}  // namespace

absl::StatusOr<AsyncFd> Listen(Loop& loop, std::string_view addr) {
  absl::StatusOr<SockAddr> a = SockAddr::Parse(addr);
  if (!a.ok()) return a.status();
  absl::StatusOr<Sysfd> s = internal_net::ListenSocket(*a);
  if (!s.ok()) return internal_net::WithAddr(s.status(), "listen", addr);
  absl::StatusOr<AsyncFd> ln = loop.Adopt(*s, FdKind::kNet);
  if (!ln.ok()) return internal_net::WithAddr(ln.status(), "listen", addr);
  return ln;
}

absl::StatusOr<AsyncFd> ListenPacket(Loop& loop, std::string_view addr) {
  absl::StatusOr<SockAddr> a = SockAddr::Parse(addr);
  if (!a.ok()) return a.status();
  absl::StatusOr<Sysfd> s = internal_net::PacketSocket(*a);
  if (!s.ok()) return internal_net::WithAddr(s.status(), "listen", addr);
  absl::StatusOr<AsyncFd> ln = loop.Adopt(*s, FdKind::kNet);
  if (!ln.ok()) return internal_net::WithAddr(ln.status(), "listen", addr);
  return ln;
}

Task<absl::StatusOr<AsyncFd>> Dial(Loop& loop, std::string_view addr,
                                   absl::Time deadline) {
  // Parsed now: the coroutine keeps copies, not `addr`.
  return DialParsed(&loop, std::string(addr), SockAddr::Parse(addr), deadline);
}

Task<absl::StatusOr<int>> ShutdownSignal(Loop& loop) {
  return WaitSignal(&loop);
}

absl::StatusOr<SockAddr> AsyncFd::LocalAddr() const {
  return gopoll::LocalAddr(*fd_);
}
absl::StatusOr<SockAddr> AsyncFd::PeerAddr() const {
  return gopoll::PeerAddr(*fd_);
}

}  // namespace gopoll
