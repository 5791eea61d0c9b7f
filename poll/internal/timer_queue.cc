// SPDX-License-Identifier: BSD-3-Clause
#include "poll/internal/timer_queue.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "absl/time/time.h"
#include "poll/internal/perturb.h"

namespace gopoll::internal {
namespace {

// sleep_until_ while the thread is not sleeping: no Arm needs to wake it.
constexpr int64_t kAwake = std::numeric_limits<int64_t>::min();

// abseil's timed waits end at a wall-clock instant (a CLOCK_REALTIME futex
// or pthread_cond_timedwait; absl::Now() on Windows), so a wall clock
// stepped back during a wait would stretch it by the step. The thread
// re-reads the monotonic clock at least this often, which bounds the delay.
constexpr int64_t kMaxSleepNs = 1'000'000'000;

}  // namespace

TimerQueue& TimerQueue::Default() {
  static TimerQueue* const queue = new TimerQueue(true);
  return *queue;
}

TimerQueue::TimerQueue(bool threaded) : sleep_until_(kAwake) {
  heap_.reserve(64);
  if (threaded) thread_ = std::thread([this] { Loop(); });
}

TimerQueue::~TimerQueue() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
    cv_.Signal();
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock l(&mu_);
  for (Entry& e : heap_) {
    e.timer->index_ = -1;
    e.timer->queue_ = nullptr;
  }
  heap_.clear();
}

// Go's siftupTimer/siftdownTimer: a 4-ary heap is shallower than a binary
// one (log4 n levels) and a node's four children are adjacent in memory.
void TimerQueue::SiftUpLocked(int32_t i) const {
  const Entry e = heap_[i];
  while (i > 0) {
    const int32_t parent = (i - 1) / 4;
    if (heap_[parent].key <= e.key) break;
    heap_[i] = heap_[parent];
    heap_[i].timer->index_ = i;
    i = parent;
  }
  heap_[i] = e;
  e.timer->index_ = i;
}

void TimerQueue::SiftDownLocked(int32_t i) const {
  const Entry e = heap_[i];
  const int64_t n = static_cast<int64_t>(heap_.size());
  for (;;) {
    const int64_t first = 4 * int64_t{i} + 1;
    if (first >= n) break;
    const int64_t end = std::min(first + 4, n);
    int64_t best = first;
    for (int64_t c = first + 1; c < end; ++c) {
      if (heap_[c].key < heap_[best].key) best = c;
    }
    if (heap_[best].key >= e.key) break;
    heap_[i] = heap_[best];
    heap_[i].timer->index_ = i;
    i = static_cast<int32_t>(best);
  }
  heap_[i] = e;
  e.timer->index_ = i;
}

void TimerQueue::RemoveLocked(Timer* t) {
  const int32_t i = t->index_;
  t->index_ = -1;
  t->queue_ = nullptr;
  const Entry last = heap_.back();
  heap_.pop_back();
  if (last.timer == t) return;
  heap_[i] = last;
  if (i > 0 && heap_[(i - 1) / 4].key > last.key) {
    SiftUpLocked(i);
  } else {
    SiftDownLocked(i);
  }
}

void TimerQueue::SettleHeadLocked() const {
  while (!heap_.empty() && heap_[0].key < heap_[0].timer->when_) {
    heap_[0].key = heap_[0].timer->when_;
    SiftDownLocked(0);
  }
}

void TimerQueue::Arm(Timer* t, int64_t when, uint64_t seq) {
  assert(t->fn != nullptr);
  absl::MutexLock l(&mu_);
  assert((t->index_ < 0 || t->queue_ == this) && "armed on another queue");
  t->when_ = when;
  t->seq_ = seq;
  t->pass_ = pass_;
  if (t->index_ >= 0) {
    Entry& e = heap_[t->index_];
    // Later (or equal): the key stays where it is, behind `when`; the timer
    // moves when the key reaches the top (see RunDueLocked).
    if (when >= e.key) return;
    e.key = when;
    SiftUpLocked(t->index_);
  } else {
    assert(heap_.size() < static_cast<size_t>(INT32_MAX));
    t->queue_ = this;
    heap_.push_back({when, t});
    SiftUpLocked(static_cast<int32_t>(heap_.size() - 1));
  }
  if (heap_[0].timer == t && when < sleep_until_) {
    sleep_until_ = kAwake;  // one Signal is enough
    cv_.Signal();
  }
}

