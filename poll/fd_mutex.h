// poll/fd_mutex.h
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
#ifndef POLL_FD_MUTEX_H_
#define POLL_FD_MUTEX_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace gopoll {

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

}  // namespace gopoll

#endif  // POLL_FD_MUTEX_H_
