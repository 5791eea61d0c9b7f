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
#else
#include <windows.h>

#include <algorithm>
#include <coroutine>
#include <csignal>
#include <deque>
#include <memory>

#include "absl/base/const_init.h"
#include "absl/synchronization/mutex.h"
#include "poll/loop/console_ctrl.h"
#include "poll/windows/win_error.h"
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
// Console control events while someone waits, mapped as Go maps them:
// Ctrl+C and Ctrl+Break are SIGINT; closing the console, logoff and
// shutdown SIGTERM. The handler runs on a thread the system starts for the
// event; it hands the event to the oldest waiter by posting its
// resumption to the waiter's loop, and returns TRUE. With nobody waiting
// it returns FALSE, so the next handler (by default the one that ends the
// process) runs, as with no handler: the handler is installed at the first
// wait and stays, which keeps SetConsoleCtrlHandler out of the handler's
// locking.
struct CtrlWaiter {
  Loop* loop = nullptr;  // valid while listed: its coroutine runs there
  std::coroutine_handle<> h;
  int sig = 0;        // the event, once handed over (ctrl_mu)
  bool gone = false;  // the awaiter was destroyed (ctrl_mu)
};
absl::Mutex ctrl_mu(absl::kConstInit);
std::deque<std::shared_ptr<CtrlWaiter>>& CtrlWaiters()
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(ctrl_mu) {
  static auto* waiters = new std::deque<std::shared_ptr<CtrlWaiter>>;
  return *waiters;
}

// The signal number of a console control event; 0: not one of ours.
int CtrlSignal(DWORD type) {
  switch (type) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
      return SIGINT;
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT:
      return SIGTERM;
    default:
      return 0;
  }
}

// Hands `sig` to the oldest waiter; false if nobody waits.
bool DeliverCtrl(int sig) {
  absl::MutexLock l(&ctrl_mu);
  auto& waiters = CtrlWaiters();
  if (waiters.empty()) return false;
  std::shared_ptr<CtrlWaiter> w = std::move(waiters.front());
  waiters.pop_front();
  w->sig = sig;
  // Under ctrl_mu: a listed waiter's coroutine, and so its loop, exists
  // (destroying it takes ctrl_mu first).
  w->loop->Post([w] {
    bool resume;
    {
      absl::MutexLock l(&ctrl_mu);
      resume = !w->gone;
    }
    if (resume) w->h.resume();
  });
  return true;
}

BOOL WINAPI OnConsoleCtrl(DWORD type) {
  if (!internal_net::HandleConsoleCtrl(type)) return FALSE;
  if (CtrlSignal(type) == SIGTERM) {
    // The process ends when this returns (closing the console): as Go
    // does, wait here and let the application shut down meanwhile; the
    // system ends it after its own timeout if it takes too long.
    ::Sleep(INFINITE);
  }
  return TRUE;
}

absl::Status InstallCtrlHandler() {
  static const absl::Status* const installed = [] {
    if (!::SetConsoleCtrlHandler(OnConsoleCtrl, TRUE)) {
      return new absl::Status(
          WinError("SetConsoleCtrlHandler", ::GetLastError()));
    }
    return new absl::Status();
  }();
  return *installed;
}

// `co_await CtrlAwaiter(loop)`: suspends until an event is handed over.
// Destroyed while suspended (the coroutine destroyed): leaves the list, or,
// if an event was already handed over and not yet taken, passes it on to
// the next waiter.
class CtrlAwaiter {
 public:
  explicit CtrlAwaiter(Loop* loop) : w_(std::make_shared<CtrlWaiter>()) {
    w_->loop = loop;
  }
  CtrlAwaiter(const CtrlAwaiter&) = delete;
  CtrlAwaiter& operator=(const CtrlAwaiter&) = delete;
  ~CtrlAwaiter() {
    if (!w_->h || taken_) return;
    int pass_on = 0;
    {
      absl::MutexLock l(&ctrl_mu);
      w_->gone = true;
      auto& waiters = CtrlWaiters();
      auto it = std::find(waiters.begin(), waiters.end(), w_);
      if (it != waiters.end()) {
        waiters.erase(it);
      } else {
        pass_on = w_->sig;
      }
    }
    if (pass_on != 0) DeliverCtrl(pass_on);
  }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    w_->h = h;
    absl::MutexLock l(&ctrl_mu);
    CtrlWaiters().push_back(w_);
  }
  int await_resume() {
    taken_ = true;
    absl::MutexLock l(&ctrl_mu);
    return w_->sig;
  }

 private:
  std::shared_ptr<CtrlWaiter> w_;
  bool taken_ = false;
};

Task<absl::StatusOr<int>> WaitSignal(Loop* loop) {
  if (!loop->InLoopThread()) {
    co_return absl::FailedPreconditionError(
        "ShutdownSignal: co_await it in a task running on its loop");
  }
  absl::Status s = InstallCtrlHandler();
  if (!s.ok()) co_return s;
  co_return co_await CtrlAwaiter(loop);
}
#endif

}  // namespace

#ifdef _WIN32
bool internal_net::HandleConsoleCtrl(unsigned long type) {
  const int sig = CtrlSignal(type);
  return sig != 0 && DeliverCtrl(sig);
}
#endif

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