bool TimerQueue::Cancel(Timer* t) {
  absl::MutexLock l(&mu_);
  bool removed = false;
  if (t->index_ >= 0) {
    assert(t->queue_ == this && "armed on another queue");
    RemoveLocked(t);
    removed = true;
  }
  if (running_ == t && running_thread_ != std::this_thread::get_id()) {
    running_cancelled_ = true;
    auto done = [this, t]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return running_ != t;
    };
    mu_.Await(absl::Condition(&done));
  }
  return removed;
}

void TimerQueue::Remove(Timer* t) {
  absl::MutexLock l(&mu_);
  if (t->index_ < 0) return;
  assert(t->queue_ == this && "armed on another queue");
  RemoveLocked(t);
}

int64_t TimerQueue::NextWhen() const {
  absl::MutexLock l(&mu_);
  SettleHeadLocked();
  return heap_.empty() ? kMonoNever : heap_[0].key;
}

size_t TimerQueue::size() const {
  absl::MutexLock l(&mu_);
  return heap_.size();
}

int TimerQueue::RunDueLocked(int64_t now) {
  const std::thread::id self = std::this_thread::get_id();
  // From inside one of this queue's callbacks: running more here would
  // break "one callback at a time" (and Cancel's wait for running_).
  if (running_ != nullptr && running_thread_ == self) return 0;
  const uint32_t pass = ++pass_;
  int ran = 0;
  while (!stop_) {
    // Another thread (a second RunExpired caller) is running a callback.
    if (running_ != nullptr) {
      mu_.Await(absl::Condition(this, &TimerQueue::IdleLocked));
      continue;
    }
    if (heap_.empty()) break;
    Entry& head = heap_[0];
    if (head.key > now) break;
    Timer* t = head.timer;
    if (head.key < t->when_) {
      // Re-armed later since it was placed: move it to its real `when`.
      head.key = t->when_;
      SiftDownLocked(0);
      continue;
    }
    if (t->pass_ == pass) break;  // armed during this pass: the next one
    RemoveLocked(t);
    const Timer::Callback fn = t->fn;
    void* const arg = t->arg;
    const uint64_t seq = t->seq_;
    running_ = t;
    running_thread_ = self;
    running_cancelled_ = false;
    mu_.Unlock();
    GOPOLL_PERTURB_POINT("timer.fire");
    fn(arg, seq);  // may free t, unless a Cancel of t is waiting
    mu_.Lock();
    if (running_cancelled_ && t->index_ >= 0) RemoveLocked(t);
    running_cancelled_ = false;
    running_ = nullptr;
    ++ran;
  }
  return ran;
}

int TimerQueue::RunExpired(int64_t now) {
  absl::MutexLock l(&mu_);
  return RunDueLocked(now);
}

void TimerQueue::Loop() {
  absl::MutexLock l(&mu_);
  while (!stop_) {
    RunDueLocked(MonoNow());
    if (stop_) break;
    const int64_t now = MonoNow();
    // The head's key is a lower bound of the earliest `when` (keys of
    // timers re-armed later stay behind): waking for it is at worst early.
    const int64_t head = heap_.empty() ? kMonoNever : heap_[0].key;
    if (head <= now) continue;
    if (head == kMonoNever) {
      sleep_until_ = kMonoNever;
      cv_.Wait(&mu_);
    } else {
      // A relative wait measured on the monotonic clock; waking early is
      // harmless (the loop re-checks), firing early is impossible.
      const int64_t wait = std::min(head - now, kMaxSleepNs);
      sleep_until_ = now + wait;
      cv_.WaitWithTimeout(&mu_, absl::Nanoseconds(wait));
    }
    sleep_until_ = kAwake;
  }
}

}  // namespace gopoll::internal
