// SPDX-License-Identifier: BSD-3-Clause
#include "poll/loop/loop.h"

#include <memory>
#include <utility>

#include "poll/internal/monotonic_clock.h"
#include "poll/internal/timer_queue.h"
#include "poll/loop/loop_core.h"

namespace gopoll {

void internal_task::PromiseBase::RootDone(LoopCore* core,
                                          std::coroutine_handle<> h) {
  core->RootDone(h);
}

namespace {

// One PostAfter: a timer of the shared deadline runtime that posts `fn` to
// the loop when it fires, then frees itself (TimerQueue allows that from the
// callback). It holds the loop weakly, so a pending PostAfter does not keep
// a destroyed loop's core alive.
struct DelayedPost {
  internal::Timer timer;
  std::weak_ptr<LoopCore> core;
  absl::AnyInvocable<void() &&> fn;

  static void Fire(void* arg, uint64_t /*seq*/) {
    std::unique_ptr<DelayedPost> self(static_cast<DelayedPost*>(arg));
    if (std::shared_ptr<LoopCore> core = self->core.lock()) {
      core->Post(std::move(self->fn));  // dropped if the loop shut down
    }
  }
};

void PostAfterOn(const std::shared_ptr<LoopCore>& core, absl::Duration delay,
                 absl::AnyInvocable<void() &&> fn) {
  if (delay <= absl::ZeroDuration()) {
    core->Post(std::move(fn));
    return;
  }
  const int64_t when = internal::MonoAfter(delay);
  if (when == internal::kMonoNever)
    return;  // an infinite delay never runs `fn`
  auto* p = new DelayedPost;
  p->core = core;
  p->fn = std::move(fn);
  p->timer.fn = &DelayedPost::Fire;
  p->timer.arg = p;
  internal::TimerQueue::Default().Arm(&p->timer, when, 0);
}

}  // namespace

SleepAwaiter::~SleepAwaiter() {
  if (gone_) gone_->store(true, std::memory_order_relaxed);
}

void SleepAwaiter::await_suspend(std::coroutine_handle<> h) {
  std::shared_ptr<LoopCore> core = core_.lock();
  if (!core) return;  // the loop is gone: nothing will ever resume it
  gone_ = std::make_shared<std::atomic<bool>>(false);
  PostAfterOn(core, delay_, [h, gone = gone_] {
    if (!gone->load(std::memory_order_relaxed)) h.resume();
  });
}

namespace {
// The constructors' core: Create's, or one without an OS poller (see
// loop.h: never a loop that cannot be woken, never an abort).
std::shared_ptr<LoopCore> CoreOrThreads(const LoopOptions& options) {
  absl::StatusOr<std::shared_ptr<LoopCore>> core =
      LoopCore::Create(options.backend, options.ring_entries);
  if (core.ok()) return *std::move(core);
  return std::make_shared<LoopCore>(nullptr);
}
}  // namespace

absl::StatusOr<std::unique_ptr<Loop>> Loop::Create(const LoopOptions& options) {
  absl::StatusOr<std::shared_ptr<LoopCore>> core =
      LoopCore::Create(options.backend, options.ring_entries);
  if (!core.ok()) return core.status();
  return std::unique_ptr<Loop>(new Loop(*std::move(core)));
}

Loop::Loop() : Loop(LoopOptions()) {}

Loop::Loop(const LoopOptions& options) : core_(CoreOrThreads(options)) {}

Loop::Loop(std::shared_ptr<LoopCore> core) : core_(std::move(core)) {}

Loop::~Loop() { core_->Shutdown(); }

void Loop::Run() {
  internal::LoopRun running(core_->poller());
  while (!core_->TakeStop()) core_->RunOnce(absl::InfiniteDuration());
}

void Loop::RunUntilDone() {
  internal::LoopRun running(core_->poller());
  while (core_->HasRoots() && !core_->TakeStop()) {
    core_->RunOnce(absl::InfiniteDuration());
  }
}

int Loop::RunOnce(absl::Duration timeout) { return core_->RunOnce(timeout); }

void Loop::Stop() { core_->Stop(); }

void Loop::Post(absl::AnyInvocable<void() &&> fn) {
  core_->Post(std::move(fn));
}

void Loop::PostAfter(absl::Duration delay, absl::AnyInvocable<void() &&> fn) {
  PostAfterOn(core_, delay, std::move(fn));
}

void Loop::Spawn(Task<void> task) {
  Task<void>::Handle h = task.Release();
  if (!h) return;
  h.promise().root_of = core_.get();
  core_->AddRoot(h);
  core_->Post([h] { h.resume(); });
}

absl::StatusOr<AsyncFd> Loop::Adopt(Sysfd sysfd, FdKind kind) {
  return AsyncFd::Wrap(core_, sysfd, kind);
}

}  // namespace gopoll
