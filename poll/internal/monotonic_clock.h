// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/monotonic_clock.h
//
// The monotonic clock every deadline is measured on: int64 nanoseconds of
// std::chrono::steady_clock. Wall-clock deadlines (absl::Time) are converted
// once, when they are set, so a later wall-clock step never moves a timer.
// Conversions saturate: absl::InfiniteFuture() (and anything too far to
// represent) is kMonoNever, a time already passed is at most MonoNow(), and
// a conversion errs late (by the few ns between its clock reads), never
// early.
#ifndef POLL_INTERNAL_MONOTONIC_CLOCK_H_
#define POLL_INTERNAL_MONOTONIC_CLOCK_H_

#include <chrono>
#include <cstdint>
#include <limits>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gopoll::internal {

// "Never": later than any instant MonoNow() will reach.
inline constexpr int64_t kMonoNever = std::numeric_limits<int64_t>::max();

inline int64_t MonoNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The monotonic instant `d` from now: MonoNow() for d <= 0, kMonoNever for
// an infinite `d` or one too long to represent.
inline int64_t MonoAfter(absl::Duration d) {
  const int64_t now = MonoNow();
  if (d <= absl::ZeroDuration()) return now;
  const int64_t ns = absl::ToInt64Nanoseconds(d);  // saturates
  if (ns >= kMonoNever - now) return kMonoNever;
  return now + ns;
}

// The monotonic instant of wall-clock time `t`, given `wall_now`, an
// absl::Now() the caller read just before (saves a clock read when the
// caller needed one anyway, e.g. to see whether `t` has passed).
inline int64_t MonoFromAbsl(absl::Time t, absl::Time wall_now) {
  if (t == absl::InfiniteFuture()) return kMonoNever;
  return MonoAfter(t - wall_now);
}

// The monotonic instant of wall-clock time `t`: MonoNow() + (t - Now()).
inline int64_t MonoFromAbsl(absl::Time t) {
  if (t == absl::InfiniteFuture()) return kMonoNever;
  return MonoFromAbsl(t, absl::Now());
}

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_MONOTONIC_CLOCK_H_
