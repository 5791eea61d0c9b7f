// SPDX-License-Identifier: BSD-3-Clause
#include "poll/loop/loop.h"

#include <utility>

namespace gopoll {

void internal_task::PromiseBase::RootDone(LoopCore* core,
                                          std::coroutine_handle<> h) {
  core->RootDone(h);
}

Loop::Loop() : core_(std::make_shared<LoopCore>()) {}

Loop::~Loop() { core_->Shutdown(); }

void Loop::Run() {
  while (!core_->TakeStop()) core_->RunOnce(absl::InfiniteDuration());
}

int Loop::RunOnce(absl::Duration timeout) { return core_->RunOnce(timeout); }

void Loop::Stop() { core_->Stop(); }

void Loop::Post(absl::AnyInvocable<void() &&> fn) {
  core_->Post(std::move(fn));
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
