// SPDX-License-Identifier: BSD-3-Clause
// TimerQueue and the monotonic clock: conversions, ordering, re-arm, cancel
// (before and after firing, from inside callbacks, waiting for a running
// one), never firing early, the heap against a model under random
// operations, destruction with armed timers, and concurrent Arm/Cancel.
// Waits are bounded only to turn a hang into a failure; no test asserts how
// long anything takes.
#include "poll/internal/timer_queue.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "poll/internal/monotonic_clock.h"

namespace gopoll {

// Checks the heap from inside (friend of TimerQueue).
class TimerQueueTestPeer {
 public:
  // Every entry's key is >= its parent's, <= its timer's `when`, and its
  // timer knows its index and queue.
  static ::testing::AssertionResult HeapOk(internal::TimerQueue& q) {
    absl::MutexLock l(&q.mu_);
    const auto& h = q.heap_;
    for (size_t i = 0; i < h.size(); ++i) {
      if (h[i].timer->index_ != static_cast<int32_t>(i)) {
        return ::testing::AssertionFailure() << "index at " << i;
      }
      if (h[i].timer->queue_ != &q) {
        return ::testing::AssertionFailure() << "queue at " << i;
      }
      if (h[i].key > h[i].timer->when_) {
        return ::testing::AssertionFailure() << "key after when at " << i;
      }
      if (i > 0 && h[(i - 1) / 4].key > h[i].key) {
        return ::testing::AssertionFailure() << "order at " << i;
      }
    }
    return ::testing::AssertionSuccess();
  }
};

namespace {

constexpr absl::Duration kHang = absl::Seconds(30);
constexpr int64_t kHour = int64_t{3600} * 1'000'000'000;

// Waits (bounded) until pred() holds.
template <typename Pred>
bool Eventually(Pred pred) {
  const absl::Time limit = absl::Now() + kHang;
  while (!pred()) {
    if (absl::Now() > limit) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// Records firings: (id, seq, MonoNow() at the call, the `when` armed).
struct Recorder {
  struct Firing {
    int id;
    uint64_t seq;
    int64_t at;
    int64_t when;
  };
  absl::Mutex mu;
  std::vector<Firing> fired ABSL_GUARDED_BY(mu);

  size_t count() {
    absl::MutexLock l(&mu);
    return fired.size();
  }
  std::vector<Firing> Take() {
    absl::MutexLock l(&mu);
    return std::move(fired);
  }
};

struct TestTimer {
  internal::Timer t;
  int id = 0;
  int64_t when = 0;  // as armed by the test (read by Fire)
  Recorder* rec = nullptr;

  void Init(int i, Recorder* r) {
    id = i;
    rec = r;
    t.fn = &Fire;
    t.arg = this;
  }
  void Arm(internal::TimerQueue& q, int64_t w, uint64_t seq) {
    when = w;
    q.Arm(&t, w, seq);
  }
  static void Fire(void* arg, uint64_t seq) {
    auto* self = static_cast<TestTimer*>(arg);
    const int64_t at = internal::MonoNow();
    absl::MutexLock l(&self->rec->mu);
    self->rec->fired.push_back({self->id, seq, at, self->when});
  }
};

// Arms a timer due now and waits for it: a threaded queue has then run
// everything that was due before it (one thread, in `when` order).
void Flush(internal::TimerQueue& q) {
  absl::Notification n;
  internal::Timer t;
  t.fn = [](void* arg, uint64_t) {
    static_cast<absl::Notification*>(arg)->Notify();
  };
  t.arg = &n;
  q.Arm(&t, internal::MonoNow(), 0);
  ASSERT_TRUE(n.WaitForNotificationWithTimeout(kHang));
}

// --- Monotonic clock ---------------------------------------------------------

TEST(MonotonicClock, NowNeverGoesBack) {
  int64_t prev = internal::MonoNow();
  for (int i = 0; i < 10000; ++i) {
    const int64_t now = internal::MonoNow();
    ASSERT_GE(now, prev);
    prev = now;
  }
}

// A past time converts to at most MonoNow() read after the conversion.
bool NotAfterNow(int64_t mono) { return mono <= internal::MonoNow(); }

TEST(MonotonicClock, FromAbslInfiniteAndPast) {
  EXPECT_EQ(internal::MonoFromAbsl(absl::InfiniteFuture()),
            internal::kMonoNever);
  EXPECT_EQ(internal::MonoFromAbsl(absl::InfiniteFuture(), absl::Now()),
            internal::kMonoNever);
  EXPECT_TRUE(NotAfterNow(internal::MonoFromAbsl(absl::Now())));
  EXPECT_TRUE(
      NotAfterNow(internal::MonoFromAbsl(absl::Now() - absl::Seconds(5))));
  EXPECT_TRUE(NotAfterNow(internal::MonoFromAbsl(absl::InfinitePast())));
  EXPECT_TRUE(NotAfterNow(internal::MonoFromAbsl(absl::UnixEpoch())));
  // 400 years do not fit in int64 nanoseconds: saturates to "never".
  EXPECT_EQ(internal::MonoFromAbsl(absl::Now() + absl::Hours(24 * 365 * 400)),
            internal::kMonoNever);
}

// MonoFromAbsl(wall + d) is MonoNow() + d, measured between clock reads
// taken around the call: bounds that hold however slow the machine is.
void ExpectConverted(absl::Duration d) {
  const int64_t mono_before = internal::MonoNow();
  const absl::Time wall_before = absl::Now();
  const int64_t got = internal::MonoFromAbsl(wall_before + d);
  const absl::Time wall_after = absl::Now();
  const int64_t mono_after = internal::MonoNow();
  const int64_t dn = absl::ToInt64Nanoseconds(d);
  const int64_t wall_gap = absl::ToInt64Nanoseconds(wall_after - wall_before);
  EXPECT_GE(got, mono_before + dn - wall_gap) << d;
  EXPECT_LE(got, mono_after + dn) << d;
}

TEST(MonotonicClock, FromAbslFuture) {
  ExpectConverted(absl::Nanoseconds(1));
  ExpectConverted(absl::Milliseconds(1));
  ExpectConverted(absl::Seconds(1));
  ExpectConverted(absl::Hours(24 * 365));
  const int64_t m =
      internal::MonoFromAbsl(absl::Now() + absl::Hours(24 * 365 * 100));
  EXPECT_LT(m, internal::kMonoNever);
  EXPECT_GT(m, internal::MonoNow());
}

TEST(MonotonicClock, FromAbslWithCallersNow) {
  const absl::Time wall = absl::Now();
  const int64_t before = internal::MonoNow();
  const int64_t got = internal::MonoFromAbsl(wall + absl::Seconds(2), wall);
  const int64_t after = internal::MonoNow();
  EXPECT_GE(got, before + 2'000'000'000);
  EXPECT_LE(got, after + 2'000'000'000);
  EXPECT_TRUE(
      NotAfterNow(internal::MonoFromAbsl(wall - absl::Nanoseconds(1), wall)));
}

// --- Manual queue: ordering, re-arm, cancel ------------------------------

TEST(TimerQueueManual, FiresInWhenOrderWithSeq) {
  internal::TimerQueue q(false);
  Recorder rec;
  TestTimer ts[5];
  const int64_t whens[5] = {50, 10, 40, 20, 30};
  for (int i = 0; i < 5; ++i) {
    ts[i].Init(i, &rec);
    ts[i].Arm(q, 1000 + whens[i], 100 + i);
  }
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(q.NextWhen(), 1010);
  EXPECT_EQ(q.RunExpired(1009), 0);  // never early
  EXPECT_EQ(q.RunExpired(1030), 3);  // when == now fires
  EXPECT_EQ(q.NextWhen(), 1040);
  EXPECT_EQ(q.RunExpired(1100), 2);
  const auto fired = rec.Take();
  ASSERT_EQ(fired.size(), 5u);
  const int order[5] = {1, 3, 4, 2, 0};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(fired[i].id, order[i]);
    EXPECT_EQ(fired[i].seq, 100u + order[i]);
  }
  EXPECT_EQ(q.NextWhen(), internal::kMonoNever);
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueManual, ManyTimersFireInOrder) {
  internal::TimerQueue q(false);
  Recorder rec;
  constexpr int kN = 2000;
  std::vector<TestTimer> ts(kN);
  std::vector<int> perm(kN);
  for (int i = 0; i < kN; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), std::mt19937(1));
  for (int i : perm) {
    ts[i].Init(i, &rec);
    ts[i].Arm(q, 1000 + 7 * i, i);  // distinct whens, armed shuffled
  }
  ASSERT_TRUE(TimerQueueTestPeer::HeapOk(q));
  EXPECT_EQ(q.RunExpired(1000 + 7 * (kN / 2) - 1), kN / 2);
  EXPECT_EQ(q.RunExpired(internal::kMonoNever - 1), kN / 2);
  const auto fired = rec.Take();
  ASSERT_EQ(fired.size(), static_cast<size_t>(kN));
  for (int i = 0; i < kN; ++i) ASSERT_EQ(fired[i].id, i);
}

TEST(TimerQueueManual, RearmEarlierAndLater) {
  internal::TimerQueue q(false);
  Recorder rec;
  TestTimer a, b;
  a.Init(1, &rec);
  b.Init(2, &rec);
  a.Arm(q, 100, 1);
  b.Arm(q, 200, 1);
  a.Arm(q, 300, 2);  // later: `a` was the head
  EXPECT_EQ(q.NextWhen(), 200);
  EXPECT_EQ(q.RunExpired(150), 0);  // a's old time: nothing is due
  b.Arm(q, 50, 3);                  // earlier
  EXPECT_EQ(q.NextWhen(), 50);
  b.Arm(q, 250, 4);  // later again, then back a little: still 250
  EXPECT_EQ(q.NextWhen(), 250);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_TRUE(TimerQueueTestPeer::HeapOk(q));
  EXPECT_EQ(q.RunExpired(260), 1);
  EXPECT_EQ(q.RunExpired(1000), 1);
  const auto fired = rec.Take();
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0].id, 2);  // each with the seq of its last Arm
  EXPECT_EQ(fired[0].seq, 4u);
  EXPECT_EQ(fired[1].id, 1);
  EXPECT_EQ(fired[1].seq, 2u);
}

TEST(TimerQueueManual, CancelBeforeFireAndAfter) {
  internal::TimerQueue q(false);
  Recorder rec;
  TestTimer a, b;
  a.Init(1, &rec);
  b.Init(2, &rec);
  EXPECT_FALSE(q.Cancel(&a.t));  // never armed
  a.Arm(q, 100, 1);
  b.Arm(q, 100, 2);
  EXPECT_TRUE(q.Cancel(&b.t));
  EXPECT_FALSE(q.Cancel(&b.t));
  EXPECT_EQ(q.RunExpired(100), 1);
  EXPECT_FALSE(q.Cancel(&a.t));  // fired
  const auto fired = rec.Take();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].id, 1);
  // A fired or cancelled timer can be armed again.
  b.Arm(q, 200, 3);
  EXPECT_EQ(q.RunExpired(200), 1);
}

