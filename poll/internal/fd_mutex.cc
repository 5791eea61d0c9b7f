// SPDX-License-Identifier: BSD-3-Clause
#include "poll/internal/fd_mutex.h"

#include "absl/base/internal/raw_logging.h"

namespace gopoll::internal {

void FdMutex::Semas::Acquire(int i) {
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(
      +[](uint32_t* c) { return *c > 0; }, &count_[i]));
  --count_[i];
}

void FdMutex::Semas::Release(int i) {
  absl::MutexLock l(&mu_);
  ++count_[i];
}

FdLockResult FdMutex::Incref() {
  uint64_t old = state_.load();
  for (;;) {
    if (old & kClosed) return FdLockResult::kClosing;
    uint64_t next = old + kRef;
    if ((next & kRefMask) == 0) return FdLockResult::kTooManyRefs;
    if (state_.compare_exchange_weak(old, next)) return FdLockResult::kOk;
  }
}

FdLockResult FdMutex::IncrefAndClose() {
  uint64_t old = state_.load();
  for (;;) {
    if (old & kClosed) return FdLockResult::kClosing;
    uint64_t next = (old | kClosed) + kRef;
    if ((next & kRefMask) == 0) return FdLockResult::kTooManyRefs;
    // All waiters are woken below; they will see the closed bit.
    next &= ~(kRMask | kWMask);
    if (state_.compare_exchange_weak(old, next)) break;
  }
  for (uint64_t n = (old & kRMask) / kRWait; n > 0; --n) semas_.Release(0);
  for (uint64_t n = (old & kWMask) / kWWait; n > 0; --n) semas_.Release(1);
  return FdLockResult::kOk;
}

bool FdMutex::Decref() {
  uint64_t old = state_.load();
  for (;;) {
    if ((old & kRefMask) == 0) {
      ABSL_RAW_LOG(FATAL, "poll: inconsistent FdMutex (Decref without ref)");
    }
    uint64_t next = old - kRef;
    if (state_.compare_exchange_weak(old, next)) {
      return (next & (kClosed | kRefMask)) == kClosed;
    }
  }
}

FdLockResult FdMutex::RWLockSlow(bool read) {
  const uint64_t bit = read ? kRLock : kWLock;
  const uint64_t wait = read ? kRWait : kWWait;
  const uint64_t mask = read ? kRMask : kWMask;
  const int sema = read ? 0 : 1;
  uint64_t old = state_.load();
  for (;;) {
    if (old & kClosed) return FdLockResult::kClosing;
    uint64_t next;
    if ((old & bit) == 0) {
      next = (old | bit) + kRef;  // free: take it
      if ((next & kRefMask) == 0) return FdLockResult::kTooManyRefs;
    } else {
      next = old + wait;  // held: queue as a waiter
      if ((next & mask) == 0) return FdLockResult::kTooManyRefs;
    }
    if (!state_.compare_exchange_weak(old, next)) continue;
    if ((old & bit) == 0) return FdLockResult::kOk;
    // The waker subtracted our wait count; try again.
    semas_.Acquire(sema);
    old = state_.load();
  }
}

FdLockResult FdMutex::TryRWLock(bool read) {
  const uint64_t bit = read ? kRLock : kWLock;
  uint64_t old = state_.load();
  for (;;) {
    if (old & kClosed) return FdLockResult::kClosing;
    if (old & bit) return FdLockResult::kBusy;
    uint64_t next = (old | bit) + kRef;
    if ((next & kRefMask) == 0) return FdLockResult::kTooManyRefs;
    if (state_.compare_exchange_weak(old, next)) return FdLockResult::kOk;
  }
}

bool FdMutex::RWUnlockSlow(bool read) {
  const uint64_t bit = read ? kRLock : kWLock;
  const uint64_t wait = read ? kRWait : kWWait;
  const uint64_t mask = read ? kRMask : kWMask;
  const int sema = read ? 0 : 1;
  uint64_t old = state_.load();
  for (;;) {
    if ((old & bit) == 0 || (old & kRefMask) == 0) {
      ABSL_RAW_LOG(FATAL, "poll: inconsistent FdMutex (unlock not held)");
    }
    uint64_t next = (old & ~bit) - kRef;
    if (old & mask) next -= wait;  // wake one waiter
    if (state_.compare_exchange_weak(old, next)) {
      if (old & mask) semas_.Release(sema);
      return (next & (kClosed | kRefMask)) == kClosed;
    }
  }
}

bool FdMutex::IsClosed() const { return (state_.load() & kClosed) != 0; }

}  // namespace gopoll::internal
