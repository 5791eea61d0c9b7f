// SPDX-License-Identifier: BSD-3-Clause
// tests/timing_window.h
//
// Promise: a test round that needs a window of time to pass (a thread to be
// blocked before a deadline, a deadline to land before another one fires)
// holds on a busy machine. The round detects that it was too slow to judge
// and says so; it is then run again with twice the window, a bounded number
// of times. Only a round that could judge asserts the behaviour; a test
// whose every round was too slow fails (a bug that always looks "too slow"
// is not hidden). Portable: used by the POSIX and Windows suites alike.
#ifndef TESTS_TIMING_WINDOW_H_
#define TESTS_TIMING_WINDOW_H_

#include <iostream>
#include <string>
#include <string_view>
#include <utility>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace gopoll::testing {

// One round's window and verdict.
class TimingRound {
 public:
  TimingRound(absl::Duration window, int index)
      : window_(window), index_(index) {}
  // The time this round may take for what it waits for (its deadline, the
  // time a thread has to block in).
  absl::Duration window() const { return window_; }
  // 0 for the first round.
  int index() const { return index_; }
  // Declares that this round could not judge (the machine was too slow for
  // its window) and why. The round cleans up (unblocks and joins its
  // threads) and returns without asserting what it could not judge.
  void TooSlow(std::string_view why) {
    too_slow_ = true;
    why_ = std::string(why);
  }
  bool too_slow() const { return too_slow_; }
  const std::string& why() const { return why_; }

 private:
  absl::Duration window_;
  int index_;
  bool too_slow_ = false;
  std::string why_;
};

// Default bound: the window doubles this many times at most (20 ms grows
// to 1.28 s, 300 ms to 4.8 s).
inline constexpr int kTimingRounds = 7;

// Runs `round(TimingRound&)` with window `first`, then 2x, 4x, ... until a
// round does not call TooSlow, at most `max_rounds` rounds. A round that
// failed fatally (ASSERT_*) ends the test as usual. If every round was too
// slow, the test fails with the last reason: the machine never gave the
// widest window enough time, or the code under test never does what the
// round waits for.
template <typename Round>
void WithWideningWindow(absl::Duration first, Round&& round,
                        int max_rounds = kTimingRounds) {
  absl::Duration window = first;
  std::string last;
  for (int i = 0; i < max_rounds; ++i) {
    TimingRound r(window, i);
    round(r);
    if (::testing::Test::HasFatalFailure() || !r.too_slow()) return;
    last = r.why();
    // Visible in the test log: how often a busy machine needed a retry.
    std::cerr << "[ timing ] round " << i << " (window "
              << absl::FormatDuration(window) << ") too slow to judge: " << last
              << (i + 1 < max_rounds
                      ? "; retrying with " + absl::FormatDuration(window * 2)
                      : std::string("; giving up"))
              << "\n";
    window *= 2;
  }
  ADD_FAILURE() << "every one of " << max_rounds
                << " rounds was too slow to judge (widest window "
                << absl::FormatDuration(window / 2) << "); last: " << last;
}

}  // namespace gopoll::testing

#endif  // TESTS_TIMING_WINDOW_H_
