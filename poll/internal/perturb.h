// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/perturb.h
//
// GOPOLL_PERTURB_POINT("name"): a schedule-perturbation point at one of the
// library's decision points (before each poller or loop wait, between a
// would-block attempt and arming the waiter, inside Close and Init, where
// a timer fires, at loop shutdown). Test-only:
//
//   - Release builds (GOPOLL_PERTURB not defined, the default everywhere,
//     including the CMake build): the macro expands to an empty statement.
//     No code, no data: the library's objects are identical to objects
//     built without the points (tools/reliability/perturb_zero_cost.sh).
//   - Built with -DGOPOLL_PERTURB (bazel --config=perturb, which defines it
//     for poll's own sources only): each point may delay the thread passing
//     it. GOPOLL_PERTURB_SEED (environment, read once) chooses, per point
//     name, how often it delays (never, or one hit in 2, 4, 8 or 16) and
//     how long at most (a yield, or up to 20 µs, 200 µs or 2 ms); each hit
//     draws from a per-thread generator seeded from the seed. Unset or 0:
//     no delays. A failing seed fails again with the same seed at a
//     similar rate (the threads' interleaving is not itself replayed).
//
// Points are statements: GOPOLL_PERTURB_POINT("loop.before_wait");
#ifndef POLL_INTERNAL_PERTURB_H_
#define POLL_INTERNAL_PERTURB_H_

#ifdef GOPOLL_PERTURB

#include <cstdint>

namespace gopoll::perturb_internal {

// One point: its name decides its share of the seed's perturbation.
class Site {
 public:
  explicit Site(const char* name);
  void Hit();

 private:
  uint32_t one_in_;        // 0: never delays
  uint32_t max_delay_ns_;  // 0: yields instead of sleeping
};

// The seed in use (0: perturbation off).
uint64_t Seed();

}  // namespace gopoll::perturb_internal

#define GOPOLL_PERTURB_POINT(name)                                     \
  do {                                                                 \
    static ::gopoll::perturb_internal::Site gopoll_perturb_site(name); \
    gopoll_perturb_site.Hit();                                         \
  } while (0)

#else  // !GOPOLL_PERTURB

#define GOPOLL_PERTURB_POINT(name) \
  do {                             \
  } while (0)

#endif  // GOPOLL_PERTURB

#endif  // POLL_INTERNAL_PERTURB_H_
