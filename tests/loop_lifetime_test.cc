// SPDX-License-Identifier: BSD-3-Clause
// FDs that outlive their event loop (poll/loop/loop.h): once the Loop is
// destroyed, every asynchronous operation fails at once with
// CancelledError (its data stays in the descriptor), from any number of
// threads; blocking calls on the FD keep working — data, deadlines and
// Close — also for a call that was already blocked when the loop went away.
// epoll, and (--config=plan9_stub) the helper-thread loop.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "poll/loop/loop.h"
#include "tests/loop_test_util.h"
#include "tests/posix_test_util.h"

namespace gopoll {
namespace {

using ::gopoll::testing::FdLeakTest;
using ::gopoll::testing::In;
using ::gopoll::testing::kHang;

class LoopLifetimeTest : public FdLeakTest {
 protected:
  void SetUp() override {
    FdLeakTest::SetUp();
    loop_ = std::make_unique<Loop>();
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    absl::StatusOr<AsyncFd> r = loop_->Adopt(p[0], FdKind::kPipe);
    absl::StatusOr<AsyncFd> w = loop_->Adopt(p[1], FdKind::kPipe);
    ASSERT_TRUE(r.ok() && w.ok());
    r_ = *r;
    w_ = *w;
  }
  void TearDown() override {
    r_ = AsyncFd();
    w_ = AsyncFd();
    loop_.reset();
    FdLeakTest::TearDown();
  }

  std::unique_ptr<Loop> loop_;
  AsyncFd r_, w_;
};

TEST_F(LoopLifetimeTest, CallbackOperationsAfterTheLoopFailWithCancelled) {
  ASSERT_TRUE(w_.fd().Write(std::string_view("data")).ok());
  loop_.reset();
  char buf[8];
  absl::StatusOr<size_t> got = absl::UnknownError("not run");
  bool done = false;
  r_.AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
    got = std::move(n);
    done = true;
  });
  // No loop thread is left to deliver it: it completes inside the call.
  ASSERT_TRUE(done);
  EXPECT_TRUE(absl::IsCancelled(got.status())) << got.status();
  done = false;
  w_.AsyncWrite(std::string_view("more"), [&](absl::StatusOr<size_t> n) {
    got = std::move(n);
    done = true;
  });
  ASSERT_TRUE(done);
  EXPECT_TRUE(absl::IsCancelled(got.status())) << got.status();
  // The cancelled read consumed nothing, the cancelled write wrote nothing.
  absl::StatusOr<size_t> n = r_.fd().Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "data");
}

TEST_F(LoopLifetimeTest, AcceptAndConnectAfterTheLoopFailWithCancelled) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  absl::StatusOr<AsyncFd> a = loop_->Adopt(s[0], FdKind::kNet);
  absl::StatusOr<AsyncFd> b = loop_->Adopt(s[1], FdKind::kNet);
  ASSERT_TRUE(a.ok() && b.ok());
  loop_.reset();
  absl::Status accept_status, connect_status;
  a->AsyncAccept(
      [&](absl::StatusOr<AsyncFd> c) { accept_status = c.status(); });
  // A well-formed address: the FD method's argument checks come first (an
  // empty address is InvalidArgument, as FD::Connect says, loop or not).
  SockAddr to;
  socklen_t len = sizeof(to.storage);
  ASSERT_EQ(getsockname(s[0], to.get(), &len), 0);
  to.len = len;
  b->AsyncConnect(to, [&](absl::Status st) { connect_status = std::move(st); });
  EXPECT_TRUE(absl::IsCancelled(accept_status)) << accept_status;
  EXPECT_TRUE(absl::IsCancelled(connect_status)) << connect_status;
}

// A coroutine of another (living) loop awaiting an FD of the destroyed one.
TEST_F(LoopLifetimeTest, CoroutineAwaitAfterTheLoopFailsWithCancelled) {
  ASSERT_TRUE(w_.fd().Write(std::string_view("x")).ok());
  loop_.reset();
  Loop other;
  absl::StatusOr<size_t> got = absl::UnknownError("not run");
  bool done = false;
  other.Spawn(
      [](AsyncFd r, absl::StatusOr<size_t>* got, bool* done) -> Task<void> {
        char c;
        *got = co_await r.Read(absl::MakeSpan(&c, 1));
        *done = true;
      }(r_, &got, &done));
  testing::RunLoopUntil(other, [&] { return done; });
  EXPECT_TRUE(absl::IsCancelled(got.status())) << got.status();
}

