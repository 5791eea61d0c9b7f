// SPDX-License-Identifier: BSD-3-Clause
// poll/posix/read_spin.h
//
// ReadSpin: the bounded, adaptive spin of the interruptible-call strategy
// (poll/posix/interruptible.h). A thread whose reads have been waiting
// (request/response traffic) looks for data with poll(2) and a zero timeout,
// yielding the CPU in between, for up to the spin budget before it makes the
// blocking read. The thread stays runnable, so the reply does not pay a
// wake-up from an idle CPU (tens of µs on these VMs); Go's runtime spins for
// the same reason.
//
// Only where it pays, measured per thread:
//   - only when the thread's previous read had to wait (not for streams,
//     whose data is there at once); reads are timed (two clock reads) only
//     while spinning may pay;
//   - never when the thread may run on one CPU only (its peer needs it);
//   - the thread keeps a moving average of how long its waiting reads take
//     (from the start of the wait to the end of the read) when it spins
//     and when it blocks, and spins only while spinning is the faster way; one
//     read in 64 tries the other way, so the choice follows the load;
//   - a spin stops when it runs out its budget, or when one of its yields
//     ran another thread (the CPU is shared: spinning only delays the
//     peer); the blocking read follows and the whole wait is the sample;
//   - a deadline or Close ends a spin at once (the caller's `stop`).
// The budget is process-wide: SetReadSpinBudget (poll/fd.h); zero disables.
// State is per thread; nothing here is shared between threads.
#ifndef POLL_POSIX_READ_SPIN_H_
#define POLL_POSIX_READ_SPIN_H_

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "poll/sysfd.h"

namespace gopoll::posix {

class ReadSpin {
 public:
  // The calling thread's state.
  static ReadSpin& Current();

  // Before a blocking read of `fd`: spins if the policy says so, until `fd`
  // is readable (or hung up), the budget is spent or `stop()` holds.
  void BeforeRead(Sysfd fd, absl::FunctionRef<bool()> stop);
  // After it (the read returned).
  void AfterRead();

 private:
  bool Allowed();
  bool Losing() const;

  bool waiting_ = false;  // the previous read had to wait for data
  bool spun_ = false;
  bool attempted_ = false;  // this read spun (its wait feeds spin_ns_) // this
                            // read's spin found the data after waiting
  bool timed_block_ = false;    // this read blocks and feeds block_ns_
  int64_t start_ = -1;          // when this read began (MonoNow); -1: not timed
  uint32_t waiting_reads_ = 0;  // waiting reads while spinning may pay
  uint32_t losing_reads_ = 0;   // reads while it does not
  uint32_t cpu_checks_ = 0;
  bool multi_cpu_ = false;
  // Moving averages of a waiting read's wait, spinning and blocking.
  int64_t spin_ns_ = 0;
  int64_t block_ns_ = 0;
};

}  // namespace gopoll::posix

#endif  // POLL_POSIX_READ_SPIN_H_
