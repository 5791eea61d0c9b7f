// tests/loop_test_util.h
//
// Shared by the event-loop suites (POSIX and Windows): drive a Loop until a
// condition holds, failing the test (not hanging) after a generous bound.
#ifndef TESTS_LOOP_TEST_UTIL_H_
#define TESTS_LOOP_TEST_UTIL_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "poll/loop/loop.h"

namespace gopoll::testing {

// Runs `loop` until `done()` holds; adds a failure after `limit` (a bound
// that only detects hangs, never a speed assertion).
template <typename Pred>
void RunLoopUntil(Loop& loop, Pred done,
                  absl::Duration limit = absl::Seconds(20)) {
  const absl::Time give_up = absl::Now() + limit;
  while (!done()) {
    loop.RunOnce(absl::Milliseconds(20));
    if (absl::Now() > give_up) {
      ADD_FAILURE() << "loop did not reach the condition in time";
      return;
    }
  }
}

}  // namespace gopoll::testing

#endif  // TESTS_LOOP_TEST_UTIL_H_
