// SPDX-License-Identifier: BSD-3-Clause
// tests/loop_test_util.h
//
// Shared by the event-loop suites (POSIX and Windows): drive a Loop until a
// condition holds, failing the test (not hanging) after a generous bound.
#ifndef TESTS_LOOP_TEST_UTIL_H_
#define TESTS_LOOP_TEST_UTIL_H_

#include <atomic>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "poll/errors.h"
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

// Starts a callback read of `r` into `buf` and runs the loop until the
// callback ran; returns what it got.
inline absl::StatusOr<size_t> ReadOnLoop(Loop& loop, AsyncFd r,
                                         absl::Span<char> buf) {
  absl::StatusOr<size_t> got = absl::UnknownError("callback not run");
  bool done = false;
  r.AsyncRead(buf, [&](absl::StatusOr<size_t> n) {
    got = std::move(n);
    done = true;
  });
  RunLoopUntil(loop, [&] { return done; });
  return got;
}

// Starts a read of `r` that must wait, closes `r` from another thread, and
// expects the read's callback to get IsClosing on the loop thread; then a
// new read of the closed FD fails the same way (Go's close-while-pending).
inline void ExpectCloseFromOtherThreadEndsPendingRead(Loop& loop, AsyncFd r) {
  char buf[4];
  absl::Status st;
  std::atomic<bool> done{false};
  auto record = [&](absl::StatusOr<size_t> n) {
    st = n.status();
    done = true;
  };
  r.AsyncRead(absl::MakeSpan(buf), record);
  loop.RunOnce(absl::Milliseconds(10));
  std::thread closer([r] { EXPECT_TRUE(r.Close().ok()); });
  RunLoopUntil(loop, [&] { return done.load(); });
  closer.join();
  EXPECT_TRUE(IsClosing(st)) << st;
  absl::StatusOr<size_t> again = ReadOnLoop(loop, r, absl::MakeSpan(buf));
  EXPECT_TRUE(IsClosing(again.status())) << again.status();
}

}  // namespace gopoll::testing

#endif  // TESTS_LOOP_TEST_UTIL_H_
