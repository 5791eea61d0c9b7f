// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/timer_queue.h
//
// The one deadline runtime of poll: a 4-ary min-heap of intrusive timers on
// the monotonic clock (poll/internal/monotonic_clock.h). It promises:
//   - Arm, re-arm and Cancel are O(log n) and allocate nothing (the heap
//     array only grows to the largest number of timers armed at once).
//     Re-arming an armed timer to a later time is O(1): like Go's runtime
//     (timerModifiedLater), the heap keeps the old, earlier key and the timer
//     is moved when that key reaches the top.
//   - No thread per timer: a threaded queue (TimerQueue::Default() and
//     TimerQueue(true)) runs every callback on its one thread, sleeping until
//     the earliest timer; an event loop drives a manual queue
//     (TimerQueue(false)) with NextWhen() and RunExpired().
//   - A timer never fires early: only when MonoNow() (or RunExpired's `now`)
//     is at or past its `when`.
//   - Arm wakes the queue's thread only when the timer becomes earlier than
//     what the thread sleeps for; re-arming later never wakes it.
//   - Callbacks of one queue run one at a time, without the queue's lock
//     held: they may Arm and Cancel any timer, their own included.
//   - When Cancel() returns, the timer's callback is not running on another
//     thread and will not run unless the timer is armed again, so its owner
//     may then be destroyed. From inside that very callback Cancel does not
//     wait.
//   - A firing timer passes the `seq` given to the Arm that armed it, so
//     owners can ignore timers armed for an older deadline (Go's rseq/wseq).
#ifndef POLL_INTERNAL_TIMER_QUEUE_H_
#define POLL_INTERNAL_TIMER_QUEUE_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "poll/internal/monotonic_clock.h"

namespace gopoll {

class TimerQueueTestPeer;

}  // namespace gopoll

namespace gopoll::internal {

class TimerQueue;

// A timer embedded in its owner (e.g. a PollDesc). Set `fn` and `arg`, then
// Arm and Cancel it through one queue. Neither copyable nor movable: the
// queue points at it. It must not be destroyed while armed (Cancel first, or
// let it fire), nor armed on a second queue while armed on a first.
struct Timer {
  using Callback = void (*)(void* arg, uint64_t seq);

  Timer() = default;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer() { assert(index_ < 0 && "Timer destroyed while armed"); }

  Callback fn = nullptr;
  void* arg = nullptr;

 private:
  friend class TimerQueue;
  friend class ::gopoll::TimerQueueTestPeer;
  // All guarded by the mutex of the queue the timer is armed on.
  int64_t when_ = 0;             // the deadline; >= its key in the heap
  uint64_t seq_ = 0;             // passed to fn
  int32_t index_ = -1;           // position in the heap, -1 when not armed
  uint32_t pass_ = 0;            // the queue's pass_ when last armed
  TimerQueue* queue_ = nullptr;  // the queue it is armed on
};

class TimerQueue {
 public:
  // The process-wide threaded queue, started on first use, never destroyed.
  static TimerQueue& Default();

  // A queue with its own thread (threaded=true), or a manual one driven by
  // an event loop with NextWhen() and RunExpired() (threaded=false).
  explicit TimerQueue(bool threaded);
  // Stops the thread (waiting for a running callback); timers still armed
  // are dropped, unfired. Not from inside one of the queue's callbacks.
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Arms (or re-arms) `t` to fire at monotonic `when` (kMonoNever: never)
  // with `seq`, replacing any earlier when/seq. t->fn must be set.
  void Arm(Timer* t, int64_t when, uint64_t seq);
  // Disarms `t`; true if it was armed (had not fired yet). Waits for its
  // running callback unless called from inside that callback; a callback
  // that re-arms its own timer meanwhile is disarmed again.
  bool Cancel(Timer* t);
  // Disarms `t` without waiting for a running callback, so it may be
  // called with locks held that the callback takes; that callback may still
  // run (the caller makes it harmless, e.g. with a newer `seq`).
  void Remove(Timer* t);

  // The earliest `when` armed, kMonoNever if none.
  int64_t NextWhen() const;
  // Manual mode: on the calling thread, runs the callbacks of the timers
  // due at `now` (when <= now) and returns how many ran. A timer armed
  // during this call (e.g. by a callback, for `now` again) runs at the next
  // call, so a self-re-arming timer cannot keep the loop here forever.
  // Called from inside a callback of this queue it runs nothing.
  int RunExpired(int64_t now);

  // The number of armed timers.
  size_t size() const;

 private:
  friend class ::gopoll::TimerQueueTestPeer;

  struct Entry {
    int64_t key;  // heap order; <= timer->when_
    Timer* timer;
  };

  void Loop();
  // Runs the timers due at `now`, one pass (see RunExpired).
  int RunDueLocked(int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves heads whose key is behind their timer's `when` (re-armed later)
  // down until the head's key is its timer's `when`.
  void SettleHeadLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IdleLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return running_ == nullptr;
  }
  void RemoveLocked(Timer* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SiftUpLocked(int32_t i) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SiftDownLocked(int32_t i) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  // Settling the head (also in NextWhen) reorders the heap, not its set.
  mutable std::vector<Entry> heap_ ABSL_GUARDED_BY(mu_);
  // What the thread sleeps until; kAwake while it is not sleeping.
  int64_t sleep_until_ ABSL_GUARDED_BY(mu_);
  // The timer whose callback is running, and on which thread.
  Timer* running_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread::id running_thread_ ABSL_GUARDED_BY(mu_);
  // Set by a Cancel waiting for running_: a re-arm made by the callback is
  // removed when it returns (the canceller may not get the lock before the
  // thread would run it again).
  bool running_cancelled_ ABSL_GUARDED_BY(mu_) = false;
  // Counts RunDueLocked passes; a timer armed during a pass waits for the
  // next one.
  uint32_t pass_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_TIMER_QUEUE_H_