TEST(TimerQueueManual, RemoveDisarmsWithoutFiring) {
  internal::TimerQueue q(false);
  Recorder rec;
  TestTimer a, b;
  a.Init(1, &rec);
  b.Init(2, &rec);
  q.Remove(&a.t);  // never armed: nothing happens
  a.Arm(q, 100, 1);
  b.Arm(q, 100, 2);
  q.Remove(&b.t);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.RunExpired(100), 1);
  const auto fired = rec.Take();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].id, 1);
  b.Arm(q, 200, 3);  // a removed timer can be armed again
  EXPECT_EQ(q.RunExpired(200), 1);
}

// Remove does not wait for a running callback (its caller may hold a lock
// that the callback takes).
TEST(TimerQueueThreaded, RemoveDoesNotWaitForRunningCallback) {
  internal::TimerQueue q(true);
  struct Ctx {
    absl::Notification entered, release;
  } ctx;
  internal::Timer t;
  t.arg = &ctx;
  t.fn = [](void* arg, uint64_t) {
    auto* c = static_cast<Ctx*>(arg);
    c->entered.Notify();
    c->release.WaitForNotification();
  };
  q.Arm(&t, internal::MonoNow(), 0);
  ASSERT_TRUE(ctx.entered.WaitForNotificationWithTimeout(kHang));
  q.Remove(&t);  // returns while the callback still runs
  EXPECT_FALSE(ctx.release.HasBeenNotified());
  ctx.release.Notify();
  EXPECT_FALSE(q.Cancel(&t));  // waits for it to finish; it is not armed
}

