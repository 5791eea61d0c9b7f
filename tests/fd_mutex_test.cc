// FdMutex: the behaviour of Go's fd_mutex_test.go (lock, close, close
// unblocking waiters, misuse, overflow, randomized stress).
#include "poll/fd_mutex.h"

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace gopoll {
namespace {

constexpr absl::Duration kHang = absl::Seconds(20);

TEST(FdMutex, Lock) {
  FdMutex mu;
  EXPECT_EQ(mu.Incref(), FdLockResult::kOk);
  EXPECT_FALSE(mu.Decref());
  EXPECT_EQ(mu.RWLock(true), FdLockResult::kOk);
  EXPECT_FALSE(mu.RWUnlock(true));
  EXPECT_EQ(mu.RWLock(false), FdLockResult::kOk);
  EXPECT_FALSE(mu.RWUnlock(false));
  // Reads and writes do not exclude each other.
  EXPECT_EQ(mu.RWLock(true), FdLockResult::kOk);
  EXPECT_EQ(mu.RWLock(false), FdLockResult::kOk);
  EXPECT_FALSE(mu.RWUnlock(true));
  EXPECT_FALSE(mu.RWUnlock(false));
}

TEST(FdMutex, Close) {
  FdMutex mu;
  EXPECT_EQ(mu.IncrefAndClose(), FdLockResult::kOk);
  EXPECT_TRUE(mu.IsClosed());
  EXPECT_EQ(mu.Incref(), FdLockResult::kClosing);
  EXPECT_EQ(mu.RWLock(true), FdLockResult::kClosing);
  EXPECT_EQ(mu.RWLock(false), FdLockResult::kClosing);
  EXPECT_EQ(mu.IncrefAndClose(), FdLockResult::kClosing);  // double close
  EXPECT_TRUE(mu.Decref());  // the last reference of a closed mutex
}

TEST(FdMutex, LastReferenceReportedExactlyOnce) {
  FdMutex mu;
  ASSERT_EQ(mu.Incref(), FdLockResult::kOk);
  ASSERT_EQ(mu.RWLock(true), FdLockResult::kOk);
  ASSERT_EQ(mu.IncrefAndClose(), FdLockResult::kOk);
  EXPECT_FALSE(mu.Decref());  // close's own reference
  EXPECT_FALSE(mu.RWUnlock(true));
  EXPECT_TRUE(mu.Decref());  // the very last one
}

TEST(FdMutex, CloseUnblocksWaiters) {
  FdMutex mu;
  ASSERT_EQ(mu.RWLock(true), FdLockResult::kOk);
  ASSERT_EQ(mu.RWLock(false), FdLockResult::kOk);
  constexpr int kWaiters = 4;
  std::atomic<int> closing{0};
  std::vector<std::thread> ts;
  absl::Notification all_done;
  std::atomic<int> done{0};
  for (int i = 0; i < kWaiters; ++i) {
    ts.emplace_back([&, i] {
      if (mu.RWLock(i % 2 == 0) == FdLockResult::kClosing) ++closing;
      if (++done == kWaiters) all_done.Notify();
    });
  }
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(done.load(), 0);  // still blocked behind the held locks
  ASSERT_EQ(mu.IncrefAndClose(), FdLockResult::kOk);
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(kHang));
  for (auto& t : ts) t.join();
  EXPECT_EQ(closing.load(), kWaiters);
  EXPECT_FALSE(mu.Decref());
  EXPECT_FALSE(mu.RWUnlock(true));
  EXPECT_TRUE(mu.RWUnlock(false));
}

TEST(FdMutex, UnlockWakesNextWaiter) {
  FdMutex mu;
  ASSERT_EQ(mu.RWLock(false), FdLockResult::kOk);
  absl::Notification got;
  std::thread t([&] {
    EXPECT_EQ(mu.RWLock(false), FdLockResult::kOk);
    got.Notify();
    EXPECT_FALSE(mu.RWUnlock(false));
  });
  absl::SleepFor(absl::Milliseconds(10));
  EXPECT_FALSE(got.HasBeenNotified());
  EXPECT_FALSE(mu.RWUnlock(false));
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(kHang));
  t.join();
}

TEST(FdMutex, MisuseIsFatal) {
  EXPECT_DEATH(
      {
        FdMutex mu;
        mu.Decref();
      },
      "inconsistent FdMutex");
  EXPECT_DEATH(
      {
        FdMutex mu;
        mu.RWUnlock(true);
      },
      "inconsistent FdMutex");
}

TEST(FdMutex, TooManyReferencesIsAnErrorNotACrash) {
  FdMutex mu;
  constexpr int kMax = (1 << 20) - 1;
  for (int i = 0; i < kMax; ++i) ASSERT_EQ(mu.Incref(), FdLockResult::kOk);
  EXPECT_EQ(mu.Incref(), FdLockResult::kTooManyRefs);
  EXPECT_EQ(mu.RWLock(true), FdLockResult::kTooManyRefs);
  EXPECT_EQ(mu.IncrefAndClose(), FdLockResult::kTooManyRefs);
  EXPECT_FALSE(mu.IsClosed());
  // The state is intact: drop one and the mutex works again.
  EXPECT_FALSE(mu.Decref());
  EXPECT_EQ(mu.RWLock(true), FdLockResult::kOk);
  EXPECT_FALSE(mu.RWUnlock(true));
  for (int i = 1; i < kMax; ++i) ASSERT_FALSE(mu.Decref());
  EXPECT_EQ(mu.IncrefAndClose(), FdLockResult::kOk);
  EXPECT_TRUE(mu.Decref());
}

// Go's TestMutexStress: random lock/unlock by several threads; at most one
// reader and one writer inside at any time; then a close.
TEST(FdMutex, Stress) {
#if defined(__SANITIZE_THREAD__)
  constexpr int kIters = 20000;
#elif defined(_WIN32)
  constexpr int kIters = 20000;  // ~20 s at 100000 under Wine
#else
  constexpr int kIters = 100000;
#endif
  constexpr int kThreads = 4;
  FdMutex mu;
  std::atomic<int> readers{0}, writers{0};
  std::vector<std::thread> ts;
  for (int p = 0; p < kThreads; ++p) {
    ts.emplace_back([&, p] {
      std::mt19937 rng(p);
      for (int i = 0; i < kIters; ++i) {
        switch (rng() % 4) {
          case 0:
            ASSERT_EQ(mu.Incref(), FdLockResult::kOk);
            ASSERT_FALSE(mu.Decref());
            break;
          case 1:
          case 2: {
            bool read = rng() % 2 == 0;
            std::atomic<int>& inside = read ? readers : writers;
            ASSERT_EQ(mu.RWLock(read), FdLockResult::kOk);
            ASSERT_EQ(inside.fetch_add(1), 0) << "two holders of one lock";
            for (int k = rng() % 32; k > 0; --k) std::this_thread::yield();
            ASSERT_EQ(inside.fetch_sub(1), 1);
            ASSERT_FALSE(mu.RWUnlock(read));
            break;
          }
          default:
            std::this_thread::yield();
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(mu.IncrefAndClose(), FdLockResult::kOk);
  EXPECT_TRUE(mu.Decref());
}

}  // namespace
}  // namespace gopoll
