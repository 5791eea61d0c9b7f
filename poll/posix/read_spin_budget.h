// SPDX-License-Identifier: BSD-3-Clause
// poll/posix/read_spin_budget.h
//
// The one setting of the POSIX backends' interruptible-call strategy
// (WaitStrategy::kInterruptibleCall, the Linux default for blocking
// callers): the read spin budget, how long a thread whose reads keep
// waiting for data looks for it before it blocks (see
// poll/posix/read_spin.h for when it spins). Process-wide; zero disables
// spinning; negative values count as zero; default 20 µs. It does not
// affect kPoller FDs or event loops. POSIX only (Linux, plan9_stub): the
// header and its library do not exist on Windows.
//
//   #include "poll/posix/read_spin_budget.h"
//   gopoll::SetReadSpinBudget(absl::ZeroDuration());   // never spin
#ifndef POLL_POSIX_READ_SPIN_BUDGET_H_
#define POLL_POSIX_READ_SPIN_BUDGET_H_

// clang-format off
#include "poll/require_cxx20.h"
// clang-format on

#include <cstdint>

#include "absl/time/time.h"

namespace gopoll {

void SetReadSpinBudget(absl::Duration budget);
absl::Duration ReadSpinBudget();
// The same in nanoseconds, for the backends' hot path.
int64_t ReadSpinBudgetNs();

}  // namespace gopoll

#endif  // POLL_POSIX_READ_SPIN_BUDGET_H_
