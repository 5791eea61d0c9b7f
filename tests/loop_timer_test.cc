// SPDX-License-Identifier: BSD-3-Clause
// Loop timers (poll/loop/loop.h): PostAfter and co_await Sleep run on the
// loop thread, never before their delay, in delay order; a loop destroyed
// first drops them (never run, nothing leaked, no resumption of a destroyed
// coroutine). Runs on every backend (Linux, plan9_stub, Windows).
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "poll/loop/loop.h"
#include "tests/loop_test_util.h"

namespace gopoll {
namespace {

using testing::RunLoopUntil;

TEST(LoopTimerTest, PostAfterRunsOnTheLoopThreadNeverEarly) {
  Loop loop;
  const absl::Duration delay = absl::Milliseconds(30);
  const absl::Time start = absl::Now();
  absl::Time ran_at;
  bool in_loop = false;
  loop.PostAfter(delay, [&] {
    ran_at = absl::Now();
    in_loop = loop.InLoopThread();
  });
  RunLoopUntil(loop, [&] { return ran_at != absl::Time(); });
  EXPECT_TRUE(in_loop);
  EXPECT_GE(ran_at - start, delay);
}

// Timers run in the order of their deadlines (call time + delay). A test
// cannot know a deadline exactly (the caller may be descheduled between two
// calls), only a window [before the call, after it] + delay: a timer must
// not run after one whose whole window lies later than its own.
struct DeadlineWindow {
  absl::Time lo, hi;
};
void ExpectRanInDeadlineOrder(const std::vector<int>& order,
                              const std::vector<DeadlineWindow>& windows) {
  for (size_t a = 0; a < order.size(); ++a) {
    for (size_t b = a + 1; b < order.size(); ++b) {
      const DeadlineWindow& first = windows[order[a]];
      const DeadlineWindow& second = windows[order[b]];
      EXPECT_LE(first.lo, second.hi)
          << "timer " << order[a] << " ran before timer " << order[b]
          << " although its deadline was later";
    }
  }
}

TEST(LoopTimerTest, PostAfterRunsInDeadlineOrderNeverEarly) {
  Loop loop;
  std::vector<int> order;
  std::vector<DeadlineWindow> windows(5);
  std::vector<absl::Time> ran_at(5);
  for (int i : {4, 0, 3, 1, 2}) {
    const absl::Duration d = absl::Milliseconds(8 * (i + 1));
    windows[i].lo = absl::Now() + d;
    loop.PostAfter(d, [&order, &ran_at, i] {
      ran_at[i] = absl::Now();
      order.push_back(i);
    });
    windows[i].hi = absl::Now() + d;
  }
  RunLoopUntil(loop, [&] { return order.size() == 5; });
  ASSERT_EQ(order.size(), 5u);
  ExpectRanInDeadlineOrder(order, windows);
  for (int i = 0; i < 5; ++i) EXPECT_GE(ran_at[i], windows[i].lo) << i;
}

TEST(LoopTimerTest, ZeroAndNegativeDelaysRunLikePost) {
  Loop loop;
  int ran = 0;
  loop.PostAfter(absl::ZeroDuration(), [&] { ++ran; });
  loop.PostAfter(-absl::Seconds(1), [&] { ++ran; });
  RunLoopUntil(loop, [&] { return ran == 2; });
  EXPECT_EQ(ran, 2);
}

TEST(LoopTimerTest, InfiniteDelayNeverRunsAndFreesTheFunction) {
  auto token = std::make_shared<int>(0);
  Loop loop;
  loop.PostAfter(absl::InfiniteDuration(), [token] { ++*token; });
  EXPECT_EQ(token.use_count(), 1);  // dropped at once, not kept forever
  loop.RunOnce(absl::Milliseconds(5));
  EXPECT_EQ(*token, 0);
}

TEST(LoopTimerTest, PostAfterFromAnotherThread) {
  Loop loop;
  std::atomic<bool> ran{false};
  std::thread t([&] {
    loop.PostAfter(absl::Milliseconds(5), [&] { ran = loop.InLoopThread(); });
  });
  t.join();
  RunLoopUntil(loop, [&] { return ran.load(); });
  EXPECT_TRUE(ran.load());
}

// The function of a PostAfter still pending when the loop is destroyed never
// runs, and is freed (its captured state released) once its timer fires.
TEST(LoopTimerTest, PendingPostAfterIsDroppedWhenTheLoopGoesAway) {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  {
    Loop loop;
    loop.PostAfter(absl::Milliseconds(20), [token] { ++*token; });
    token.reset();
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!watch.expired() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(watch.expired()) << "the dropped function was never freed";
}

TEST(LoopTimerTest, SleepResumesTheCoroutineOnTheLoopNeverEarly) {
  Loop loop;
  absl::Duration slept;
  bool in_loop = false;
  bool done = false;
  loop.Spawn([](Loop* l, absl::Duration* slept, bool* in_loop,
                bool* done) -> Task<void> {
    const absl::Time start = absl::Now();
    co_await l->Sleep(absl::Milliseconds(25));
    *slept = absl::Now() - start;
    *in_loop = l->InLoopThread();
    co_await l->Sleep(absl::ZeroDuration());  // ready at once
    *done = true;
  }(&loop, &slept, &in_loop, &done));
  RunLoopUntil(loop, [&] { return done; });
  EXPECT_TRUE(in_loop);
  EXPECT_GE(slept, absl::Milliseconds(25));
}

// Many coroutines sleeping different times wake in the order of their
// deadlines, never early. Sleeper k arms its timer after sleeper k-1 (they
// start one after the other on the loop thread), so its deadline lies
// between its own start and the next sleeper's start, plus its delay.
TEST(LoopTimerTest, ManySleepersWakeInDeadlineOrderNeverEarly) {
  Loop loop;
  constexpr int kSleepers = 50;
  std::vector<int> order;
  std::vector<absl::Time> started(kSleepers), woke(kSleepers);
  auto delay = [](int i) { return absl::Milliseconds(2 * i + 1); };
  for (int i = kSleepers - 1; i >= 0; --i) {
    loop.Spawn([](Loop* l, int i, absl::Duration d, std::vector<int>* order,
                  std::vector<absl::Time>* started,
                  std::vector<absl::Time>* woke) -> Task<void> {
      (*started)[i] = absl::Now();
      co_await l->Sleep(d);
      (*woke)[i] = absl::Now();
      order->push_back(i);
    }(&loop, i, delay(i), &order, &started, &woke));
  }
  RunLoopUntil(loop, [&] { return order.size() == kSleepers; });
  ASSERT_EQ(order.size(), static_cast<size_t>(kSleepers));
  std::vector<DeadlineWindow> windows(kSleepers);
  for (int i = 0; i < kSleepers; ++i) {
    // Spawned in the order kSleepers-1 .. 0: the next one to start is i-1.
    windows[i].lo = started[i] + delay(i);
    windows[i].hi =
        (i > 0 ? started[i - 1] : absl::InfiniteFuture()) + delay(i);
    EXPECT_GE(woke[i], windows[i].lo) << i;
  }
  ExpectRanInDeadlineOrder(order, windows);
}

// A spawned task asleep when the loop is destroyed is destroyed with it and
// never resumed (ASan would see a resumption of the freed frame).
TEST(LoopTimerTest, SleepingTaskIsDestroyedNotResumedWithTheLoop) {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  std::atomic<bool> resumed{false};
  {
    Loop loop;
    loop.Spawn([](Loop* l, std::shared_ptr<int> token,
                  std::atomic<bool>* resumed) -> Task<void> {
      co_await l->Sleep(absl::Milliseconds(20));
      *resumed = true;
      ++*token;
    }(&loop, token, &resumed));
    token.reset();
    loop.RunOnce(absl::Milliseconds(1));  // starts the task: it sleeps
  }
  EXPECT_TRUE(watch.expired());  // the frame (holding the token) is gone
  absl::SleepFor(absl::Milliseconds(60));  // past the timer: it fires
  EXPECT_FALSE(resumed.load());
}

}  // namespace
}  // namespace gopoll