// The coroutine form belongs to its loop's thread: awaited from another
// loop's task it fails instead of touching the first loop's state.
TEST_F(LoopLifetimeTest, CoroutineAwaitOnAnotherLoopsThreadFails) {
  ASSERT_TRUE(w_.fd().Write(std::string_view("x")).ok());
  Loop other;
  absl::StatusOr<size_t> got = absl::UnknownError("not run");
  bool done = false;
  other.Spawn(
      [](AsyncFd r, absl::StatusOr<size_t>* got, bool* done) -> Task<void> {
        char c;
        *got = co_await r.Read(absl::MakeSpan(&c, 1));
        *done = true;
      }(r_, &got, &done));
  testing::RunLoopUntil(other, [&] { return done; });
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition)
      << got.status();
}

// Many threads starting operations on FDs of a destroyed loop: each fails
// alone (TSan: no shared loop state is touched).
TEST_F(LoopLifetimeTest, ConcurrentOperationsAfterTheLoopAllFail) {
  loop_.reset();
  std::atomic<int> cancelled{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        char c;
        r_.AsyncRead(absl::MakeSpan(&c, 1), [&](absl::StatusOr<size_t> n) {
          if (absl::IsCancelled(n.status())) ++cancelled;
        });
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(cancelled.load(), 4 * 500);
}

// The last handles of FDs (and of the loop's core) go away by assignment:
// each FD unregisters from the loop's poller before the poller is freed.
TEST_F(LoopLifetimeTest, AssigningOverTheLastHandlesAfterTheLoop) {
  loop_.reset();
  r_ = AsyncFd();
  AsyncFd copy = w_;
  w_ = AsyncFd();
  copy = r_;  // copy-assignment over the last handle of the write end
  EXPECT_FALSE(copy.valid());
}

TEST_F(LoopLifetimeTest, BlockingReadAfterTheLoopGetsData) {
  loop_.reset();
  ASSERT_TRUE(r_.fd().SetReadDeadline(In(kHang)).ok());
  std::thread writer([w = w_] {
    absl::SleepFor(absl::Milliseconds(5));
    EXPECT_TRUE(w.fd().Write(std::string_view("late")).ok());
  });
  char buf[8];
  absl::StatusOr<size_t> n = r_.fd().Read(absl::MakeSpan(buf));
  writer.join();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "late");
}

// The read was already waiting for the loop's thread to report readiness
// when the loop went away: it must take over the polling itself.
TEST_F(LoopLifetimeTest, ReadBlockedWhenTheLoopIsDestroyedGetsData) {
  ASSERT_TRUE(r_.fd().SetReadDeadline(In(kHang)).ok());
  std::atomic<pid_t> tid{0};
  absl::StatusOr<size_t> n = absl::UnknownError("not run");
  char buf[8];
  std::thread reader([&] {
    tid = testing::ThreadId();
    n = r_.fd().Read(absl::MakeSpan(buf));
  });
  while (tid.load() == 0) absl::SleepFor(absl::Microseconds(100));
  ASSERT_TRUE(testing::WaitUntilBlocked(tid.load()));
  loop_.reset();
  ASSERT_TRUE(w_.fd().Write(std::string_view("q")).ok());
  reader.join();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "q");
}

TEST_F(LoopLifetimeTest, DeadlineAndCloseAfterTheLoop) {
  loop_.reset();
  char c;
  ASSERT_TRUE(r_.fd().SetReadDeadline(In(absl::Milliseconds(20))).ok());
  EXPECT_TRUE(IsDeadlineExceeded(r_.fd().Read(absl::MakeSpan(&c, 1)).status()));
  ASSERT_TRUE(r_.fd().SetReadDeadline(absl::InfiniteFuture()).ok());
  std::atomic<pid_t> tid{0};
  absl::Status st;
  std::thread reader([&] {
    tid = testing::ThreadId();
    st = r_.fd().Read(absl::MakeSpan(&c, 1)).status();
  });
  while (tid.load() == 0) absl::SleepFor(absl::Microseconds(100));
  ASSERT_TRUE(testing::WaitUntilBlocked(tid.load()));
  // Close from this thread (the one that destroyed the loop) waits for the
  // read, as anywhere else.
  EXPECT_TRUE(r_.Close().ok());
  reader.join();
  EXPECT_TRUE(IsClosing(st)) << st;
}

}  // namespace
}  // namespace gopoll
