// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/fd_mutex.h
//
// FdMutex is Go's fdMutex: the lock every FD operation takes. One atomic
// 64-bit word holds
//   bit 0       closed
//   bit 1       read lock held
//   bit 2       write lock held
//   bits 3-22   reference count (every operation holds one reference)
//   bits 23-42  readers waiting for the read lock
//   bits 43-62  writers waiting for the write lock
// Readers are serialised among themselves and writers among themselves;
// a reader never waits for a writer. After IncrefAndClose every new
// Incref/RWLock fails with kClosing and every waiter blocked in RWLock is
// woken and fails too. The owner releases the OS handle when Decref or
// RWUnlock reports the last reference of a closed mutex.
//
// More than 2^20-1 simultaneous references or waiters is reported as
// kTooManyRefs (Go panics) and leaves the state unchanged.
#ifndef POLL_INTERNAL_FD_MUTEX_H_
#define POLL_INTERNAL_FD_MUTEX_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace gopoll::internal {

// kBusy: only from TryRWLock, the lock is held by another operation.
enum class FdLockResult { kOk, kClosing, kTooManyRefs, kBusy };

class FdMutex {
 public:
  FdMutex() = default;
  FdMutex(const FdMutex&) = delete;
  FdMutex& operator=(const FdMutex&) = delete;

  // Adds a reference.
  [[nodiscard]] FdLockResult Incref();
  // Marks closed and adds a reference; wakes all RWLock waiters. kClosing if
  // it was closed already.
  [[nodiscard]] FdLockResult IncrefAndClose();
  // Drops a reference. True if the mutex is closed and this was the last
  // reference: the caller must now release the descriptor. Dropping a
  // reference that is not held is a fatal bug.
  [[nodiscard]] bool Decref();
  // Takes a reference and the read (read=true) or write lock, blocking while
  // another reader (writer) holds it.
  [[nodiscard]] FdLockResult RWLock(bool read);
  // As RWLock, but never blocks: kBusy if the lock is held (event loops).
  [[nodiscard]] FdLockResult TryRWLock(bool read);
  // Releases the lock and its reference; the result is as for Decref.
  // Releasing a lock that is not held is a fatal bug.
  [[nodiscard]] bool RWUnlock(bool read);
  // For tests and diagnostics: true once IncrefAndClose has succeeded.
  bool IsClosed() const;

 private:
  static constexpr uint64_t kClosed = uint64_t{1} << 0;
  static constexpr uint64_t kRLock = uint64_t{1} << 1;
  static constexpr uint64_t kWLock = uint64_t{1} << 2;
  static constexpr uint64_t kRef = uint64_t{1} << 3;
  static constexpr uint64_t kRefMask = ((uint64_t{1} << 20) - 1) << 3;
  static constexpr uint64_t kRWait = uint64_t{1} << 23;
  static constexpr uint64_t kRMask = ((uint64_t{1} << 20) - 1) << 23;
  static constexpr uint64_t kWWait = uint64_t{1} << 43;
  static constexpr uint64_t kWMask = ((uint64_t{1} << 20) - 1) << 43;

  // The loops behind RWLock and RWUnlock: contention, waiters, closing,
  // errors. The inline versions below only try the uncontended case once.
  FdLockResult RWLockSlow(bool read);
  bool RWUnlockSlow(bool read);

  // A counting semaphore (Go's runtime_Semacquire/Semrelease).
  // Two counting semaphores (index 0: readers, 1: writers) sharing one
  // mutex, so an FD pays for one absl::Mutex, not two.
  class Semas {
   public:
    void Acquire(int i);
    void Release(int i);

   private:
    absl::Mutex mu_;
    uint32_t count_[2] ABSL_GUARDED_BY(mu_) = {0, 0};
  };

  std::atomic<uint64_t> state_{0};
  Semas semas_;
};

// Every FD operation takes and releases a lock: the common uncontended case
// is one compare-and-swap each, inline.
inline FdLockResult FdMutex::RWLock(bool read) {
  const uint64_t bit = read ? kRLock : kWLock;
  uint64_t old = state_.load(std::memory_order_relaxed);
  if ((old & (kClosed | bit)) == 0 && (old & kRefMask) != kRefMask &&
      state_.compare_exchange_strong(old, (old | bit) + kRef)) {
    return FdLockResult::kOk;
  }
  return RWLockSlow(read);
}

inline bool FdMutex::RWUnlock(bool read) {
  const uint64_t bit = read ? kRLock : kWLock;
  const uint64_t mask = read ? kRMask : kWMask;
  uint64_t old = state_.load(std::memory_order_relaxed);
  if ((old & bit) != 0 && (old & mask) == 0 && (old & kRefMask) != 0) {
    const uint64_t next = (old & ~bit) - kRef;
    if (state_.compare_exchange_strong(old, next)) {
      return (next & (kClosed | kRefMask)) == kClosed;
    }
  }
  return RWUnlockSlow(read);
}

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_FD_MUTEX_H_