TEST(TimerQueueManual, NeverArmedAtNeverFires) {
  internal::TimerQueue q(false);
  Recorder rec;
  TestTimer a;
  a.Init(1, &rec);
  a.Arm(q, internal::kMonoNever, 1);
  EXPECT_EQ(q.NextWhen(), internal::kMonoNever);
  EXPECT_EQ(q.RunExpired(internal::kMonoNever - 1), 0);
  EXPECT_TRUE(q.Cancel(&a.t));
}

// A callback that re-arms its own timer for `now` runs once per RunExpired
// call: the event loop gets control back.
TEST(TimerQueueManual, SelfRearmRunsOncePerCall) {
  internal::TimerQueue q(false);
  struct Ctx {
    internal::TimerQueue* q;
    internal::Timer t;
    int runs = 0;
  } ctx;
  ctx.q = &q;
  ctx.t.arg = &ctx;
  ctx.t.fn = [](void* arg, uint64_t seq) {
    auto* c = static_cast<Ctx*>(arg);
    ++c->runs;
    c->q->Arm(&c->t, 10, seq + 1);
  };
  q.Arm(&ctx.t, 10, 0);
  EXPECT_EQ(q.RunExpired(10), 1);
  EXPECT_EQ(q.RunExpired(10), 1);
  EXPECT_EQ(ctx.runs, 2);
  EXPECT_EQ(q.NextWhen(), 10);
  EXPECT_TRUE(q.Cancel(&ctx.t));
}

