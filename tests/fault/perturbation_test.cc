// SPDX-License-Identifier: BSD-3-Clause
// Schedule perturbation at the system-call level: seeded random delays
// before every call of the library (after a waiter is armed and before the
// blocking call, before each poll/epoll_wait, between a would-block attempt
// and the wait, before close), over a fixed set of seeds. A failing seed
// reproduces with GOPOLL_PERTURB_SEEDS=<seed> (--test_env).
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"
#include "poll/testing/fault_injection.h"
#include "tests/loop_test_util.h"
#include "tests/posix_test_util.h"

namespace gopoll::testing {
namespace {

std::vector<uint64_t> Seeds() {
  std::vector<uint64_t> out;
  if (const char* env = getenv("GOPOLL_PERTURB_SEEDS")) {
    for (absl::string_view s : absl::StrSplit(env, ',')) {
      uint64_t v;
      if (absl::SimpleAtoi(s, &v)) out.push_back(v);
    }
  }
  if (out.empty()) out = {1, 2, 3, 5, 8, 13, 21, 34};
  return out;
}

class Perturbed : public FdLeakTest,
                  public ::testing::WithParamInterface<uint64_t> {
 protected:
  void SetUp() override {
    FdLeakTest::SetUp();
    SeedFaults(GetParam());
    AddRule({.calls = kAllIo | kPoll | kEpollWait | kClose | kAccept4 |
                      kConnect | kShutdown,
             .delay_max_us = 500,
             .one_in = 4});
  }
  void TearDown() override {
    ClearRules();
    FdLeakTest::TearDown();
  }
};

INSTANTIATE_TEST_SUITE_P(Seeds, Perturbed, ::testing::ValuesIn(Seeds()));

// The lost-EOF shape: the writer writes and closes while the reader waits;
// the reader must see every byte, then EOF, on both strategies.
TEST_P(Perturbed, EofAfterDataIsNeverLost) {
  for (WaitStrategy s :
       {WaitStrategy::kInterruptibleCall, WaitStrategy::kPoller}) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    FD r(sv[0]);
    FD w(sv[1]);
    if (!r.Init(FdKind::kNet, true, s).ok()) {  // plan9_stub: no kPoller
      w.Init(FdKind::kNet, false).IgnoreError();
      continue;
    }
    ASSERT_TRUE(w.Init(FdKind::kNet, true, s).ok());
    std::thread t([&] {
      for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(w.Write(absl::string_view("0123456789")).ok());
      }
      EXPECT_TRUE(w.Close().ok());
    });
    size_t total = 0;
    char buf[7];
    absl::Status end;
    for (;;) {
      absl::StatusOr<size_t> n = r.Read(absl::MakeSpan(buf));
      if (!n.ok()) {
        end = n.status();
        break;
      }
      total += *n;
    }
    t.join();
    EXPECT_TRUE(IsEof(end)) << end;
    EXPECT_EQ(total, 200u);
  }
}

// A deadline never fires early and always ends a blocked read; Close ends
// one with IsClosing.
TEST_P(Perturbed, DeadlineAndCloseEndBlockedReads) {
  FdPair p = MakeSocketPair();
  char c;
  const absl::Time start = absl::Now();
  ASSERT_TRUE(p.r->SetReadDeadline(start + absl::Milliseconds(10)).ok());
  absl::StatusOr<size_t> n = p.r->Read(absl::MakeSpan(&c, 1));
  EXPECT_TRUE(IsDeadlineExceeded(n.status())) << n.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(10));
  ASSERT_TRUE(p.r->SetReadDeadline(absl::InfiniteFuture()).ok());
  std::thread t([&] {
    absl::StatusOr<size_t> m = p.r->Read(absl::MakeSpan(&c, 1));
    EXPECT_TRUE(IsClosing(m.status())) << m.status();
  });
  absl::SleepFor(absl::Milliseconds(2));
  EXPECT_TRUE(p.r->Close().ok());
  t.join();
}

// The loop: data then EOF reach a coroutine, whatever the delays.
Task<void> ReadAll(AsyncFd c, size_t* total, absl::Status* end,
                   std::atomic<bool>* done) {
  char buf[5];
  for (;;) {
    absl::StatusOr<size_t> n = co_await c.Read(absl::MakeSpan(buf));
    if (!n.ok()) {
      *end = n.status();
      break;
    }
    *total += *n;
  }
  (void)c.Close();
  done->store(true);
}

TEST_P(Perturbed, LoopSeesDataThenEof) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  size_t total = 0;
  absl::Status end;
  std::atomic<bool> done{false};
  Loop loop;
  absl::StatusOr<AsyncFd> a = loop.Adopt(sv[0], FdKind::kNet);
  ASSERT_TRUE(a.ok()) << a.status();
  loop.Spawn(ReadAll(*a, &total, &end, &done));
  std::thread t([&] {
    FD w(sv[1]);
    ASSERT_TRUE(w.Init(FdKind::kNet, true).ok());
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(w.Write(absl::string_view("0123456789")).ok());
    }
    EXPECT_TRUE(w.Close().ok());
  });
  RunLoopUntil(loop, [&] { return done.load(); });
  t.join();
  EXPECT_TRUE(IsEof(end)) << end;
  EXPECT_EQ(total, 200u);
}

}  // namespace
}  // namespace gopoll::testing
