#include "poll/posix/read_spin.h"

#include <poll.h>
#include <sched.h>

#include <algorithm>

#include "poll/fd.h"
#include "poll/monotonic_clock.h"

namespace gopoll::posix {
namespace {
// A read that took longer than this waited for its data.
constexpr int64_t kWaitedNs = 4'000;
// A sched_yield that took longer than this ran another thread meanwhile.
constexpr int64_t kSharedCpuNs = 2'000;
// One waiting read in kExplore goes the way the averages do not favour.
constexpr uint32_t kExplore = 64;
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

bool ReadSpin::ShouldSpin() {
  // One waiting read in kExplore goes the other way, so that both averages
  // stay current; the first four measure blocking, the next four spinning.
  const uint32_t n = reads_++;
  if (n < 4) return false;
  if (n < 8) return true;
  const bool faster = spin_ns_ <= block_ns_;
  return n % kExplore == 0 ? !faster : faster;
}

void ReadSpin::BeforeRead(Sysfd fd, absl::FunctionRef<bool()> stop) {
  spun_ = false;
  timed_block_ = false;
  const int64_t budget = ReadSpinBudgetNs();
  if (budget <= 0 || !Allowed()) {
    start_ = -1;  // no spinning here: no need to time the read either
    return;
  }
  start_ = MonoNow();
  if (!waiting_) return;
  if (!ShouldSpin()) {
    timed_block_ = true;
    return;
  }
  const int64_t give_up = start_ + budget;
  pollfd p{static_cast<int>(fd), POLLIN, 0};
  for (int i = 0;; ++i) {
    if (::poll(&p, 1, 0) > 0) {  // readable, hung up or failed: read now
      spun_ = i > 0;
      return;
    }
    if (stop()) return;  // the caller reports the deadline or Close
    const int64_t now = MonoNow();
    if (now >= give_up) break;
    sched_yield();
    // A yield that let another thread run: this CPU is shared, and a
    // spinning thread only takes time from the one it waits for.
    if (MonoNow() - now > kSharedCpuNs) break;
  }
  // Ran out, or the CPU is shared: the blocking read follows. Count this
  // wait as a spin of twice the budget, so that spinning loses against
  // blocking until a later try (one in kExplore) finds it paying again.
  Average(&spin_ns_, 2 * budget, 2 * budget);
}

void ReadSpin::AfterRead() {
  if (start_ < 0) return;
  // Both ways are timed from the start of the wait to the end of the read,
  // so the averages compare like with like.
  const int64_t waited_ns = MonoNow() - start_;
  const bool waited = waited_ns > kWaitedNs;
  const int64_t cap = 2 * ReadSpinBudgetNs();
  if (spun_) Average(&spin_ns_, waited_ns, cap);
  if (timed_block_ && waited) Average(&block_ns_, waited_ns, cap);
  waiting_ = spun_ || waited;
}

}  // namespace gopoll::posix
