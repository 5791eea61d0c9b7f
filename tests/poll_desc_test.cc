// SPDX-License-Identifier: BSD-3-Clause
// PollDesc: the shared readiness/deadline/closing state machine, driven
// directly (no OS poller), so every backend's common rules are pinned here.
#include "poll/internal/poll_desc.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "poll/errors.h"
#include "tests/timing_window.h"

namespace gopoll {
namespace {

using ::gopoll::testing::TimingRound;
using ::gopoll::testing::WithWideningWindow;

class CountingWaiter final : public internal::Waiter {
 public:
  void Wake() override {
    wakes.fetch_add(1);
    woken.Notify();
  }
  std::atomic<int> wakes{0};
  absl::Notification woken;
};

constexpr FdKind kNet = FdKind::kNet;

TEST(PollDesc, NotPollableRefusesDeadlines) {
  internal::PollDesc pd;
  EXPECT_TRUE(IsNoDeadline(pd.SetDeadline(absl::Now(), true, true, kNet)));
  EXPECT_TRUE(IsNotPollable(pd.Wait(internal::Dir::kRead, kNet)));
}

TEST(PollDesc, ReadyBeforeArmIsConsumedAtOnce) {
  internal::PollDesc pd;
  pd.OpenWithoutPoller();
  internal::PollDesc::Woken w = pd.NetpollReady(true, false, false);
  EXPECT_EQ(w.r, nullptr);
  CountingWaiter cw;
  auto armed = pd.Arm(internal::Dir::kRead, kNet, &cw);
  ASSERT_TRUE(armed.ok());
  EXPECT_TRUE(*armed);  // ready now, waiter not published
  armed = pd.Arm(internal::Dir::kRead, kNet, &cw);
  ASSERT_TRUE(armed.ok());
  EXPECT_FALSE(*armed);  // published
  EXPECT_TRUE(pd.Disarm(internal::Dir::kRead, &cw));
  EXPECT_EQ(cw.wakes.load(), 0);
}

TEST(PollDesc, ReadinessWakesPublishedWaiterOnce) {
  internal::PollDesc pd;
  pd.OpenWithoutPoller();
  CountingWaiter cw;
  ASSERT_FALSE(*pd.Arm(internal::Dir::kWrite, kNet, &cw));
  internal::PollDesc::Woken w = pd.NetpollReady(false, true, false);
  ASSERT_EQ(w.w, &cw);
  w.w->Wake();
  EXPECT_FALSE(pd.Disarm(internal::Dir::kWrite, &cw));  // already taken
  EXPECT_TRUE(pd.ConsumeReady(internal::Dir::kWrite));
  EXPECT_FALSE(pd.ConsumeReady(internal::Dir::kWrite));
  EXPECT_EQ(cw.wakes.load(), 1);
}

TEST(PollDesc, PrepareForgetsStaleReadiness) {
  internal::PollDesc pd;
  pd.OpenWithoutPoller();
  pd.NetpollReady(true, false, false);
  ASSERT_TRUE(pd.Prepare(internal::Dir::kRead, kNet).ok());
  EXPECT_FALSE(pd.ConsumeReady(internal::Dir::kRead));
}

TEST(PollDesc, BareErrorEventMakesReadsNotPollable) {
  internal::PollDesc pd;
  pd.OpenWithoutPoller();
  pd.NetpollReady(true, true, /*error_only=*/true);
  EXPECT_TRUE(IsNotPollable(pd.CheckErr(internal::Dir::kRead, kNet)));
  EXPECT_TRUE(pd.CheckErr(internal::Dir::kWrite, kNet).ok());  // reads only
  pd.NetpollReady(true, false, false);  // a normal event clears
  EXPECT_TRUE(pd.CheckErr(internal::Dir::kRead, kNet).ok());
}

TEST(PollDesc, ErrorPrecedenceClosingThenDeadlineThenEventError) {
  internal::PollDesc pd;
  pd.OpenWithoutPoller();
  pd.NetpollReady(true, false, true);
  EXPECT_TRUE(IsNotPollable(pd.CheckErr(internal::Dir::kRead, kNet)));
  ASSERT_TRUE(pd.SetDeadline(absl::InfinitePast(), true, false, kNet).ok());
  EXPECT_TRUE(IsDeadlineExceeded(pd.CheckErr(internal::Dir::kRead, kNet)));
  pd.Evict();
  EXPECT_TRUE(IsClosing(pd.CheckErr(internal::Dir::kRead, kNet)));
  EXPECT_TRUE(IsClosing(pd.CheckErr(internal::Dir::kWrite, kNet)));
  EXPECT_TRUE(IsClosing(pd.SetDeadline(absl::Now(), true, true, kNet)));
}

TEST(PollDesc, DeadlineTimerWakesWaiter) {
  internal::PollDesc pd;
  pd.OpenWithoutPoller();
  CountingWaiter cw;
  ASSERT_FALSE(*pd.Arm(internal::Dir::kRead, kNet, &cw));
  ASSERT_TRUE(
      pd.SetDeadline(absl::Now() + absl::Milliseconds(5), true, false, kNet)
          .ok());
  ASSERT_TRUE(cw.woken.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_FALSE(pd.ConsumeReady(internal::Dir::kRead));
  EXPECT_TRUE(IsDeadlineExceeded(pd.CheckErr(internal::Dir::kRead, kNet)));
  EXPECT_TRUE(pd.CheckErr(internal::Dir::kWrite, kNet).ok());
}

// The timer of a deadline replaced before it fired must not expire the new
// one. Judged only when the replacement came before the old deadline (a
// busy machine may let it pass first: then it expired correctly and the
// replacement cleared it); otherwise run again with a later old deadline.
TEST(PollDesc, StaleTimerDoesNotExpireNewDeadline) {
  WithWideningWindow(absl::Milliseconds(2), [&](TimingRound& round) {
    internal::PollDesc pd;
    pd.OpenWithoutPoller();
    const absl::Time old_deadline = absl::Now() + round.window();
    ASSERT_TRUE(pd.SetDeadline(old_deadline, true, false, kNet).ok());
    ASSERT_TRUE(
        pd.SetDeadline(absl::Now() + absl::Hours(1), true, false, kNet).ok());
    if (absl::Now() >= old_deadline) {
      round.TooSlow("the deadline was replaced after it passed");
      return;
    }
    // Past the old deadline (and its timer, which only a busy machine
    // delays further; the new deadline is an hour away either way).
    absl::SleepFor(old_deadline - absl::Now() + absl::Milliseconds(30));
    EXPECT_TRUE(pd.CheckErr(internal::Dir::kRead, kNet).ok());
    ASSERT_TRUE(pd.SetDeadline(absl::InfiniteFuture(), true, false, kNet).ok());
    EXPECT_TRUE(pd.CheckErr(internal::Dir::kRead, kNet).ok());
  });
}

// Two SetDeadline calls at once, one clearing the deadline and one arming
// it: whichever runs last wins, and a deadline left armed must fire (the
// clearing call cancels its timer outside the lock; it must not take the
// other call's new timer with it).
TEST(PollDesc, ConcurrentClearAndArmLeaveNoDeadThing) {
  internal::PollDesc pd;
  pd.OpenWithoutPoller();
  int armed_rounds = 0;
  for (int round = 0; round < 1500; ++round) {
    ASSERT_TRUE(
        pd.SetDeadline(absl::Now() + absl::Hours(1), true, false, kNet).ok());
    std::atomic<int> go{0};
    std::thread clear([&] {
      ++go;
      while (go.load() < 2) {
      }
      pd.SetDeadline(absl::InfiniteFuture(), true, false, kNet).IgnoreError();
    });
    ++go;
    while (go.load() < 2) {
    }
    ASSERT_TRUE(
        pd.SetDeadline(absl::Now() + absl::Milliseconds(1), true, false, kNet)
            .ok());
    clear.join();
    if (pd.ReadDeadlineForTest() <= 0) continue;  // the clear ran last
    ++armed_rounds;
    // Armed for 1 ms: it expires; the bound only detects a deadline that
    // never fires (a busy machine may delay the timer thread).
    const absl::Time give_up = absl::Now() + absl::Seconds(20);
    while (pd.CheckErr(internal::Dir::kRead, kNet).ok() &&
           absl::Now() < give_up) {
      absl::SleepFor(absl::Microseconds(200));
    }
    ASSERT_TRUE(IsDeadlineExceeded(pd.CheckErr(internal::Dir::kRead, kNet)))
        << "round " << round << ": a deadline armed with no timer";
  }
  EXPECT_GT(armed_rounds, 0);
}

TEST(PollDesc, EvictWakesBothDirections) {
  internal::PollDesc pd;
  pd.OpenWithoutPoller();
  CountingWaiter r, w;
  ASSERT_FALSE(*pd.Arm(internal::Dir::kRead, kNet, &r));
  ASSERT_FALSE(*pd.Arm(internal::Dir::kWrite, kNet, &w));
  pd.Evict();
  EXPECT_EQ(r.wakes.load(), 1);
  EXPECT_EQ(w.wakes.load(), 1);
  EXPECT_FALSE(pd.ConsumeReady(internal::Dir::kRead));
  auto armed = pd.Arm(internal::Dir::kRead, kNet, &r);
  EXPECT_TRUE(IsClosing(armed.status()));
}

TEST(PollDesc, ThreadWaitReturnsOnReadinessFromAnotherThread) {
  internal::PollDesc pd;
  pd.OpenWithoutPoller();
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(10));
    internal::PollDesc::Woken w = pd.NetpollReady(true, false, false);
    if (w.r != nullptr) w.r->Wake();
  });
  EXPECT_TRUE(pd.Wait(internal::Dir::kRead, kNet).ok());
  t.join();
}

TEST(PollDesc, StressDeadlinesRacingReadiness) {
  // Many rounds of a waiter racing a deadline and a readiness edge: every
  // Wait returns exactly once with OK or DeadlineExceeded, never hangs.
  internal::PollDesc pd;
  pd.OpenWithoutPoller();
#if defined(_WIN32)
  constexpr int kRounds = 400;  // a thread per round is slow under Wine
#else
  constexpr int kRounds = 2000;
#endif
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(pd.SetDeadline(absl::Now() + absl::Microseconds(i % 40), true,
                               false, kNet)
                    .ok());
    std::thread t([&] {
      internal::PollDesc::Woken w = pd.NetpollReady(true, false, false);
      if (w.r != nullptr) w.r->Wake();
    });
    absl::Status s = pd.Wait(internal::Dir::kRead, kNet);
    EXPECT_TRUE(s.ok() || IsDeadlineExceeded(s)) << s;
    t.join();
    ASSERT_TRUE(pd.SetDeadline(absl::InfiniteFuture(), true, false, kNet).ok());
    pd.Prepare(internal::Dir::kRead, kNet).IgnoreError();
  }
}

}  // namespace
}  // namespace gopoll
