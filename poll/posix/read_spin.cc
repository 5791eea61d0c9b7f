// SPDX-License-Identifier: BSD-3-Clause
#include "poll/posix/read_spin.h"

#include <poll.h>
#include <sched.h>

#include <algorithm>

#include "poll/fd.h"
#include "poll/internal/monotonic_clock.h"
#include "poll/posix/read_spin_budget.h"

namespace gopoll::posix {
namespace {
// A read that took longer than this waited for its data.
constexpr int64_t kWaitedNs = 4'000;
// A sched_yield that took longer than this ran another thread meanwhile.
constexpr int64_t kSharedCpuNs = 2'000;
// One read in kExplore goes the way the averages do not favour.
constexpr uint32_t kExplore = 64;
// Waiting reads that measure both ways before the averages decide.
constexpr uint32_t kWarmup = 8;
// How often (in spin decisions) the CPU mask is looked at again.
constexpr uint32_t kCpuRecheck = 256;

// A moving average over about 8 samples; one sample counts for at most
// `cap` (a thread descheduled for a millisecond says nothing about spinning).
void Average(int64_t* avg, int64_t sample, int64_t cap) {
  *avg += (std::min(sample, cap) - *avg) / 8;
}
}  // namespace

ReadSpin& ReadSpin::Current() {
  thread_local ReadSpin s;
  return s;
}

bool ReadSpin::Allowed() {
  if (cpu_checks_++ % kCpuRecheck == 0) {
    cpu_set_t set;
    multi_cpu_ =
        sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1;
  }
  return multi_cpu_;
}

bool ReadSpin::Losing() const {
  return waiting_reads_ >= kWarmup && spin_ns_ > block_ns_;
}

void ReadSpin::BeforeRead(Sysfd fd, absl::FunctionRef<bool()> stop) {
  spun_ = false;
  attempted_ = false;
  timed_block_ = false;
  start_ = -1;  // not timed
  const int64_t budget = ReadSpinBudgetNs();
  if (budget <= 0 || !Allowed()) return;
  if (Losing()) {
    // Spinning does not pay now (e.g. the other CPU is busy): reads run
    // untimed, except one in kExplore that is timed blocking (to keep that
    // average current) and one that spins (to see whether spinning pays
    // again).
    const uint32_t n = ++losing_reads_;
    if (n % kExplore == kExplore / 2) {
      timed_block_ = true;
      start_ = internal::MonoNow();
      return;
    }
    if (n % kExplore != 0) return;
    start_ = internal::MonoNow();
  } else {
    start_ = internal::MonoNow();
    if (!waiting_) return;  // the data was there last time: just read
    // The first waiting reads measure blocking, the next ones spinning;
    // then one in kExplore blocks, to keep that average current.
    const uint32_t n = waiting_reads_++;
    if (n < kWarmup / 2 || (n >= kWarmup && n % kExplore == 0)) {
      timed_block_ = true;
      return;
    }
  }
  // A spin attempt: its sample is the whole wait, until the read returns.
  attempted_ = true;
  const int64_t give_up = start_ + budget;
  pollfd p{static_cast<int>(fd), POLLIN, 0};
  for (int i = 0;; ++i) {
    if (::poll(&p, 1, 0) > 0) {  // readable, hung up or failed: read now
      spun_ = i > 0;
      return;
    }
    if (stop()) {  // the caller reports the deadline or Close
      attempted_ = false;
      return;
    }
    const int64_t now = internal::MonoNow();
    if (now >= give_up) return;  // the blocking read follows
    sched_yield();
    // A yield that let another thread run: this CPU is shared, and a
    // spinning thread only takes time from the one it waits for. Block.
    if (internal::MonoNow() - now > kSharedCpuNs) return;
  }
}

void ReadSpin::AfterRead() {
  if (start_ < 0) return;
  // Both ways are timed from the start of the wait to the end of the read,
  // so the averages compare like with like (a spin that ran out or gave up
  // counts with the blocking read that followed it).
  const int64_t waited_ns = internal::MonoNow() - start_;
  const bool waited = waited_ns > kWaitedNs;
  const int64_t cap = 2 * ReadSpinBudgetNs();
  if (attempted_ && (spun_ || waited)) Average(&spin_ns_, waited_ns, cap);
  if (timed_block_ && waited) Average(&block_ns_, waited_ns, cap);
  waiting_ = spun_ || waited;
}

}  // namespace gopoll::posix
