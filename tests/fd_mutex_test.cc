// SPDX-License-Identifier: BSD-3-Clause
// FdMutex: the behaviour of Go's fd_mutex_test.go (lock, close, close
// unblocking waiters, misuse, overflow, randomized stress).
#include "poll/internal/fd_mutex.h"

#include <atomic>
#include <cstdint>
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
  internal::FdMutex mu;
  EXPECT_EQ(mu.Incref(), internal::FdLockResult::kOk);
  EXPECT_FALSE(mu.Decref());
  EXPECT_EQ(mu.RWLock(true), internal::FdLockResult::kOk);
  EXPECT_FALSE(mu.RWUnlock(true));
  EXPECT_EQ(mu.RWLock(false), internal::FdLockResult::kOk);
  EXPECT_FALSE(mu.RWUnlock(false));
  // Reads and writes do not exclude each other.
  EXPECT_EQ(mu.RWLock(true), internal::FdLockResult::kOk);
  EXPECT_EQ(mu.RWLock(false), internal::FdLockResult::kOk);
  EXPECT_FALSE(mu.RWUnlock(true));
  EXPECT_FALSE(mu.RWUnlock(false));
}

TEST(FdMutex, Close) {
  internal::FdMutex mu;
  EXPECT_EQ(mu.IncrefAndClose(), internal::FdLockResult::kOk);
  EXPECT_TRUE(mu.IsClosed());
  EXPECT_EQ(mu.Incref(), internal::FdLockResult::kClosing);
  EXPECT_EQ(mu.RWLock(true), internal::FdLockResult::kClosing);
  EXPECT_EQ(mu.RWLock(false), internal::FdLockResult::kClosing);
  EXPECT_EQ(mu.IncrefAndClose(),
            internal::FdLockResult::kClosing);  // double close
  EXPECT_TRUE(mu.Decref());  // the last reference of a closed mutex
}

TEST(FdMutex, LastReferenceReportedExactlyOnce) {
  internal::FdMutex mu;
  ASSERT_EQ(mu.Incref(), internal::FdLockResult::kOk);
  ASSERT_EQ(mu.RWLock(true), internal::FdLockResult::kOk);
  ASSERT_EQ(mu.IncrefAndClose(), internal::FdLockResult::kOk);
  EXPECT_FALSE(mu.Decref());  // close's own reference
  EXPECT_FALSE(mu.RWUnlock(true));
  EXPECT_TRUE(mu.Decref());  // the very last one
}

TEST(FdMutex, CloseUnblocksWaiters) {
  internal::FdMutex mu;
  ASSERT_EQ(mu.RWLock(true), internal::FdLockResult::kOk);
  ASSERT_EQ(mu.RWLock(false), internal::FdLockResult::kOk);
  constexpr int kWaiters = 4;
  std::atomic<int> closing{0};
  std::vector<std::thread> ts;
  absl::Notification all_done;
  std::atomic<int> done{0};
  for (int i = 0; i < kWaiters; ++i) {
    ts.emplace_back([&, i] {
      if (mu.RWLock(i % 2 == 0) == internal::FdLockResult::kClosing) ++closing;
      if (++done == kWaiters) all_done.Notify();
    });
  }
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(done.load(), 0);  // still blocked behind the held locks
  ASSERT_EQ(mu.IncrefAndClose(), internal::FdLockResult::kOk);
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(kHang));
  for (auto& t : ts) t.join();
  EXPECT_EQ(closing.load(), kWaiters);
  EXPECT_FALSE(mu.Decref());
  EXPECT_FALSE(mu.RWUnlock(true));
  EXPECT_TRUE(mu.RWUnlock(false));
}

TEST(FdMutex, UnlockWakesNextWaiter) {
  internal::FdMutex mu;
  ASSERT_EQ(mu.RWLock(false), internal::FdLockResult::kOk);
  absl::Notification got;
  std::thread t([&] {
    EXPECT_EQ(mu.RWLock(false), internal::FdLockResult::kOk);
    got.Notify();
    EXPECT_FALSE(mu.RWUnlock(false));
  });
  absl::SleepFor(absl::Milliseconds(10));
  EXPECT_FALSE(got.HasBeenNotified());
  EXPECT_FALSE(mu.RWUnlock(false));
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(kHang));
  t.join();
}

