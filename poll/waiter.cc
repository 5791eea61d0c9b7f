#include "poll/waiter.h"

#include "absl/base/const_init.h"
#include "absl/synchronization/mutex.h"
#include "poll/poller.h"

namespace gopoll {

// Waiters are never freed: a thread that exits returns its waiter here and a
// new thread reuses it. A waker that is still inside Wake() for the old thread
// then at worst causes one spurious wake-up, which every waiter tolerates.
struct ThreadWaiterPool {
  static ThreadWaiter* Get() {
    absl::MutexLock l(&mu);
    if (free_list == nullptr) return new ThreadWaiter();
    ThreadWaiter* w = free_list;
    free_list = w->next_free_;
    w->next_free_ = nullptr;
    return w;
  }
  static void Put(ThreadWaiter* w) {
    w->state_.store(0);
    w->leading_.store(nullptr);
    absl::MutexLock l(&mu);
    w->next_free_ = free_list;
    free_list = w;
  }
  static absl::Mutex mu;
  static ThreadWaiter* free_list ABSL_GUARDED_BY(mu);
};

absl::Mutex ThreadWaiterPool::mu(absl::kConstInit);
ThreadWaiter* ThreadWaiterPool::free_list = nullptr;

namespace {
struct ThreadWaiterHolder {
  ThreadWaiter* w = ThreadWaiterPool::Get();
  ~ThreadWaiterHolder() { ThreadWaiterPool::Put(w); }
};
}  // namespace

ThreadWaiter& ThreadWaiter::Current() {
  thread_local ThreadWaiterHolder holder;
  return *holder.w;
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
