// SPDX-License-Identifier: BSD-3-Clause
#include "poll/loop/offload.h"

#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "poll/internal/detached_thread.h"

namespace gopoll {
namespace {

class Pool {
 public:
  void Run(absl::AnyInvocable<void() &&> fn) {
    bool spawn;
    {
      absl::MutexLock l(&mu_);
      work_.push_back(std::move(fn));
      spawn = idle_ < work_.size();
      if (spawn) ++threads_;
    }
    if (spawn && !internal::SpawnDetached([this] { Worker(); })) {
      // No thread: run it here rather than lose the operation (it may then
      // hold up the caller until it completes, a deadline or Close).
      absl::AnyInvocable<void() &&> mine;
      {
        absl::MutexLock l(&mu_);
        --threads_;
        if (idle_ >= work_.size()) return;  // a worker will take it
        mine = std::move(work_.back());
        work_.pop_back();
      }
      std::move(mine)();
    }
  }

 private:
  void Worker() {
    absl::MutexLock l(&mu_);
    for (;;) {
      ++idle_;
      bool has = mu_.AwaitWithTimeout(
          absl::Condition(
              +[](std::deque<absl::AnyInvocable<void() &&>>* w) {
                return !w->empty();
              },
              &work_),
          absl::Seconds(10));
      --idle_;
      if (!has) {
        --threads_;
        return;
      }
      absl::AnyInvocable<void()&&> fn = std::move(work_.front());
      work_.pop_front();
      mu_.Unlock();
      std::move(fn)();
      mu_.Lock();
    }
  }

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> work_ ABSL_GUARDED_BY(mu_);
  size_t idle_ ABSL_GUARDED_BY(mu_) = 0;
  size_t threads_ ABSL_GUARDED_BY(mu_) = 0;
};

Pool& ThePool() {
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

void Offload(absl::AnyInvocable<void() &&> fn) { ThePool().Run(std::move(fn)); }

}  // namespace gopoll
