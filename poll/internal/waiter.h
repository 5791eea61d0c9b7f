// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/waiter.h
//
// A Waiter is whoever waits for one direction of an FD to become ready: a
// parked thread (ThreadWaiter, below), and in an event loop a callback or a
// coroutine. PollDesc keeps at most one Waiter per direction; whoever takes a
// Waiter out of that slot calls its Wake() exactly once. Backends never need
// to know which kind of waiter they wake.
//
// ThreadWaiter is the per-thread waiter of blocking callers. Its wake state
// is one atomic word (parking uses a mutex and condition variable);
// Poller::Park() (see poller.h) blocks the thread until the word says
// "woken", and may meanwhile run the OS poller as leader.
#ifndef POLL_INTERNAL_WAITER_H_
#define POLL_INTERNAL_WAITER_H_

#include <atomic>
#include <cstdint>

#include "absl/synchronization/mutex.h"

namespace gopoll::internal {

class Poller;

class Waiter {
 public:
  // Called exactly once for every time this waiter was published into a
  // PollDesc slot and taken out by somebody else (I/O readiness, deadline,
  // Close). May run on any thread; must not block.
  virtual void Wake() = 0;

 protected:
  ~Waiter() = default;
};

class ThreadWaiter final : public Waiter {
 public:
  // The calling thread's waiter. It lives as long as the process: when its
  // thread exits it is recycled for a later thread, so a late Wake() from
  // another thread never touches freed memory.
  static ThreadWaiter& Current();

  void Wake() override;

  // --- For Poller implementations --------------------------------------
  static constexpr uint32_t kWoken = 1;  // a Wake() is pending
  static constexpr uint32_t kLead = 2;   // asked to become the poll leader

  // Marks woken without notifying (the waker is this very thread).
  void MarkWoken() { state_.fetch_or(kWoken); }
  bool IsWoken() const { return (state_.load() & kWoken) != 0; }
  // Clears and returns the pending bits in `mask`.
  uint32_t Take(uint32_t mask) { return state_.fetch_and(~mask) & mask; }
  // Blocks until any bit of `mask` is set (does not clear it).
  void WaitFor(uint32_t mask);
  // Sets `bits` and wakes the thread if it is blocked in WaitFor.
  void Post(uint32_t bits);
  // While a thread runs the OS poller's wait it registers that poller here,
  // so Wake() interrupts the wait. nullptr when not leading.
  void SetLeading(Poller* p) { leading_.store(p); }

  // Clears the state before the waiter goes back to its pool.
  void Reset();

  // Intrusive list hook for a poller's followers.
  ThreadWaiter* next_follower = nullptr;
  bool following = false;

 private:
  ThreadWaiter() = default;
  template <typename T>
  friend class RecycledPool;

  std::atomic<uint32_t> state_{0};
  std::atomic<Poller*> leading_{nullptr};
  // Parking. (std::atomic::wait was the first choice; libstdc++ 12's
  // fallback for platforms without futexes, used by mingw, lost wake-ups
  // under Wine.)
  absl::Mutex mu_;
  absl::CondVar cv_;
  ThreadWaiter* next_free_ = nullptr;
};

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_WAITER_H_
