// Keeps the benchmark bodies compiling and correct: each runs a few rounds
// and its bytes are checked. No durations are asserted.
#include "bench/bodies.h"
#include "gtest/gtest.h"
#include "poll/fd.h"

namespace gopoll::bench {
namespace {

TEST(BenchSmoke, FileReadsSeeTheSameBytes) {
  FileReader r(1 << 16);
  EXPECT_EQ(r.ReadRaw(40), 40 * 4096);
  uint64_t raw = r.last_sum();
  EXPECT_EQ(r.ReadFd(40), 40 * 4096);
  EXPECT_EQ(r.last_sum(), raw);
}

TEST(BenchSmoke, PingPongsEchoEveryByte) {
  for (bool fd : {false, true}) {
    for (bool deadline : {false, true}) {
      if (deadline && !fd) continue;
      for (bool pinned : {false, true}) {
        for (bool busy : {false, true}) {
          PingPongOptions o{fd, deadline, pinned, busy, fd ? 100 : 0};
          PingPongResult r = PingPong(o, 300);
          EXPECT_EQ(r.rounds, 300);
          EXPECT_EQ(r.bad_bytes, 0);
        }
      }
    }
  }
}

TEST(BenchSmoke, DeadlinesRearmAndMemoryIsMeasured) {
  ArmedDeadlines d(100);
  EXPECT_EQ(d.size(), 100);
  for (int i = 0; i < 1000; ++i) d.Rearm(i);
  double bytes = BytesPerIdleFd(100);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Sanitizer allocators do not report to mallinfo2(): nothing to check.
  (void)bytes;
#else
  EXPECT_GE(bytes,
            static_cast<double>(sizeof(gopoll::FD)));  // the FD object at least
#endif
}

}  // namespace
}  // namespace gopoll::bench
