#include "poll/waiter.h"

#include "absl/synchronization/mutex.h"
#include "poll/poller.h"
#include "poll/recycled.h"

namespace gopoll {

namespace {
// The thread's waiter; back to the pool (reset) when the thread exits. A
// waker still inside Wake() for the old thread then causes at most one
// spurious wake-up, which every waiter tolerates.
struct ThreadWaiterHolder {
  ThreadWaiter* w = RecycledPool<ThreadWaiter>::Get();
  ~ThreadWaiterHolder() {
    w->Reset();
    RecycledPool<ThreadWaiter>::Put(w);
  }
};
}  // namespace

ThreadWaiter& ThreadWaiter::Current() {
  thread_local ThreadWaiterHolder holder;
  return *holder.w;
}

void ThreadWaiter::Reset() {
  state_.store(0);
  leading_.store(nullptr);
}

void ThreadWaiter::Wake() {
  state_.fetch_or(kWoken);
  if (Poller* p = leading_.load()) p->Interrupt();
  // Taking the lock orders this signal after a waiter's check of state_.
  absl::MutexLock l(&mu_);
  cv_.Signal();
}

void ThreadWaiter::WaitFor(uint32_t mask) {
  absl::MutexLock l(&mu_);
  while ((state_.load() & mask) == 0) cv_.Wait(&mu_);
}

void ThreadWaiter::Post(uint32_t bits) {
  state_.fetch_or(bits);
  absl::MutexLock l(&mu_);
  cv_.Signal();
}

}  // namespace gopoll