TEST(TimerQueueManual, CallbacksArmAndCancelOthers) {
  internal::TimerQueue q(false);
  Recorder rec;
  TestTimer victim, late, early;
  victim.Init(1, &rec);
  late.Init(2, &rec);
  early.Init(3, &rec);
  struct Ctx {
    internal::TimerQueue* q;
    TestTimer *victim, *late, *early;
    bool cancelled = false;
    int nested_ran = -1;
  } ctx{&q, &victim, &late, &early};
  internal::Timer driver;
  driver.arg = &ctx;
  driver.fn = [](void* arg, uint64_t) {
    auto* c = static_cast<Ctx*>(arg);
    c->cancelled = c->q->Cancel(&c->victim->t);
    c->late->Arm(*c->q, 500, 7);
    c->early->Arm(*c->q, 5, 8);  // armed during the call: the next one
    c->nested_ran = c->q->RunExpired(1000);  // nested: runs nothing
  };
  q.Arm(&driver, 10, 0);
  victim.Arm(q, 20, 1);
  EXPECT_EQ(q.RunExpired(100), 1);
  EXPECT_TRUE(ctx.cancelled);
  EXPECT_EQ(ctx.nested_ran, 0);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.RunExpired(100), 1);  // early
  EXPECT_EQ(q.RunExpired(500), 1);  // late
  const auto fired = rec.Take();
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0].id, 3);
  EXPECT_EQ(fired[1].id, 2);
}

