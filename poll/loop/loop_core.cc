// SPDX-License-Identifier: BSD-3-Clause
#include "poll/loop/loop_core.h"

#include <utility>
#include <vector>

#include "poll/internal/perturb.h"
#include "poll/loop/async_op.h"

namespace gopoll {
namespace {
thread_local const LoopCore* t_running = nullptr;

int TimeoutMs(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return -1;
  if (d <= absl::ZeroDuration()) return 0;
  int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)));
  return ms > 1 << 30 ? 1 << 30 : static_cast<int>(ms);
}
}  // namespace

absl::StatusOr<std::shared_ptr<LoopCore>> LoopCore::Create(
    LoopBackend backend, unsigned ring_entries) {
  if (absl::Status s = internal::CheckRingEntries(ring_entries); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::unique_ptr<internal::Poller>> p =
      internal::NewLoopPoller(backend, ring_entries);
  if (!p.ok()) return p.status();
  return std::make_shared<LoopCore>(*std::move(p));
}

LoopCore::LoopCore(std::unique_ptr<internal::Poller> poller)
    : poller_(std::move(poller)) {}

LoopCore::~LoopCore() = default;

bool LoopCore::InLoop() const { return t_running == this; }

void LoopCore::Wake() {
  if (poller_ != nullptr) {
    poller_->Interrupt();
  } else {
    cv_.Signal();
  }
}

void LoopCore::Enqueue(AsyncOp* op, bool completion) {
  if (InLoop()) {
    local_.push_back(Item{op, nullptr, completion});
    return;
  }
  {
    // The wake-up happens under the lock: once it is released the loop may
    // run the op, which may drop the last reference to this core.
    absl::MutexLock l(&mu_);
    if (!shut_down_) {
      remote_.push_back(Item{op, nullptr, completion});
      has_remote_.store(true, std::memory_order_release);
      if (sleeping_) {
        sleeping_ = false;
        Wake();
      }
      return;
    }
  }
  op->Resume(completion);  // no loop any more: finish here
}

void LoopCore::Post(absl::AnyInvocable<void() &&> fn) {
  if (InLoop()) {
    local_.push_back(Item{nullptr, std::move(fn)});
    return;
  }
  absl::MutexLock l(&mu_);  // wakes under the lock, as Enqueue
  if (shut_down_) return;
  remote_.push_back(Item{nullptr, std::move(fn)});
  has_remote_.store(true, std::memory_order_release);
  if (sleeping_) {
    sleeping_ = false;
    Wake();
  }
}

void LoopCore::Stop() {
  absl::MutexLock l(&mu_);
  stop_.store(true);
  if (sleeping_) {
    sleeping_ = false;
    Wake();
  }
}

bool LoopCore::TakeStop() { return stop_.exchange(false); }

void LoopCore::RunItem(Item& item) {
  if (item.op != nullptr) {
    item.op->Resume(item.completion);
  } else {
    std::move(item.fn)();
  }
}

void LoopCore::DrainRemoteLocked() {
  while (!remote_.empty()) {
    local_.push_back(std::move(remote_.front()));
    remote_.pop_front();
  }
  has_remote_.store(false, std::memory_order_relaxed);
}

int LoopCore::RunOnce(absl::Duration timeout) {
  internal::LoopRun running(poller_.get());
  const LoopCore* outer = t_running;
  t_running = this;
  // The hint saves the lock when nothing came from other threads; an item
  // pushed after this read is seen under the lock below before sleeping.
  if (has_remote_.load(std::memory_order_acquire)) {
    absl::MutexLock l(&mu_);
    DrainRemoteLocked();
  }
  if (local_.empty() && !stop_.load()) {
    const int ms = TimeoutMs(timeout);
    if (poller_ != nullptr) {
      bool sleep;
      {
        absl::MutexLock l(&mu_);
        sleep = remote_.empty() && !stop_.load();
        sleeping_ = sleep;
      }
      busy_rounds_ = 0;
      GOPOLL_PERTURB_POINT("loop.before_wait");
      poller_->Poll(sleep ? ms : 0);
      absl::MutexLock l(&mu_);
      sleeping_ = false;
      DrainRemoteLocked();
    } else {
      absl::MutexLock l(&mu_);
      const absl::Time deadline = ms < 0 ? absl::InfiniteFuture()
                                         : absl::Now() + absl::Milliseconds(ms);
      sleeping_ = true;
      GOPOLL_PERTURB_POINT("loop.before_cv_wait");
      while (remote_.empty() && !stop_.load()) {
        if (cv_.WaitWithDeadline(&mu_, deadline)) break;
      }
      sleeping_ = false;
      DrainRemoteLocked();
    }
  } else if (poller_ != nullptr && ++busy_rounds_ >= kBusyRoundsPerPoll) {
    // Work keeps coming without the loop ever running dry: look at the OS
    // readiness now and then anyway, without sleeping.
    busy_rounds_ = 0;
    poller_->Poll(0);
  }
  int ran = 0;
  for (size_t n = local_.size(); n > 0 && !local_.empty(); --n) {
    Item item = std::move(local_.front());
    local_.pop_front();
    RunItem(item);
    ++ran;
  }
  t_running = outer;
  return ran;
}

void LoopCore::AddRoot(std::coroutine_handle<> h) {
  absl::MutexLock l(&mu_);
  roots_.insert(h.address());
}

void LoopCore::RootDone(std::coroutine_handle<> h) {
  {
    absl::MutexLock l(&mu_);
    roots_.erase(h.address());
  }
  h.destroy();
}

bool LoopCore::HasRoots() {
  absl::MutexLock l(&mu_);
  return !roots_.empty();
}

void LoopCore::AddArmed(AsyncOp* op) {
  if (op->in_armed_list_) return;
  op->in_armed_list_ = true;
  op->armed_prev_ = nullptr;
  op->armed_next_ = armed_head_;
  if (armed_head_ != nullptr) armed_head_->armed_prev_ = op;
  armed_head_ = op;
}

void LoopCore::RemoveArmed(AsyncOp* op) {
  if (!op->in_armed_list_) return;
  op->in_armed_list_ = false;
  if (op->armed_prev_ != nullptr) {
    op->armed_prev_->armed_next_ = op->armed_next_;
  } else {
    armed_head_ = op->armed_next_;
  }
  if (op->armed_next_ != nullptr)
    op->armed_next_->armed_prev_ = op->armed_prev_;
  op->armed_prev_ = op->armed_next_ = nullptr;
}

void LoopCore::Shutdown() {
  internal::LoopRun running(poller_.get());
  const LoopCore* outer = t_running;
  t_running = this;
  GOPOLL_PERTURB_POINT("loop.shutdown");
  // Destroy the coroutines first: their pending operations are abandoned.
  for (;;) {
    void* addr;
    {
      absl::MutexLock l(&mu_);
      if (roots_.empty()) break;
      addr = *roots_.begin();
      roots_.erase(roots_.begin());
    }
    std::coroutine_handle<>::from_address(addr).destroy();
  }
  // Then cancel callback operations and run what is queued, until nothing
  // is left (a callback may start new operations; they are cancelled too).
  for (;;) {
    std::vector<AsyncOp*> armed;
    for (AsyncOp* op = armed_head_; op != nullptr; op = op->armed_next_) {
      armed.push_back(op);
    }
    GOPOLL_PERTURB_POINT("loop.shutdown_cancel");
    for (AsyncOp* op : armed) op->CancelArmed();
    {
      absl::MutexLock l(&mu_);
      DrainRemoteLocked();
      if (local_.empty() && armed_head_ == nullptr) {
        shut_down_ = true;
        shut_down_fast_.store(true);
        break;
      }
    }
    shut_down_fast_.store(true);  // queued operations finish with Cancelled
    while (!local_.empty()) {
      Item item = std::move(local_.front());
      local_.pop_front();
      if (item.op != nullptr) {
        item.op->Resume(item.completion);  // functions are dropped
      }
    }
    // Completions of cancelled in-flight operations arrive through the
    // poller (IOCP).
    if (poller_ != nullptr && armed_head_ != nullptr) poller_->Poll(10);
  }
  // FDs adopted by the loop may outlive it: their blocked callers poll
  // from now on.
  if (poller_ != nullptr) poller_->Orphan();
  t_running = outer;
}

}  // namespace gopoll
