// The SIGPIPE policy (poll/posix/posix_calls.h): a write to a connection or
// pipe whose reader is gone fails with EPIPE and never kills the process.
// Sockets never raise SIGPIPE (MSG_NOSIGNAL, SIGPIPE keeps its default
// action); the first FD of another kind installs a do-nothing handler if
// SIGPIPE still has its default action, and leaves the application's own
// disposition alone. Each case runs in a fresh child process (gtest's
// "threadsafe" death-test style re-executes the binary), with SIGPIPE's
// disposition set as the case needs: a SIGPIPE that kills the child fails
// the EXPECT_EXIT.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
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

class SigpipeTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

void SocketWritesToAClosedPeer(WaitStrategy strategy) {
  SetDisposition(SIG_DFL);
  int s[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) exit(10);
  FD a(s[0]);
  absl::Status init = a.Init(FdKind::kNet, true, strategy);
  // plan9_stub has no poller: kPoller is refused there (documented).
  if (absl::IsUnimplemented(init) && strategy == WaitStrategy::kPoller) {
    exit(kOk);
  }
  if (!init.ok()) exit(11);
  close(s[1]);
  if (!IsEpipe(a.Write(std::string_view("x")).status(), "write")) exit(12);
  absl::Span<const char> bufs[] = {absl::MakeConstSpan("ab", 2)};
  if (!IsEpipe(a.WriteV(bufs).status(), "writev")) exit(13);
  // Sockets need no handler: SIGPIPE still has its default action.
  if (CurrentHandler() != SIG_DFL) exit(14);
  exit(kOk);
}

TEST_F(SigpipeTest, SocketWriteToClosedPeerIsEpipeInterruptible) {
  EXPECT_EXIT(SocketWritesToAClosedPeer(WaitStrategy::kInterruptibleCall),
              ::testing::ExitedWithCode(kOk), "");
}

TEST_F(SigpipeTest, SocketWriteToClosedPeerIsEpipePoller) {
  EXPECT_EXIT(SocketWritesToAClosedPeer(WaitStrategy::kPoller),
              ::testing::ExitedWithCode(kOk), "");
}

TEST_F(SigpipeTest, LoopWriteToClosedPeerIsEpipe) {
  EXPECT_EXIT(
      {
        SetDisposition(SIG_DFL);
        Loop loop;
        int s[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) {
          exit(10);
        }
        absl::StatusOr<AsyncFd> a = loop.Adopt(s[0], FdKind::kNet);
        if (!a.ok()) exit(11);
        close(s[1]);
        absl::Status st = absl::UnknownError("not run");
        bool done = false;
        a->AsyncWrite(std::string_view("x"), [&](absl::StatusOr<size_t> n) {
          st = n.status();
          done = true;
        });
        testing::RunLoopUntil(loop, [&] { return done; });
        exit(IsEpipe(st, "write") ? kOk : 12);
      },
      ::testing::ExitedWithCode(kOk), "");
}

TEST_F(SigpipeTest, PipeWriteToClosedReaderIsEpipe) {
  EXPECT_EXIT(
      {
        SetDisposition(SIG_DFL);
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) exit(10);
        FD w(p[1]);
        if (!w.Init(FdKind::kPipe, true).ok()) exit(11);
        close(p[0]);
        if (!IsEpipe(w.Write(std::string_view("x")).status(), "write")) {
          exit(12);
        }
        // The handler that does nothing, installed because the action was
        // the default one.
        void (*h)(int) = CurrentHandler();
        exit(h != SIG_DFL && h != SIG_IGN ? kOk : 13);
      },
      ::testing::ExitedWithCode(kOk), "");
}

// A socket wrapped with a non-network kind writes with write(2): covered by
// the handler.
TEST_F(SigpipeTest, SocketWrappedAsPipeIsEpipe) {
  EXPECT_EXIT(
      {
        SetDisposition(SIG_DFL);
        int s[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) {
          exit(10);
        }
        FD a(s[0]);
        if (!a.Init(FdKind::kPipe, true).ok()) exit(11);
        close(s[1]);
        exit(IsEpipe(a.Write(std::string_view("x")).status(), "write") ? kOk
                                                                       : 12);
      },
      ::testing::ExitedWithCode(kOk), "");
}

std::atomic<int> g_app_handler_calls{0};
void AppHandler(int) { ++g_app_handler_calls; }

TEST_F(SigpipeTest, ApplicationHandlerIsKept) {
  EXPECT_EXIT(
      {
        SetDisposition(&AppHandler);
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) exit(10);
        FD w(p[1]);
        if (!w.Init(FdKind::kPipe, true).ok()) exit(11);
        if (CurrentHandler() != &AppHandler) exit(12);
        close(p[0]);
        if (!IsEpipe(w.Write(std::string_view("x")).status(), "write")) {
          exit(13);
        }
        exit(g_app_handler_calls.load() == 1 ? kOk : 14);
      },
      ::testing::ExitedWithCode(kOk), "");
}

TEST_F(SigpipeTest, IgnoredSigpipeStaysIgnored) {
  EXPECT_EXIT(
      {
        SetDisposition(SIG_IGN);
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) exit(10);
        FD w(p[1]);
        if (!w.Init(FdKind::kPipe, true).ok()) exit(11);
        close(p[0]);
        if (!IsEpipe(w.Write(std::string_view("x")).status(), "write")) {
          exit(12);
        }
        exit(CurrentHandler() == SIG_IGN ? kOk : 13);
      },
      ::testing::ExitedWithCode(kOk), "");
}

}  // namespace
}  // namespace gopoll