// 10,000 timers under random Arm / re-arm / Cancel / RunExpired against a
// std::multimap model; deterministic (seeded, manual clock).
TEST(TimerQueueManual, MatchesModelUnderRandomOperations) {
  internal::TimerQueue q(false);
  constexpr int kTimers = 10000;
  std::vector<TestTimer> ts(kTimers);
  Recorder rec;
  for (int i = 0; i < kTimers; ++i) ts[i].Init(i, &rec);
  // when -> id, and each armed id's position in it.
  std::multimap<int64_t, int> model;
  std::vector<std::multimap<int64_t, int>::iterator> pos(kTimers, model.end());
  std::vector<uint64_t> seqs(kTimers);
  std::mt19937_64 rng(7);
  int64_t now = 0;
  for (int step = 1; step <= 100000; ++step) {
    const int i = static_cast<int>(rng() % kTimers);
    const uint64_t op = rng() % 100;
    if (op < 20) {
      const bool armed = pos[i] != model.end();
      ASSERT_EQ(q.Cancel(&ts[i].t), armed);
      if (armed) model.erase(pos[i]);
      pos[i] = model.end();
    } else if (op < 99) {
      // Few distinct values (ties), mostly near `now`, some far.
      const int64_t when =
          now + static_cast<int64_t>(rng() % (op < 90 ? 2000 : 1000000));
      ts[i].Arm(q, when, step);
      if (pos[i] != model.end()) model.erase(pos[i]);
      pos[i] = model.emplace(when, i);
      seqs[i] = step;
    } else {
      now += static_cast<int64_t>(rng() % 3000);
      std::vector<std::pair<int64_t, int>> want;  // (when, id)
      while (!model.empty() && model.begin()->first <= now) {
        want.emplace_back(*model.begin());
        pos[model.begin()->second] = model.end();
        model.erase(model.begin());
      }
      ASSERT_EQ(q.RunExpired(now), static_cast<int>(want.size()));
      auto got = rec.Take();
      ASSERT_EQ(got.size(), want.size());
      for (size_t k = 0; k < got.size(); ++k) {
        ASSERT_EQ(got[k].when, want[k].first);  // in `when` order
        ASSERT_EQ(got[k].seq, seqs[got[k].id]);
        if (k > 0) {
          ASSERT_LE(got[k - 1].when, got[k].when);
        }
      }
      // Ties may fire in any order: compare the sets of ids.
      std::vector<int> got_ids, want_ids;
      for (auto& f : got) got_ids.push_back(f.id);
      for (auto& w : want) want_ids.push_back(w.second);
      std::sort(got_ids.begin(), got_ids.end());
      std::sort(want_ids.begin(), want_ids.end());
      ASSERT_EQ(got_ids, want_ids);
    }
    if (step % 2000 == 0) {
      ASSERT_TRUE(TimerQueueTestPeer::HeapOk(q));
      ASSERT_EQ(q.size(), model.size());
      ASSERT_EQ(q.NextWhen(),
                model.empty() ? internal::kMonoNever : model.begin()->first);
      ASSERT_TRUE(TimerQueueTestPeer::HeapOk(q));
    }
  }
  for (auto& t : ts) q.Cancel(&t.t);
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueManual, DestructorDropsArmedTimers) {
  Recorder rec;
  TestTimer a, b;
  a.Init(1, &rec);
  b.Init(2, &rec);
  {
    internal::TimerQueue q(false);
    a.Arm(q, 10, 0);
    b.Arm(q, 20, 0);
  }
  EXPECT_EQ(rec.count(), 0u);
  internal::TimerQueue q2(false);  // dropped timers are unarmed: usable again
  a.Arm(q2, 10, 1);
  EXPECT_EQ(q2.RunExpired(10), 1);
}

// --- Threaded queue ------------------------------------------------------

TEST(TimerQueueThreaded, FiresInWhenOrder) {
  internal::TimerQueue q(true);
  // Hold the thread in a callback while the timers are armed, so that all
  // of them are due and pending when it looks again.
  absl::Notification entered, release;
  struct Gate {
    absl::Notification *entered, *release;
  } gate{&entered, &release};
  internal::Timer blocker;
  blocker.arg = &gate;
  blocker.fn = [](void* arg, uint64_t) {
    auto* g = static_cast<Gate*>(arg);
    g->entered->Notify();
    g->release->WaitForNotification();
  };
  q.Arm(&blocker, internal::MonoNow(), 0);
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(kHang));
  Recorder rec;
  constexpr int kN = 500;
  std::vector<TestTimer> ts(kN);
  std::vector<int> perm(kN);
  for (int i = 0; i < kN; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), std::mt19937(2));
  const int64_t base = internal::MonoNow() - kN;
  for (int i : perm) {
    ts[i].Init(i, &rec);
    ts[i].Arm(q, base + i, i);
  }
  release.Notify();
  ASSERT_TRUE(
      Eventually([&] { return rec.count() == static_cast<size_t>(kN); }));
  const auto fired = rec.Take();
  for (int i = 0; i < kN; ++i) {
    ASSERT_EQ(fired[i].id, i);
    ASSERT_EQ(fired[i].seq, static_cast<uint64_t>(i));
  }
}

