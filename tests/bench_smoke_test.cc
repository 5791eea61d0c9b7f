// SPDX-License-Identifier: BSD-3-Clause
// Keeps the benchmark bodies of //bench:fd_vs_raw compiling and correct:
// each runs a few rounds and its bytes are checked. No duration is asserted.
#include <cstdint>
#include <vector>

#include "bench/bodies.h"
#include "bench/loop_bodies.h"
#include "gtest/gtest.h"
#include "poll/fd.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BENCH_SMOKE_CLANG_SANITIZER 1
#endif
#endif

namespace gopoll::bench {
namespace {

TEST(BenchSmoke, FileReadsSeeThePattern) {
  // 16 blocks: 40 reads rewind twice.
  FileReader r(16 * FileReader::kBlock);
  EXPECT_EQ(r.ReadRaw(40), 40 * 4096);
  EXPECT_EQ(r.ReadFd(40), 40 * 4096);
  EXPECT_EQ(r.PreadRaw(40), 40 * 4096);
  EXPECT_EQ(r.PreadFd(40), 40 * 4096);
  EXPECT_EQ(r.mismatches(), 0);
}

TEST(BenchSmoke, PingPongsEchoEveryByte) {
  struct Case {
    const char* name;
    PingPongOptions o;
  };
  constexpr WaitStrategy kPoller = WaitStrategy::kPoller;
  //                                fd     deadline pinned busy  idle
  std::vector<Case> cases = {
      {"raw", {false, false, false, false, 0}},
      {"fd", {true, false, false, false, 0}},
      {"fd_deadline", {true, true, false, false, 0}},
      {"fd_idle", {true, false, false, false, 100}},
      {"pinned_raw", {false, false, true, false, 0}},
      {"pinned_fd", {true, false, true, false, 0}},
  };
  if (HasPoller()) {
    cases.push_back({"fd_epoll", {true, false, false, false, 0, kPoller}});
    cases.push_back(
        {"fd_epoll_deadline", {true, true, false, false, 0, kPoller}});
    cases.push_back(
        {"pinned_fd_epoll", {true, false, true, false, 0, kPoller}});
  }
  for (bool busy : {false, true}) {
    for (Case c : cases) {
      c.o.busy_other = busy;
      SCOPED_TRACE(testing::Message() << c.name << (busy ? " busy" : " quiet"));
      PingPongStats s = PingPong::Run(c.o, 300);
      EXPECT_EQ(s.rounds, 300);
      EXPECT_EQ(s.bad_bytes, 0);
      EXPECT_GE(s.cpu_seconds, 0);
    }
  }
  SetIdleFds(0);
}

TEST(BenchSmoke, RoundTripsOneByOne) {
  PingPong p(PingPongOptions{});
  p.Begin();
  for (int i = 0; i < 256; ++i) EXPECT_TRUE(p.RoundTrip(static_cast<char>(i)));
  PingPongStats s = p.End();
  EXPECT_EQ(s.rounds, 256);
  EXPECT_EQ(s.bad_bytes, 0);
}

TEST(BenchSmoke, DeadlinesRearm) {
  ArmedDeadlines d(101);
  EXPECT_EQ(d.size(), 101);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(d.Rearm(i));
}

TEST(BenchSmoke, MemoryIsMeasured) {
  double bytes = HeapBytesPerIdleFd(100);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
    defined(BENCH_SMOKE_CLANG_SANITIZER)
  // Sanitizer allocators do not report to mallinfo2(): nothing to check.
  (void)bytes;
#else
  // The FD objects are on the heap, so the figure is of the order of
  // sizeof(FD); frees by other threads in the same arena meanwhile (earlier
  // tests' helpers) can pull it a few percent below, so only the order is
  // checked.
  EXPECT_GT(bytes, 0.5 * static_cast<double>(sizeof(FD)));
  EXPECT_LT(bytes, 16.0 * static_cast<double>(sizeof(FD)));
#endif
}

TEST(BenchSmoke, LoopPingPongsEchoEveryByte) {
  for (LoopForm f : {LoopForm::kRawEpoll, LoopForm::kRawUring,
                     LoopForm::kCallback, LoopForm::kCoroutine}) {
    for (LoopBackend b : {LoopBackend::kEpoll, LoopBackend::kIoUring}) {
      LoopPingPong p(f, b);
      if (!p.ok()) continue;  // the raw io_uring loop without io_uring
      EXPECT_EQ(p.Run(200), 0);
      EXPECT_EQ(p.Run(1), 0);  // the same pair again, one more round
    }
  }
}

}  // namespace
}  // namespace gopoll::bench
