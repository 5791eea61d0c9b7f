// SPDX-License-Identifier: BSD-3-Clause
// The epoll backend's own rules: registration bookkeeping, leader/follower
// hand-off between many blocked threads, and ping-pong correctness.
#include "poll/unix/epoll_poller.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "poll/fd.h"
#include "tests/posix_test_util.h"

namespace gopoll::testing {
namespace {

using std::string_view_literals::operator""sv;

using EpollPollerTest = FdLeakTest;

TEST_F(EpollPollerTest, RegistrationFollowsFdLifetime) {
  size_t before = EpollPoller::Default().registered();
  {
    FdPair p = MakePipe();
    EXPECT_EQ(EpollPoller::Default().registered(), before + 2);
    ASSERT_TRUE(p.r->Close().ok());
    EXPECT_EQ(EpollPoller::Default().registered(), before + 1);
  }
  EXPECT_EQ(EpollPoller::Default().registered(), before);
}

TEST_F(EpollPollerTest, PollableFdIsNonBlockingAndRegularFileIsNot) {
  FdPair p = MakePipe();
  EXPECT_TRUE(fcntl(static_cast<int>(p.r->sysfd()), F_GETFL) & O_NONBLOCK);
  char path[] = "/tmp/poll_epoll_XXXXXX";
  int raw = mkstemp(path);
  ASSERT_GE(raw, 0);
  unlink(path);
  auto f = WrapFd(raw, FdKind::kFile);
  EXPECT_FALSE(f->pollable());
  EXPECT_FALSE(fcntl(raw, F_GETFL) & O_NONBLOCK);
}

TEST_F(EpollPollerTest, ManyBlockedThreadsAllWokenInAnyOrder) {
  // 16 threads each block on their own pipe; data arrives in random order.
  // Exactly one of them leads epoll_wait at any time; all must finish.
  constexpr int kThreads = 16;
  for (int round = 0; round < 20; ++round) {
    std::vector<FdPair> pipes(kThreads);
    for (auto& p : pipes) p = MakePipe();
    std::atomic<int> done{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < kThreads; ++i) {
      ts.emplace_back([&, i] {
        char c;
        auto r = pipes[i].r->Read(absl::MakeSpan(&c, 1));
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_EQ(c, static_cast<char>('a' + i));
        ++done;
      });
    }
    std::vector<int> order(kThreads);
    for (int i = 0; i < kThreads; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937(round));
    for (int i : order) {
      char c = static_cast<char>('a' + i);
      ASSERT_TRUE(pipes[i].w->Write(absl::MakeConstSpan(&c, 1)).ok());
    }
    for (auto& t : ts) t.join();
    EXPECT_EQ(done.load(), kThreads);
  }
}

TEST_F(EpollPollerTest, PingPongBetweenTwoThreads) {
  FdPair a = MakePipe(), b = MakePipe();
  constexpr int kRounds = 20000;
  std::thread echo([&] {
    char c;
    for (int i = 0; i < kRounds; ++i) {
      auto r = a.r->Read(absl::MakeSpan(&c, 1));
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_TRUE(b.w->Write(absl::MakeConstSpan(&c, 1)).ok());
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    char c = static_cast<char>(i);
    ASSERT_TRUE(a.w->Write(absl::MakeConstSpan(&c, 1)).ok());
    char got;
    auto r = b.r->Read(absl::MakeSpan(&got, 1));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(got, c);
  }
  echo.join();
}

TEST_F(EpollPollerTest, CloseWakesFollowerAndLeader) {
  // Two blocked readers: one leads epoll_wait, one follows. Closing each
  // must wake it whichever role it has.
  FdPair a = MakePipe(), b = MakePipe();
  absl::Status sa, sb;
  std::atomic<pid_t> ida{0}, idb{0};
  std::thread ta([&] {
    ida = ThreadId();
    char c;
    sa = a.r->Read(absl::MakeSpan(&c, 1)).status();
  });
  std::thread tb([&] {
    idb = ThreadId();
    char c;
    sb = b.r->Read(absl::MakeSpan(&c, 1)).status();
  });
  // Both wait (one in epoll_wait, one behind it) before the closes.
  while (ida.load() == 0 || idb.load() == 0) {
    absl::SleepFor(absl::Microseconds(100));
  }
  EXPECT_TRUE(WaitUntilBlocked(ida.load()));
  EXPECT_TRUE(WaitUntilBlocked(idb.load()));
  ASSERT_TRUE(a.r->Close().ok());
  ta.join();
  ASSERT_TRUE(b.r->Close().ok());
  tb.join();
  EXPECT_TRUE(IsClosing(sa)) << sa;
  EXPECT_TRUE(IsClosing(sb)) << sb;
}

}  // namespace
}  // namespace gopoll::testing
