// TimerQueue and the monotonic clock: ordering, re-arm, cancel (also from
// inside callbacks, and waiting for a running one), never firing early, and
// the heap against a model under random operations.
#include "poll/timer_queue.h"

#include <atomic>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "poll/monotonic_clock.h"

namespace gopoll {
namespace {

constexpr absl::Duration kHang = absl::Seconds(20);

struct Recorder {
  absl::Mutex mu;
  std::vector<std::pair<int, uint64_t>> fired;  // (id, seq)
  std::vector<int64_t> late;                    // MonoNow() - when
};

struct TestTimer {
  Timer t;
  int id = 0;
  int64_t when = 0;
  Recorder* rec = nullptr;
  static void Fire(void* arg, uint64_t seq) {
    auto* self = static_cast<TestTimer*>(arg);
    absl::MutexLock l(&self->rec->mu);
    self->rec->fired.push_back({self->id, seq});
    self->rec->late.push_back(MonoNow() - self->when);
  }
  void Init(int i, Recorder* r) {
    id = i;
    rec = r;
    t.fn = &Fire;
    t.arg = this;
  }
};

TEST(MonotonicClock, Conversions) {
  EXPECT_EQ(MonoFromAbsl(absl::InfiniteFuture()), kMonoNever);
  int64_t before = MonoNow();
  const int64_t past = MonoFromAbsl(absl::Now() - absl::Seconds(5));
  EXPECT_LE(past, MonoNow());
  const int64_t ancient = MonoFromAbsl(absl::InfinitePast());
  EXPECT_LE(ancient, MonoNow());
  int64_t in1s = MonoFromAbsl(absl::Now() + absl::Seconds(1));
  EXPECT_GT(in1s, before + 900'000'000);
  EXPECT_LT(in1s, MonoNow() + 1'100'000'000);
  // 400 years do not fit in int64 nanoseconds: saturates to "never".
  EXPECT_EQ(MonoFromAbsl(absl::Now() + absl::Hours(24 * 365 * 400)),
            kMonoNever);
}

TEST(TimerQueue, ManualFiresInOrderWithSeq) {
  TimerQueue q(false);
  Recorder rec;
  TestTimer ts[5];
  const int64_t base = 1000;
  int64_t whens[5] = {50, 10, 40, 20, 30};
  for (int i = 0; i < 5; ++i) {
    ts[i].Init(i, &rec);
    q.Arm(&ts[i].t, base + whens[i], 100 + i);
  }
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(q.NextWhen(), base + 10);
  EXPECT_EQ(q.RunExpired(base + 5), 0);
  EXPECT_EQ(q.RunExpired(base + 30), 3);
  EXPECT_EQ(q.RunExpired(base + 100), 2);
  ASSERT_EQ(rec.fired.size(), 5u);
  int order[5] = {1, 3, 4, 2, 0};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(rec.fired[i].first, order[i]);
    EXPECT_EQ(rec.fired[i].second, 100u + order[i]);
  }
  EXPECT_EQ(q.NextWhen(), kMonoNever);
}

TEST(TimerQueue, RearmEarlierLaterAndCancel) {
  TimerQueue q(false);
  Recorder rec;
  TestTimer a, b;
  a.Init(1, &rec);
  b.Init(2, &rec);
  q.Arm(&a.t, 100, 1);
  q.Arm(&b.t, 200, 1);
  q.Arm(&a.t, 300, 2);  // later
  EXPECT_EQ(q.NextWhen(), 200);
  q.Arm(&b.t, 50, 3);  // earlier
  EXPECT_EQ(q.NextWhen(), 50);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_TRUE(q.Cancel(&b.t));
  EXPECT_FALSE(q.Cancel(&b.t));
  EXPECT_EQ(q.RunExpired(1000), 1);
  ASSERT_EQ(rec.fired.size(), 1u);
  EXPECT_EQ(rec.fired[0], std::make_pair(1, uint64_t{2}));  // latest seq
  EXPECT_FALSE(q.Cancel(&a.t));                             // after firing
}

TEST(TimerQueue, HeapMatchesModelUnderRandomOperations) {
  TimerQueue q(false);
  constexpr int kTimers = 10000;
  std::vector<TestTimer> ts(kTimers);
  Recorder rec;
  std::map<int, int64_t> model;  // id -> when
  std::mt19937_64 rng(7);
  for (int i = 0; i < kTimers; ++i) ts[i].Init(i, &rec);
  for (int step = 0; step < 100000; ++step) {
    int i = static_cast<int>(rng() % kTimers);
    if (rng() % 4 == 0) {
      EXPECT_EQ(q.Cancel(&ts[i].t), model.erase(i) == 1);
    } else {
      int64_t when = static_cast<int64_t>(rng() % 1000000);
      q.Arm(&ts[i].t, when, step);
      model[i] = when;
    }
    if (step % 1000 == 0) {
      int64_t min = kMonoNever;
      for (auto& [id, w] : model) min = std::min(min, w);
      ASSERT_EQ(q.NextWhen(), min);
      ASSERT_EQ(q.size(), model.size());
    }
  }
  // Drain: callbacks come in non-decreasing `when` order.
  for (auto& [id, w] : model) ts[id].when = w;
  int ran = q.RunExpired(kMonoNever - 1);
  EXPECT_EQ(static_cast<size_t>(ran), model.size());
  int64_t prev = -1;
  for (auto& [id, seq] : rec.fired) {
    ASSERT_GE(model[id], prev);
    prev = model[id];
  }
}

TEST(TimerQueue, ThreadedNeverFiresEarly) {
  TimerQueue q(true);
  Recorder rec;
  constexpr int kTimers = 1000;
  std::vector<TestTimer> ts(kTimers);
  std::mt19937 rng(3);
  for (int i = 0; i < kTimers; ++i) {
    ts[i].Init(i, &rec);
    ts[i].when = MonoNow() + static_cast<int64_t>(rng() % 20'000'000);
    q.Arm(&ts[i].t, ts[i].when, 0);
  }
  absl::Time deadline = absl::Now() + kHang;
  for (;;) {
    {
      absl::MutexLock l(&rec.mu);
      if (rec.fired.size() == kTimers) break;
    }
    ASSERT_LT(absl::Now(), deadline);
    absl::SleepFor(absl::Milliseconds(5));
  }
  absl::MutexLock l(&rec.mu);
  for (int64_t late : rec.late) EXPECT_GE(late, 0);
}

TEST(TimerQueue, CancelFromInsideOwnCallbackAndOfAnother) {
  TimerQueue q(true);
  struct Ctx {
    TimerQueue* q;
    Timer self, other;
    absl::Notification done;
    bool cancel_self = true, cancel_other = true;
  } ctx;
  ctx.q = &q;
  ctx.self.arg = &ctx;
  ctx.self.fn = [](void* arg, uint64_t) {
    auto* c = static_cast<Ctx*>(arg);
    c->cancel_self = c->q->Cancel(&c->self);    // not armed: false, no wait
    c->cancel_other = c->q->Cancel(&c->other);  // armed: true
    c->done.Notify();
  };
  ctx.other.arg = &ctx;
  ctx.other.fn = [](void*, uint64_t) {
    ADD_FAILURE() << "cancelled timer ran";
  };
  q.Arm(&ctx.other, MonoNow() + 3'600'000'000'000, 0);
  q.Arm(&ctx.self, MonoNow(), 0);
  ASSERT_TRUE(ctx.done.WaitForNotificationWithTimeout(kHang));
  EXPECT_FALSE(ctx.cancel_self);
  EXPECT_TRUE(ctx.cancel_other);
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueue, CancelWaitsForRunningCallback) {
  TimerQueue q(true);
  struct Ctx {
    absl::Notification entered, release;
    std::atomic<bool> finished{false};
  } ctx;
  Timer t;
  t.arg = &ctx;
  t.fn = [](void* arg, uint64_t) {
    auto* c = static_cast<Ctx*>(arg);
    c->entered.Notify();
    c->release.WaitForNotification();
    absl::SleepFor(absl::Milliseconds(10));
    c->finished = true;
  };
  q.Arm(&t, MonoNow(), 0);
  ASSERT_TRUE(ctx.entered.WaitForNotificationWithTimeout(kHang));
  std::atomic<bool> cancel_returned{false};
  std::thread canceller([&] {
    EXPECT_FALSE(q.Cancel(&t));  // already popped: not armed
    cancel_returned = true;
    EXPECT_TRUE(ctx.finished.load());
  });
  absl::SleepFor(absl::Milliseconds(10));
  EXPECT_FALSE(cancel_returned.load());
  ctx.release.Notify();
  canceller.join();
  EXPECT_TRUE(cancel_returned.load());
}

TEST(TimerQueue, DestructorDropsArmedTimers) {
  Recorder rec;
  TestTimer a;
  a.Init(1, &rec);
  {
    TimerQueue q(true);
    q.Arm(&a.t, MonoNow() + 3'600'000'000'000, 0);
  }
  EXPECT_TRUE(rec.fired.empty());
}

TEST(TimerQueue, ConcurrentArmAndCancel) {
  TimerQueue q(true);
  Recorder rec;
  constexpr int kPerThread = 64;
  std::vector<TestTimer> ts(4 * kPerThread);
  for (size_t i = 0; i < ts.size(); ++i) ts[i].Init(static_cast<int>(i), &rec);
  std::vector<std::thread> threads;
  for (int p = 0; p < 4; ++p) {
    threads.emplace_back([&, p] {
      std::mt19937 rng(p);
      for (int i = 0; i < 20000; ++i) {
        TestTimer& t = ts[p * kPerThread + rng() % kPerThread];
        if (rng() % 3 == 0) {
          q.Cancel(&t.t);
        } else {
          q.Arm(&t.t, MonoNow() + static_cast<int64_t>(rng() % 200'000), i);
        }
      }
      for (int i = 0; i < kPerThread; ++i) q.Cancel(&ts[p * kPerThread + i].t);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(q.size(), 0u);
}

}  // namespace
}  // namespace gopoll
