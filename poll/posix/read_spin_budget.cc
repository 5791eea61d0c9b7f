// SPDX-License-Identifier: BSD-3-Clause
#include "poll/posix/read_spin_budget.h"

#include <algorithm>
#include <atomic>

namespace gopoll {
namespace {
std::atomic<int64_t> read_spin_ns{20'000};
}  // namespace

void SetReadSpinBudget(absl::Duration budget) {
  read_spin_ns.store(std::max<int64_t>(0, absl::ToInt64Nanoseconds(budget)),
                     std::memory_order_relaxed);
}

absl::Duration ReadSpinBudget() {
  return absl::Nanoseconds(ReadSpinBudgetNs());
}

int64_t ReadSpinBudgetNs() {
  return read_spin_ns.load(std::memory_order_relaxed);
}

}  // namespace gopoll