// Random deadlines within 20 ms, a third of them re-armed once: no firing
// comes before the `when` it was armed with, and every timer fires for its
// last arming exactly once. (The first arming of a re-armed timer may have
// fired already when it is re-armed: that firing is correct too, once,
// with seq 0; its owner tells it apart by the seq.)
TEST(TimerQueueThreaded, NeverFiresEarly) {
  internal::TimerQueue q(true);
  constexpr int kN = 1000;
  struct Entry {
    internal::Timer t;
    int64_t when[2] = {0, 0};  // by seq; written before the arming
    absl::Mutex mu;
    std::vector<std::pair<uint64_t, int64_t>> fired ABSL_GUARDED_BY(mu);
  };
  std::vector<Entry> es(kN);
  std::atomic<int> last_fired{0};
  struct Arg {
    Entry* e;
    std::atomic<int>* last_fired;
    bool rearmed;
  };
  std::vector<Arg> args(kN);
  std::mt19937 rng(3);
  for (int i = 0; i < kN; ++i) {
    Entry& e = es[i];
    args[i] = {&e, &last_fired, i % 3 == 0};
    e.t.arg = &args[i];
    e.t.fn = [](void* arg, uint64_t seq) {
      const int64_t at = internal::MonoNow();
      auto* a = static_cast<Arg*>(arg);
      {
        absl::MutexLock l(&a->e->mu);
        a->e->fired.push_back({seq, at});
      }
      if (seq == (a->rearmed ? 1u : 0u)) ++*a->last_fired;
    };
    e.when[0] = internal::MonoNow() + static_cast<int64_t>(rng() % 20'000'000);
    q.Arm(&e.t, e.when[0], 0);
    if (i % 3 == 0) {
      e.when[1] =
          internal::MonoNow() + static_cast<int64_t>(rng() % 20'000'000);
      q.Arm(&e.t, e.when[1], 1);
    }
  }
  ASSERT_TRUE(Eventually([&] { return last_fired.load() == kN; }));
  Flush(q);  // anything still due has run
  for (int i = 0; i < kN; ++i) {
    Entry& e = es[i];
    absl::MutexLock l(&e.mu);
    const bool rearmed = i % 3 == 0;
    int last = 0, first = 0;
    for (const auto& [seq, at] : e.fired) {
      ASSERT_LE(seq, rearmed ? 1u : 0u) << "timer " << i;
      ASSERT_GE(at, e.when[seq]) << "timer " << i << " fired early";
      if (seq == (rearmed ? 1u : 0u)) {
        ++last;
      } else {
        ++first;
      }
    }
    EXPECT_EQ(last, 1) << "timer " << i;
    EXPECT_LE(first, 1) << "timer " << i;
  }
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueThreaded, RearmEarlierWakesTheThread) {
  internal::TimerQueue q(true);
  Recorder rec;
  TestTimer a;
  a.Init(1, &rec);
  a.Arm(q, internal::MonoNow() + kHour, 1);  // the thread sleeps for it
  Flush(q);
  a.Arm(q, internal::MonoNow() + 1'000'000, 2);  // 1 ms: must not wait an hour
  ASSERT_TRUE(Eventually([&] { return rec.count() == 1; }));
  EXPECT_EQ(rec.Take()[0].seq, 2u);
}

TEST(TimerQueueThreaded, CancelBeforeFire) {
  internal::TimerQueue q(true);
  Recorder rec;
  TestTimer a, b;
  a.Init(1, &rec);
  b.Init(2, &rec);
  const int64_t soon = internal::MonoNow() + 5'000'000;
  a.Arm(q, soon, 1);
  b.Arm(q, soon, 2);
  EXPECT_TRUE(q.Cancel(&a.t));
  // b fires at the same instant; once it did, a's time has passed too.
  ASSERT_TRUE(Eventually([&] { return rec.count() == 1; }));
  Flush(q);
  const auto fired = rec.Take();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].id, 2);
  EXPECT_FALSE(q.Cancel(&b.t));  // after firing
}

