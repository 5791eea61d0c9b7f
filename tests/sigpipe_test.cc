// SPDX-License-Identifier: BSD-3-Clause
// The SIGPIPE policy (poll/posix/posix_calls.h): a write to a connection or
// pipe whose reader is gone fails with EPIPE and never kills the process.
// Sockets never raise SIGPIPE (MSG_NOSIGNAL, SIGPIPE keeps its default
// action); the first FD of another kind installs a do-nothing handler if
// SIGPIPE still has its default action, and leaves the application's own
// disposition alone. Each case runs in a fresh child process (gtest's
// "threadsafe" death-test style re-executes the binary), with SIGPIPE's
// disposition set as the case needs: a SIGPIPE that kills the child fails
// the test. (Plain fork, not gtest death tests: those crash under ASan's
// detect_stack_use_after_return.)
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"
#include "tests/loop_test_util.h"

namespace gopoll {
namespace {

// Exit codes of the children: 0 passed, others name the failed check.
constexpr int kOk = 0;

bool IsEpipe(const absl::Status& s, const char* call) {
  return OsErrorCode(s) == EPIPE &&
         s.message().find(call) != absl::string_view::npos;
}

void SetDisposition(void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, nullptr);
}

void (*CurrentHandler())(int) {
  struct sigaction old {};
  sigaction(SIGPIPE, nullptr, &old);
  return old.sa_handler;
}

// Runs `body` in a forked child; the child's exit code is its verdict.
template <typename Body>
::testing::AssertionResult InChild(Body body) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return ::testing::AssertionFailure() << "fork failed";
  if (pid == 0) {
    body();
    _exit(kOk);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) {
    return ::testing::AssertionFailure() << "waitpid failed";
  }
  if (WIFSIGNALED(status)) {
    return ::testing::AssertionFailure()
           << "child killed by signal " << WTERMSIG(status);
  }
  if (WEXITSTATUS(status) != kOk) {
    return ::testing::AssertionFailure()
           << "child failed check " << WEXITSTATUS(status);
  }
  return ::testing::AssertionSuccess();
}

using SigpipeTest = ::testing::Test;

void SocketWritesToAClosedPeer(WaitStrategy strategy) {
  SetDisposition(SIG_DFL);
  int s[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) _exit(10);
  FD a(s[0]);
  absl::Status init = a.Init(FdKind::kNet, true, strategy);
  // plan9_stub has no poller: kPoller is refused there (documented).
  if (absl::IsUnimplemented(init) && strategy == WaitStrategy::kPoller) {
    _exit(kOk);
  }
  if (!init.ok()) _exit(11);
  close(s[1]);
  if (!IsEpipe(a.Write(std::string_view("x")).status(), "write")) _exit(12);
  absl::Span<const char> bufs[] = {absl::MakeConstSpan("ab", 2)};
  if (!IsEpipe(a.WriteV(bufs).status(), "writev")) _exit(13);
  // Sockets need no handler: SIGPIPE still has its default action.
  if (CurrentHandler() != SIG_DFL) _exit(14);
  _exit(kOk);
}

TEST_F(SigpipeTest, SocketWriteToClosedPeerIsEpipeInterruptible) {
  EXPECT_TRUE(InChild(
      [] { SocketWritesToAClosedPeer(WaitStrategy::kInterruptibleCall); }));
}

TEST_F(SigpipeTest, SocketWriteToClosedPeerIsEpipePoller) {
  EXPECT_TRUE(
      InChild([] { SocketWritesToAClosedPeer(WaitStrategy::kPoller); }));
}

TEST_F(SigpipeTest, LoopWriteToClosedPeerIsEpipe) {
  EXPECT_TRUE(InChild([] {
    SetDisposition(SIG_DFL);
    Loop loop;
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) {
      _exit(10);
    }
    absl::StatusOr<AsyncFd> a = loop.Adopt(s[0], FdKind::kNet);
    if (!a.ok()) _exit(11);
    close(s[1]);
    absl::Status st = absl::UnknownError("not run");
    bool done = false;
    a->AsyncWrite(std::string_view("x"), [&](absl::StatusOr<size_t> n) {
      st = n.status();
      done = true;
    });
    testing::RunLoopUntil(loop, [&] { return done; });
    _exit(IsEpipe(st, "write") ? kOk : 12);
  }));
}

TEST_F(SigpipeTest, PipeWriteToClosedReaderIsEpipe) {
  EXPECT_TRUE(InChild([] {
    SetDisposition(SIG_DFL);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) _exit(10);
    FD w(p[1]);
    if (!w.Init(FdKind::kPipe, true).ok()) _exit(11);
    close(p[0]);
    if (!IsEpipe(w.Write(std::string_view("x")).status(), "write")) {
      _exit(12);
    }
    // The handler that does nothing, installed because the action was
    // the default one.
    void (*h)(int) = CurrentHandler();
    _exit(h != SIG_DFL && h != SIG_IGN ? kOk : 13);
  }));
}

// A socket wrapped with a non-network kind writes with write(2): covered by
// the handler.
TEST_F(SigpipeTest, SocketWrappedAsPipeIsEpipe) {
  EXPECT_TRUE(InChild([] {
    SetDisposition(SIG_DFL);
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) {
      _exit(10);
    }
    FD a(s[0]);
    if (!a.Init(FdKind::kPipe, true).ok()) _exit(11);
    close(s[1]);
    _exit(IsEpipe(a.Write(std::string_view("x")).status(), "write") ? kOk : 12);
  }));
}

std::atomic<int> g_app_handler_calls{0};
void AppHandler(int) { ++g_app_handler_calls; }

TEST_F(SigpipeTest, ApplicationHandlerIsKept) {
  EXPECT_TRUE(InChild([] {
    SetDisposition(&AppHandler);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) _exit(10);
    FD w(p[1]);
    if (!w.Init(FdKind::kPipe, true).ok()) _exit(11);
    if (CurrentHandler() != &AppHandler) _exit(12);
    close(p[0]);
    if (!IsEpipe(w.Write(std::string_view("x")).status(), "write")) {
      _exit(13);
    }
    _exit(g_app_handler_calls.load() == 1 ? kOk : 14);
  }));
}

TEST_F(SigpipeTest, IgnoredSigpipeStaysIgnored) {
  EXPECT_TRUE(InChild([] {
    SetDisposition(SIG_IGN);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) _exit(10);
    FD w(p[1]);
    if (!w.Init(FdKind::kPipe, true).ok()) _exit(11);
    close(p[0]);
    if (!IsEpipe(w.Write(std::string_view("x")).status(), "write")) {
      _exit(12);
    }
    _exit(CurrentHandler() == SIG_IGN ? kOk : 13);
  }));
}

}  // namespace
}  // namespace gopoll