// Go's TestMutexPanic: dropping a reference or a lock that is not held is a
// fatal bug.
TEST(FdMutex, MisuseIsFatal) {
  constexpr char kMsg[] = "inconsistent FdMutex";
  internal::FdMutex mu;
  EXPECT_DEATH((void)mu.Decref(), kMsg);
  EXPECT_DEATH((void)mu.RWUnlock(true), kMsg);
  EXPECT_DEATH((void)mu.RWUnlock(false), kMsg);
  EXPECT_DEATH(
      {
        (void)mu.Incref();
        (void)mu.Decref();
        (void)mu.Decref();
      },
      kMsg);
  for (bool read : {true, false}) {
    EXPECT_DEATH(
        {
          (void)mu.RWLock(read);
          (void)mu.RWUnlock(read);
          (void)mu.RWUnlock(read);
        },
        kMsg);
    // Holding one lock does not allow releasing the other.
    EXPECT_DEATH(
        {
          (void)mu.RWLock(read);
          (void)mu.RWUnlock(!read);
        },
        kMsg);
  }
  // The death tests ran in child processes: mu is untouched and usable.
  EXPECT_EQ(mu.Incref(), internal::FdLockResult::kOk);
  EXPECT_FALSE(mu.Decref());
  EXPECT_EQ(mu.RWLock(false), internal::FdLockResult::kOk);
  EXPECT_FALSE(mu.RWUnlock(false));
}

TEST(FdMutex, TooManyReferencesIsAnErrorNotACrash) {
  internal::FdMutex mu;
  constexpr int kMax = (1 << 20) - 1;
  for (int i = 0; i < kMax; ++i)
    ASSERT_EQ(mu.Incref(), internal::FdLockResult::kOk);
  EXPECT_EQ(mu.Incref(), internal::FdLockResult::kTooManyRefs);
  EXPECT_EQ(mu.RWLock(true), internal::FdLockResult::kTooManyRefs);
  EXPECT_EQ(mu.IncrefAndClose(), internal::FdLockResult::kTooManyRefs);
  EXPECT_FALSE(mu.IsClosed());
  // The state is intact: drop one and the mutex works again.
  EXPECT_FALSE(mu.Decref());
  EXPECT_EQ(mu.RWLock(true), internal::FdLockResult::kOk);
  EXPECT_FALSE(mu.RWUnlock(true));
  for (int i = 1; i < kMax; ++i) ASSERT_FALSE(mu.Decref());
  EXPECT_EQ(mu.IncrefAndClose(), internal::FdLockResult::kOk);
  EXPECT_TRUE(mu.Decref());
}

// Go's TestMutexStress: threads take and drop references and both locks at
// random; at most one reader and one writer may be inside at any time. The
// plain section counters are touched only under their lock, so TSan also
// checks that RWLock/RWUnlock order memory like a mutex. Up to 3 yields inside
// a section make about half of the lock attempts find the lock held.
TEST(FdMutex, Stress) {
  constexpr int kThreads = 4;
  constexpr int kIters = 20000;
  internal::FdMutex mu;
  std::atomic<int> inside[2] = {0, 0};  // [read]: holders of that lock
  int64_t sections[2] = {0, 0};         // [read]: guarded by that lock
  std::atomic<int64_t> entered[2] = {0, 0};
  std::vector<std::thread> ts;
  for (int p = 0; p < kThreads; ++p) {
    ts.emplace_back([&, p] {
      std::mt19937 rng(p);
      int64_t mine[2] = {0, 0};
      for (int i = 0; i < kIters; ++i) {
        switch (rng() % 4) {
          case 0:
            ASSERT_EQ(mu.Incref(), internal::FdLockResult::kOk);
            EXPECT_FALSE(mu.Decref());
            break;
          case 1:
          case 2: {
            const bool read = rng() % 2 == 0;
            ASSERT_EQ(mu.RWLock(read), internal::FdLockResult::kOk);
            EXPECT_EQ(inside[read].fetch_add(1), 0) << "two holders, " << read;
            ++sections[read];
            for (int k = rng() % 4; k > 0; --k) std::this_thread::yield();
            EXPECT_EQ(inside[read].fetch_sub(1), 1) << "two holders, " << read;
            EXPECT_FALSE(mu.RWUnlock(read));
            ++mine[read];
            break;
          }
          default:
            std::this_thread::yield();
        }
      }
      entered[0] += mine[0];
      entered[1] += mine[1];
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(sections[0], entered[0].load());
  EXPECT_EQ(sections[1], entered[1].load());
  EXPECT_GT(sections[0], 0);
  EXPECT_GT(sections[1], 0);
  ASSERT_EQ(mu.IncrefAndClose(), internal::FdLockResult::kOk);
  EXPECT_TRUE(mu.Decref());
}

}  // namespace
}  // namespace gopoll