TEST(TimerQueueThreaded, CancelReturnsFalseAfterFire) {
  internal::TimerQueue q(true);
  absl::Notification fired;
  internal::Timer t;
  t.arg = &fired;
  t.fn = [](void* arg, uint64_t) {
    static_cast<absl::Notification*>(arg)->Notify();
  };
  q.Arm(&t, internal::MonoNow(), 0);
  ASSERT_TRUE(fired.WaitForNotificationWithTimeout(kHang));
  EXPECT_FALSE(q.Cancel(&t));
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueThreaded, CancelFromInsideOwnCallbackAndOfAnother) {
  internal::TimerQueue q(true);
  struct Ctx {
    internal::TimerQueue* q;
    internal::Timer self, other;
    absl::Notification done;
    bool cancel_self = true, cancel_other = false;
  } ctx;
  ctx.q = &q;
  ctx.self.arg = &ctx;
  ctx.self.fn = [](void* arg, uint64_t) {
    auto* c = static_cast<Ctx*>(arg);
    c->cancel_self = c->q->Cancel(&c->self);    // fired: false, no wait
    c->cancel_other = c->q->Cancel(&c->other);  // armed: true
    c->done.Notify();
  };
  ctx.other.arg = &ctx;
  ctx.other.fn = [](void*, uint64_t) {
    ADD_FAILURE() << "cancelled timer ran";
  };
  q.Arm(&ctx.other, internal::MonoNow() + kHour, 0);
  q.Arm(&ctx.self, internal::MonoNow(), 0);
  ASSERT_TRUE(ctx.done.WaitForNotificationWithTimeout(kHang));
  EXPECT_FALSE(ctx.cancel_self);
  EXPECT_TRUE(ctx.cancel_other);
  Flush(q);
  EXPECT_EQ(q.size(), 0u);
}

// A callback that frees its own owner (and Timer) is fine: the queue does
// not touch the timer after the callback returns.
TEST(TimerQueueThreaded, CallbackMayFreeItsTimer) {
  internal::TimerQueue q(true);
  struct Owner {
    internal::Timer t;
    absl::Notification* done;
  };
  absl::Notification done;
  auto* owner = new Owner;
  owner->done = &done;
  owner->t.arg = owner;
  owner->t.fn = [](void* arg, uint64_t) {
    auto* o = static_cast<Owner*>(arg);
    absl::Notification* d = o->done;
    delete o;
    d->Notify();
  };
  q.Arm(&owner->t, internal::MonoNow(), 0);
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kHang));
}

TEST(TimerQueueThreaded, CancelWaitsForRunningCallback) {
  internal::TimerQueue q(true);
  struct Ctx {
    absl::Notification entered, release;
    std::atomic<bool> finished{false};
  } ctx;
  internal::Timer t;
  t.arg = &ctx;
  t.fn = [](void* arg, uint64_t) {
    auto* c = static_cast<Ctx*>(arg);
    c->entered.Notify();
    c->release.WaitForNotification();
    c->finished = true;
  };
  q.Arm(&t, internal::MonoNow(), 0);
  ASSERT_TRUE(ctx.entered.WaitForNotificationWithTimeout(kHang));
  std::atomic<bool> cancel_returned{false};
  std::atomic<bool> finished_at_return{false};
  std::thread canceller([&] {
    EXPECT_FALSE(q.Cancel(&t));  // popped already: not armed
    finished_at_return = ctx.finished.load();
    cancel_returned = true;
  });
  // Give Cancel time to (wrongly) return; this cannot fail on a slow
  // machine, only miss the bug.
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_FALSE(cancel_returned.load());
  ctx.release.Notify();
  canceller.join();
  EXPECT_TRUE(cancel_returned.load());
  EXPECT_TRUE(finished_at_return.load());
}

