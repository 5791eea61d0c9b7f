// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/recycled.h
//
// RecycledPool<T>: objects that are never freed. A thread takes one for its
// lifetime (Get) and gives it back when it exits (Put); a later thread
// reuses it. Per-thread waiters live here so that another thread still
// finishing a wake-up on them never touches freed memory.
//
// T must befriend RecycledPool<T>, be default-constructible by it, and have
// a member `T* next_free_`.
#ifndef POLL_INTERNAL_RECYCLED_H_
#define POLL_INTERNAL_RECYCLED_H_

#include "absl/base/const_init.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace gopoll::internal {

template <typename T>
class RecycledPool {
 public:
  static T* Get() {
    absl::MutexLock l(&mu_);
    if (free_ == nullptr) return new T();
    T* t = free_;
    free_ = t->next_free_;
    t->next_free_ = nullptr;
    return t;
  }
  static void Put(T* t) {
    absl::MutexLock l(&mu_);
    t->next_free_ = free_;
    free_ = t;
  }

 private:
  static inline absl::Mutex mu_{absl::kConstInit};
  static inline T* free_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_RECYCLED_H_
