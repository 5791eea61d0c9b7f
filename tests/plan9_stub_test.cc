// The plan9_stub backend's own contract: blocked calls interrupted by a
// signal, never a lost interrupt, never a stray signal, no lost bytes.
// (The shared semantics run in fd_semantics_test under this config too.)
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <string_view>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "poll/fd.h"
#include "poll/plan9_stub/interrupter.h"
#include "tests/posix_test_util.h"

namespace gopoll::testing {
namespace {

using plan9_stub::SyscallInterrupter;
using Plan9Stub = FdLeakTest;

TEST_F(Plan9Stub, DescriptorsStayBlocking) {
  FdPair p = MakePipe();
  EXPECT_TRUE(p.r->pollable());  // deadlines work
  EXPECT_FALSE(fcntl(static_cast<int>(p.r->sysfd()), F_GETFL) & O_NONBLOCK);
}

TEST_F(Plan9Stub, BlockedReadInterruptedByDeadlineAndClose) {
  uint64_t stray = SyscallInterrupter::StraySignals();
  FdPair p = MakePipe();
  ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Milliseconds(20))).ok());
  char c;
  EXPECT_TRUE(IsDeadlineExceeded(p.r->Read(absl::MakeSpan(&c, 1)).status()));
  ASSERT_TRUE(p.r->SetReadDeadline(absl::InfiniteFuture()).ok());
  absl::Status got;
  absl::Notification done;
  std::thread t([&] {
    got = p.r->Read(absl::MakeSpan(&c, 1)).status();
    done.Notify();
  });
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_TRUE(p.r->Close().ok());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kHang));
  t.join();
  EXPECT_TRUE(IsClosing(got)) << got;
  EXPECT_EQ(SyscallInterrupter::StraySignals(), stray);
}

TEST_F(Plan9Stub, InterruptedWriteKeepsBytesWritten) {
  // A blocking write into a full pipe is interrupted by its deadline; the
  // bytes it did write are reported and arrive, none twice.
  FdPair p = MakePipe();
  ASSERT_TRUE(p.w->SetWriteDeadline(In(absl::Milliseconds(30))).ok());
  std::string big(1 << 20, 'w');
  size_t written = 0;
  auto st = p.w->Write(big, &written).status();
  EXPECT_TRUE(IsDeadlineExceeded(st)) << st;
  EXPECT_GT(written, 0u);
  EXPECT_LT(written, big.size());
  ASSERT_TRUE(p.w->Close().ok());
  size_t got = 0;
  char buf[65536];
  for (;;) {
    auto r = p.r->Read(absl::MakeSpan(buf));
    if (!r.ok()) {
      EXPECT_TRUE(IsEof(r.status())) << r.status();
      break;
    }
    got += *r;
  }
  EXPECT_EQ(got, written);
}

// Deadlines so short that they often fire just before the thread enters
// read(): the re-sent signal must still interrupt it (a lost interrupt
// would hang this test), and no signal may arrive outside an operation.
TEST_F(Plan9Stub, StressNoLostInterruptNoStraySignal) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr int kRounds = 5000;
#else
  constexpr int kRounds = 20000;
#endif
  uint64_t stray = SyscallInterrupter::StraySignals();
  FdPair p = MakePipe();
  char c;
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(
        p.r->SetReadDeadline(In(absl::Nanoseconds((i * 7919) % 30000))).ok());
    auto r = p.r->Read(absl::MakeSpan(&c, 1));
    ASSERT_TRUE(IsDeadlineExceeded(r.status())) << r.status();
  }
  EXPECT_EQ(SyscallInterrupter::StraySignals(), stray);
}

}  // namespace
}  // namespace gopoll::testing
