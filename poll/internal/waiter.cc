// SPDX-License-Identifier: BSD-3-Clause
#include "poll/internal/waiter.h"

#include <pthread.h>

#include "absl/synchronization/mutex.h"
#include "poll/internal/poller.h"
#include "poll/internal/recycled.h"

namespace gopoll::internal {

namespace {
// Gives the thread's waiter back to the pool (reset) when the thread exits.
// A waker still inside Wake() for the old thread then causes at most one
// spurious wake-up, which every waiter tolerates.
//
// A pthread key, not a thread_local object with a destructor: with
// mingw-w64's emulated TLS (GCC 12, winpthreads) a thread_local's destructor
// runs after its storage was freed, so it read a heap free-list pointer
// instead of the waiter; the pool then handed that freed memory out as the
// next thread's ThreadWaiter (seen under Wine: the IOCP thread's Wake()
// jumped into the heap, absl reported "Mutex corrupt"). A key's destructor
// is given the value itself.
pthread_key_t ExitKey() {
  static const pthread_key_t key = [] {
    pthread_key_t k;
    pthread_key_create(&k, [](void* p) {
      auto* w = static_cast<ThreadWaiter*>(p);
      w->Reset();
      RecycledPool<ThreadWaiter>::Put(w);
    });
    return k;
  }();
  return key;
}
}  // namespace

ThreadWaiter& ThreadWaiter::Current() {
  thread_local ThreadWaiter* w = nullptr;  // trivially destructible
  if (w == nullptr) {
    w = RecycledPool<ThreadWaiter>::Get();
    pthread_setspecific(ExitKey(), w);
  }
  return *w;
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

}  // namespace gopoll::internal
