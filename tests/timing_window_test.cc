// SPDX-License-Identifier: BSD-3-Clause
// WithWideningWindow (tests/timing_window.h): a round that was too slow to
// judge runs again with twice the window; the first round that judges ends
// it; a test whose every round was too slow fails. (That a round's fatal
// failure ends the rounds rests on gtest's HasFatalFailure, which
// EXPECT_FATAL_FAILURE hides: not tested here.)
#include "tests/timing_window.h"

#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace gopoll::testing {
namespace {

TEST(TimingWindow, FirstRoundThatJudgesEndsIt) {
  std::vector<absl::Duration> windows;
  WithWideningWindow(absl::Milliseconds(5), [&](TimingRound& round) {
    EXPECT_EQ(round.index(), static_cast<int>(windows.size()));
    windows.push_back(round.window());
    if (windows.size() < 3) round.TooSlow("not yet");
  });
  EXPECT_EQ(windows, (std::vector<absl::Duration>{absl::Milliseconds(5),
                                                  absl::Milliseconds(10),
                                                  absl::Milliseconds(20)}));
}

TEST(TimingWindow, EveryRoundTooSlowFailsWithTheReason) {
  int rounds = 0;
  EXPECT_NONFATAL_FAILURE(
      WithWideningWindow(
          absl::Milliseconds(1),
          [&](TimingRound& round) {
            ++rounds;
            round.TooSlow("never blocked");
          },
          4),
      "every one of 4 rounds was too slow to judge (widest window 8ms); "
      "last: never blocked");
  EXPECT_EQ(rounds, 4);
}

}  // namespace
}  // namespace gopoll::testing
