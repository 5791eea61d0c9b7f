// poll/timer_queue.h
//
// The one deadline runtime of poll: a 4-ary min-heap of intrusive timers on
// the monotonic clock (poll/monotonic_clock.h).
//   - Arm, re-arm and Cancel are O(log n) and allocate nothing per call.
//   - No thread per timer: the threaded queue (TimerQueue::Default() and
//     TimerQueue(true)) runs every callback on its one thread, sleeping until
//     the earliest timer; an event loop drives a manual queue
//     (TimerQueue(false)) with NextWhen() and RunExpired().
//   - A timer never fires early: only when MonoNow() >= its `when`.
//   - Re-arming a timer later, or arming one that is not the earliest, does
//     not wake the queue's thread.
//   - Cancel() guarantees the callback is not running (and will not run)
//     when it returns, so the owner may then be destroyed; called from inside
//     that very callback it does not wait.
// A timer firing passes the `seq` given to the Arm that armed it, so owners
// can ignore timers armed for an older deadline (Go's rseq/wseq).
#ifndef POLL_TIMER_QUEUE_H_
#define POLL_TIMER_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "poll/monotonic_clock.h"

namespace gopoll {

class TimerQueue;

// Embedded in its owner. Set fn/arg once; then Arm/Cancel through a queue.
// Must not be destroyed while armed (Cancel first).
struct Timer {
  using Callback = void (*)(void* arg, uint64_t seq);
  Callback fn = nullptr;
  void* arg = nullptr;

 private:
  friend class TimerQueue;
  int64_t when_ = 0;
  uint64_t seq_ = 0;
  int32_t index_ = -1;  // position in the heap, -1 when not armed
  TimerQueue* queue_ = nullptr;
};

class TimerQueue {
 public:
  // The process-wide threaded queue, started on first use, never destroyed.
  static TimerQueue& Default();

  explicit TimerQueue(bool threaded);
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Arms (or re-arms) `t` to fire at monotonic `when` with `seq`.
  void Arm(Timer* t, int64_t when, uint64_t seq);
  // Disarms `t`. True if it was armed. See the header comment for the
  // guarantee about running callbacks.
  bool Cancel(Timer* t);

  // Manual mode: the earliest `when`, kMonoNever if none.
  int64_t NextWhen() const;
  // Manual mode: runs the callbacks of all timers due at `now` on the
  // calling thread; returns how many ran.
  int RunExpired(int64_t now);

  size_t size() const;

 private:
  void Loop();
  // Pops the earliest timer if due; its callback is then "running".
  Timer* PopDueLocked(int64_t now, uint64_t* seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(Timer* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SiftUp(int32_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SiftDown(int32_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Place(Timer* t, int32_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::vector<Timer*> heap_ ABSL_GUARDED_BY(mu_);
  // The thread's current sleep target; Arm wakes it only for earlier ones.
  int64_t sleep_until_ ABSL_GUARDED_BY(mu_) = kMonoNever;
  // The timer whose callback is running, and on which thread.
  Timer* running_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread::id running_thread_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace gopoll

#endif  // POLL_TIMER_QUEUE_H_