// Cancel of a timer whose callback keeps re-arming it for "now": when
// Cancel returns the timer is neither running nor armed.
TEST(TimerQueueThreaded, CancelStopsSelfRearmingTimer) {
  internal::TimerQueue q(true);
  struct Ctx {
    internal::TimerQueue* q;
    internal::Timer t;
    std::atomic<int> runs{0};
    std::atomic<bool> inside{false};
  } ctx;
  ctx.q = &q;
  ctx.t.arg = &ctx;
  ctx.t.fn = [](void* arg, uint64_t seq) {
    auto* c = static_cast<Ctx*>(arg);
    c->inside = true;
    c->runs.fetch_add(1);
    c->q->Arm(&c->t, internal::MonoNow(), seq + 1);
    c->inside = false;
  };
  q.Arm(&ctx.t, internal::MonoNow(), 0);
  ASSERT_TRUE(Eventually([&] { return ctx.runs.load() >= 100; }));
  q.Cancel(&ctx.t);
  EXPECT_FALSE(ctx.inside.load());
  const int runs = ctx.runs.load();
  Flush(q);
  EXPECT_EQ(ctx.runs.load(), runs);
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueThreaded, DestructorDropsArmedTimers) {
  Recorder rec;
  TestTimer a, b;
  a.Init(1, &rec);
  b.Init(2, &rec);
  {
    internal::TimerQueue q(true);
    a.Arm(q, internal::MonoNow() + kHour, 0);
    b.Arm(q, internal::MonoNow() + kHour, 0);
    Flush(q);  // the thread is up and sleeping for them
  }
  EXPECT_EQ(rec.count(), 0u);
  {
    internal::TimerQueue q(true);  // destroyed at once, never used
  }
}

TEST(TimerQueueThreaded, DestructorWaitsForRunningCallback) {
  absl::Notification entered;
  std::atomic<bool> finished{false};
  struct Ctx {
    absl::Notification* entered;
    std::atomic<bool>* finished;
  } ctx{&entered, &finished};
  internal::Timer t;
  t.arg = &ctx;
  t.fn = [](void* arg, uint64_t) {
    auto* c = static_cast<Ctx*>(arg);
    c->entered->Notify();
    absl::SleepFor(absl::Milliseconds(20));
    *c->finished = true;
  };
  {
    internal::TimerQueue q(true);
    q.Arm(&t, internal::MonoNow(), 0);
    ASSERT_TRUE(entered.WaitForNotificationWithTimeout(kHang));
  }
  EXPECT_TRUE(finished.load());
}

TEST(TimerQueueThreaded, DefaultIsOneRunningQueue) {
  internal::TimerQueue& q = internal::TimerQueue::Default();
  EXPECT_EQ(&q, &internal::TimerQueue::Default());
  Flush(q);
}

// Four threads Arm and Cancel a shared set of timers (the same timer from
// several threads at once) while the queue fires them. TSan checks the
// locking; afterwards nothing is armed and nothing fires.
TEST(TimerQueueThreaded, ConcurrentArmAndCancel) {
  internal::TimerQueue q(true);
  constexpr int kTimers = 64;
  struct Counted {
    internal::Timer t;
    std::atomic<int> runs{0};
  };
  std::vector<Counted> ts(kTimers);
  for (auto& c : ts) {
    c.t.arg = &c;
    c.t.fn = [](void* arg, uint64_t) {
      static_cast<Counted*>(arg)->runs.fetch_add(1);
    };
  }
  std::vector<std::thread> threads;
  for (int p = 0; p < 4; ++p) {
    threads.emplace_back([&, p] {
      std::mt19937 rng(p);
      for (int i = 0; i < 5000; ++i) {
        Counted& c = ts[rng() % kTimers];
        if (rng() % 3 == 0) {
          q.Cancel(&c.t);
        } else {
          q.Arm(&c.t,
                internal::MonoNow() + static_cast<int64_t>(rng() % 100'000), i);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& c : ts) q.Cancel(&c.t);
  EXPECT_EQ(q.size(), 0u);
  int total = 0;
  for (auto& c : ts) total += c.runs.load();
  Flush(q);
  int after = 0;
  for (auto& c : ts) after += c.runs.load();
  EXPECT_EQ(after, total);
}

}  // namespace
}  // namespace gopoll
