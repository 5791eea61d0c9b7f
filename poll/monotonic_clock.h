// poll/monotonic_clock.h
//
// The monotonic clock every deadline is measured on: int64 nanoseconds of
// std::chrono::steady_clock. Wall-clock deadlines (absl::Time) are converted
// once, when they are set, so a wall-clock jump never fires a timer early.
#ifndef POLL_MONOTONIC_CLOCK_H_
#define POLL_MONOTONIC_CLOCK_H_

#include <chrono>
#include <cstdint>
#include <limits>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gopoll {

inline constexpr int64_t kMonoNever = std::numeric_limits<int64_t>::max();

inline int64_t MonoNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The monotonic instant of wall-clock time `t`: kMonoNever for
// InfiniteFuture(), saturating, and never later than MonoNow() for a time
// that is not in the future.
inline int64_t MonoFromAbsl(absl::Time t) {
  if (t == absl::InfiniteFuture()) return kMonoNever;
  const int64_t now = MonoNow();
  const absl::Duration rem = t - absl::Now();
  if (rem <= absl::ZeroDuration()) return now;
  const int64_t ns = absl::ToInt64Nanoseconds(rem);
  if (ns >= kMonoNever - now) return kMonoNever;
  return now + ns;
}

}  // namespace gopoll

#endif  // POLL_MONOTONIC_CLOCK_H_
