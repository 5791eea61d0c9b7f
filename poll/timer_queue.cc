#include "poll/timer_queue.h"

#include "absl/time/time.h"

namespace gopoll {

TimerQueue& TimerQueue::Default() {
  static TimerQueue* q = new TimerQueue(true);
  return *q;
}

TimerQueue::TimerQueue(bool threaded) {
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
  for (Timer* t : heap_) t->index_ = -1;
  heap_.clear();
}

void TimerQueue::Place(Timer* t, int32_t i) {
  heap_[i] = t;
  t->index_ = i;
}

void TimerQueue::SiftUp(int32_t i) {
  Timer* t = heap_[i];
  while (i > 0) {
    int32_t parent = (i - 1) / 4;
    if (heap_[parent]->when_ <= t->when_) break;
    Place(heap_[parent], i);
    i = parent;
  }
  Place(t, i);
}

void TimerQueue::SiftDown(int32_t i) {
  Timer* t = heap_[i];
  const int32_t n = static_cast<int32_t>(heap_.size());
  for (;;) {
    int32_t first = 4 * i + 1;
    if (first >= n) break;
    int32_t best = first;
    int32_t last = first + 4 < n ? first + 4 : n;
    for (int32_t c = first + 1; c < last; ++c) {
      if (heap_[c]->when_ < heap_[best]->when_) best = c;
    }
    if (heap_[best]->when_ >= t->when_) break;
    Place(heap_[best], i);
    i = best;
  }
  Place(t, i);
}

void TimerQueue::Remove(Timer* t) {
  int32_t i = t->index_;
  Timer* last = heap_.back();
  heap_.pop_back();
  t->index_ = -1;
  if (last == t) return;
  Place(last, i);
  if (i > 0 && heap_[(i - 1) / 4]->when_ > last->when_) {
    SiftUp(i);
  } else {
    SiftDown(i);
  }
}

void TimerQueue::Arm(Timer* t, int64_t when, uint64_t seq) {
  absl::MutexLock l(&mu_);
  t->seq_ = seq;
  t->queue_ = this;
  if (t->index_ >= 0) {
    int64_t old = t->when_;
    t->when_ = when;
    if (when < old) {
      SiftUp(t->index_);
    } else {
      SiftDown(t->index_);
    }
  } else {
    t->when_ = when;
    heap_.push_back(t);
    SiftUp(static_cast<int32_t>(heap_.size()) - 1);
  }
  if (heap_[0] == t && when < sleep_until_) cv_.Signal();
}

bool TimerQueue::Cancel(Timer* t) {
  absl::MutexLock l(&mu_);
  bool armed = t->index_ >= 0;
  if (armed) Remove(t);
  if (running_ == t && running_thread_ != std::this_thread::get_id()) {
    auto done = [this, t]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return running_ != t;
    };
    mu_.Await(absl::Condition(&done));
  }
  return armed;
}

int64_t TimerQueue::NextWhen() const {
  absl::MutexLock l(&mu_);
  return heap_.empty() ? kMonoNever : heap_[0]->when_;
}

size_t TimerQueue::size() const {
  absl::MutexLock l(&mu_);
  return heap_.size();
}

Timer* TimerQueue::PopDueLocked(int64_t now, uint64_t* seq) {
  if (heap_.empty() || heap_[0]->when_ > now) return nullptr;
  Timer* t = heap_[0];
  Remove(t);
  *seq = t->seq_;
  running_ = t;
  running_thread_ = std::this_thread::get_id();
  return t;
}

int TimerQueue::RunExpired(int64_t now) {
  int ran = 0;
  absl::MutexLock l(&mu_);
  uint64_t seq;
  while (Timer* t = PopDueLocked(now, &seq)) {
    mu_.Unlock();
    t->fn(t->arg, seq);
    mu_.Lock();
    running_ = nullptr;
    ++ran;
  }
  return ran;
}

void TimerQueue::Loop() {
  absl::MutexLock l(&mu_);
  while (!stop_) {
    int64_t now = MonoNow();
    uint64_t seq;
    if (Timer* t = PopDueLocked(now, &seq)) {
      mu_.Unlock();
      t->fn(t->arg, seq);
      mu_.Lock();
      running_ = nullptr;
      continue;
    }
    sleep_until_ = heap_.empty() ? kMonoNever : heap_[0]->when_;
    if (sleep_until_ == kMonoNever) {
      cv_.Wait(&mu_);
    } else {
      // A relative wait on the monotonic clock; waking early is harmless
      // (the loop re-checks), firing early is impossible.
      cv_.WaitWithTimeout(&mu_, absl::Nanoseconds(sleep_until_ - now));
    }
    sleep_until_ = kMonoNever;
  }
}

}  // namespace gopoll
