// SPDX-License-Identifier: BSD-3-Clause
#include "poll/internal/poll_desc.h"

#include <atomic>
#include <string>

#include "absl/base/internal/raw_logging.h"
#include "poll/internal/monotonic_clock.h"
#include "poll/internal/perturb.h"
#include "poll/internal/poller.h"

namespace gopoll::internal {
namespace {

// Converts a wall-clock deadline into PollDesc's encoding: 0 none, -1
// already expired, else a monotonic instant in ns.
int64_t EncodeDeadline(absl::Time t) {
  if (t == absl::InfiniteFuture() || t == absl::Time()) return 0;
  const absl::Time now = absl::Now();  // one wall-clock read serves both
  if (t <= now) return -1;
  return MonoFromAbsl(t, now);
}

thread_local NonBlockingScope* t_nonblocking = nullptr;
// The innermost loop run of the calling thread (null: none).
thread_local const LoopRun* t_loop_run = nullptr;
std::atomic<uint64_t> g_next_poller_id{1};

}  // namespace

Poller::Poller()
    : id_(g_next_poller_id.fetch_add(1, std::memory_order_relaxed)) {}

LoopRun::LoopRun(Poller* p) : p_(p), outer_(t_loop_run) {
  if (p_ != nullptr) p_->running_.fetch_add(1);
  t_loop_run = this;
}

LoopRun::~LoopRun() {
  t_loop_run = outer_;
  if (p_ != nullptr) p_->running_.fetch_sub(1);
}

bool IsCurrentLoopPoller(const Poller* p) {
  // (The runs on the chain are alive, and so are their pollers: an address
  // found here is that poller, never a reused one.)
  for (const LoopRun* r = t_loop_run; r != nullptr; r = r->outer_) {
    if (p != nullptr && r->p_ == p) return true;
  }
  return false;
}

absl::Status CheckRingEntries(unsigned ring_entries) {
  if (ring_entries <= kMaxRingEntries) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "poll: ring_entries " + std::to_string(ring_entries) +
      " exceeds io_uring's limit of " + std::to_string(kMaxRingEntries));
}

NonBlockingScope::NonBlockingScope() : outer_(t_nonblocking) {
  t_nonblocking = this;
}
NonBlockingScope::~NonBlockingScope() { t_nonblocking = outer_; }
NonBlockingScope* NonBlockingScope::Current() { return t_nonblocking; }

PollDesc::PollDesc() {
  rt_.fn = &PollDesc::OnReadTimer;
  rt_.arg = this;
  wt_.fn = &PollDesc::OnWriteTimer;
  wt_.arg = this;
}

PollDesc::~PollDesc() {
  TimerQueue::Default().Cancel(&rt_);
  TimerQueue::Default().Cancel(&wt_);
}

absl::Status PollDesc::Open(Poller* poller, intptr_t sysfd) {
  absl::Status s = poller->Register(sysfd, this);
  if (!s.ok()) return s;
  poller_ = poller;
  pollable_ = true;
  return absl::OkStatus();
}

void PollDesc::OpenWithoutPoller() { pollable_ = true; }

void PollDesc::Close(intptr_t sysfd) {
  if (poller_ != nullptr) poller_->Unregister(sysfd, this);
  poller_ = nullptr;
}

void PollDesc::Unopen(intptr_t sysfd) {
  Close(sysfd);
  pollable_ = false;
}

absl::Status PollDesc::ErrFromInfo(uint32_t info, Dir d, FdKind kind) {
  if (info & kInfoClosing) return ErrClosing(kind);
  uint32_t expired = d == Dir::kRead ? kInfoReadExpired : kInfoWriteExpired;
  if (info & expired) return ErrDeadlineExceeded();
  if (d == Dir::kRead && (info & kInfoEventErr)) return ErrNotPollable();
  return absl::OkStatus();
}

absl::StatusOr<bool> PollDesc::Arm(Dir d, FdKind kind, Waiter* w) {
  absl::Status s = CheckErr(d, kind);
  if (!s.ok()) return s;
  GOPOLL_PERTURB_POINT("polldesc.arm");
  std::atomic<uintptr_t>& g = slot(d);
  for (;;) {
    uintptr_t old = g.load();
    if (old == kReady) {
      if (g.compare_exchange_strong(old, kNil)) return true;
      continue;
    }
    if (old != kNil) {
      ABSL_RAW_LOG(FATAL, "poll: two concurrent waiters on one direction");
    }
    if (g.compare_exchange_strong(old, reinterpret_cast<uintptr_t>(w))) break;
  }
  // Close or a deadline may have run between CheckErr and the publication
  // and found nobody to wake: check again, and take `w` back if so.
  s = CheckErr(d, kind);
  if (!s.ok()) {
    if (Disarm(d, w)) return s;
    // Somebody took `w` and will wake it; the caller handles that wake.
  }
  return false;
}

bool PollDesc::Disarm(Dir d, Waiter* w) {
  uintptr_t expect = reinterpret_cast<uintptr_t>(w);
  return slot(d).compare_exchange_strong(expect, kNil);
}

bool PollDesc::ConsumeReady(Dir d) {
  uintptr_t expect = kReady;
  return slot(d).compare_exchange_strong(expect, kNil);
}

absl::Status PollDesc::Wait(Dir d, FdKind kind) {
  if (!pollable_) return ErrNotPollable();
  if (NonBlockingScope* nb = t_nonblocking) {
    nb->would_block_ = true;
    return absl::Status(absl::StatusCode::kUnavailable, "");
  }
  ThreadWaiter& w = ThreadWaiter::Current();
  for (;;) {
    absl::StatusOr<bool> ready = Arm(d, kind, &w);
    if (!ready.ok()) return ready.status();
    if (*ready) return absl::OkStatus();
    GOPOLL_PERTURB_POINT("polldesc.before_park");
    if (poller_ != nullptr) {
      poller_->Park(w);
    } else {
      w.WaitFor(ThreadWaiter::kWoken);
      w.Take(ThreadWaiter::kWoken);
    }
    if (ConsumeReady(d)) return absl::OkStatus();
    // Woken by Close or a deadline: report it. If the deadline was extended
    // meanwhile the direction is fine again: wait once more.
    absl::Status s = CheckErr(d, kind);
    if (!s.ok()) return s;
  }
}

Waiter* PollDesc::Unblock(Dir d, bool ioready) {
  std::atomic<uintptr_t>& g = slot(d);
  for (;;) {
    uintptr_t old = g.load();
    if (old == kReady) return nullptr;
    if (old == kNil && !ioready) return nullptr;
    uintptr_t next = ioready ? kReady : kNil;
    if (g.compare_exchange_strong(old, next)) {
      return old == kNil ? nullptr : reinterpret_cast<Waiter*>(old);
    }
  }
}

PollDesc::Woken PollDesc::NetpollReady(bool read, bool write, bool error_only,
                                       bool hangup) {
  // The hang-up first: the read the wake leads to must see it.
  if (hangup) info_.fetch_or(kInfoHangup, std::memory_order_release);
  if (error_only) {
    info_.fetch_or(kInfoEventErr, std::memory_order_release);
  } else {
    info_.fetch_and(~kInfoEventErr, std::memory_order_release);
  }
  Woken woken;
  if (read) woken.r = Unblock(Dir::kRead, true);
  if (write) woken.w = Unblock(Dir::kWrite, true);
  return woken;
}

void PollDesc::NoteLoopRead(intptr_t sysfd, FdKind kind, bool short_read) {
  bool drained = false;
  if (short_read && poller_ != nullptr &&
      (info_.load(std::memory_order_acquire) & (kInfoHangup | kInfoShared)) ==
          0) {
    uint8_t drains = short_read_drains_.load(std::memory_order_relaxed);
    if (drains == kDrainsUnknown) {
      drains = poller_->ShortReadDrains(sysfd, kind) ? kDrainsYes : kDrainsNo;
      short_read_drains_.store(drains, std::memory_order_relaxed);
    }
    drained = drains == kDrainsYes;
  }
  read_drained_.store(drained, std::memory_order_relaxed);
}

absl::Status PollDesc::SetDeadline(absl::Time t, bool read, bool write,
                                   FdKind kind) {
  // Closing wins over "no deadline": on Windows a Close that ran initIO()
  // first decided the mode of a closing handle (synchronous, no deadlines),
  // not of this one, so a SetDeadline racing Close must see the Close.
  if (!pollable_) return closing() ? ErrClosing(kind) : ErrNoDeadline();
  int64_t d = EncodeDeadline(t);
  bool wake_r = false, wake_w = false;
  {
    absl::MutexLock l(&mu_);
    if (info_.load(std::memory_order_relaxed) & kInfoClosing) {
      return ErrClosing(kind);
    }
    if (read) {
      rd_ = d;
      ++rseq_;
      // Under mu_, so that the last of concurrent calls wins. Removing does
      // not wait for a running callback (it takes mu_); the sequence bump
      // above already made that callback stale.
      if (d > 0) {
        TimerQueue::Default().Arm(&rt_, d, rseq_);
      } else {
        TimerQueue::Default().Remove(&rt_);
      }
      if (d < 0) {
        info_.fetch_or(kInfoReadExpired, std::memory_order_release);
        wake_r = true;
      } else if (info_.load(std::memory_order_relaxed) & kInfoReadExpired) {
        // (the expired bits change only under mu_: no read-modify-write
        // when there is nothing to clear, the common re-arm)
        info_.fetch_and(~kInfoReadExpired, std::memory_order_release);
      }
    }
    if (write) {
      wd_ = d;
      ++wseq_;
      if (d > 0) {
        TimerQueue::Default().Arm(&wt_, d, wseq_);
      } else {
        TimerQueue::Default().Remove(&wt_);
      }
      if (d < 0) {
        info_.fetch_or(kInfoWriteExpired, std::memory_order_release);
        wake_w = true;
      } else if (info_.load(std::memory_order_relaxed) & kInfoWriteExpired) {
        info_.fetch_and(~kInfoWriteExpired, std::memory_order_release);
      }
    }
  }
  if (wake_r) {
    if (Waiter* w = Unblock(Dir::kRead, false)) w->Wake();
  }
  if (wake_w) {
    if (Waiter* w = Unblock(Dir::kWrite, false)) w->Wake();
  }
  return absl::OkStatus();
}

int64_t PollDesc::ReadDeadlineForTest() {
  absl::MutexLock l(&mu_);
  return rd_;
}

void PollDesc::OnReadTimer(void* arg, uint64_t seq) {
  OnTimer(arg, seq, Dir::kRead);
}
void PollDesc::OnWriteTimer(void* arg, uint64_t seq) {
  OnTimer(arg, seq, Dir::kWrite);
}

void PollDesc::OnTimer(void* arg, uint64_t seq, Dir d) {
  auto* pd = static_cast<PollDesc*>(arg);
  {
    absl::MutexLock l(&pd->mu_);
    if (pd->info_.load(std::memory_order_relaxed) & kInfoClosing) return;
    if (d == Dir::kRead) {
      if (seq != pd->rseq_ || pd->rd_ <= 0) return;  // stale timer
      pd->rd_ = -1;
      pd->info_.fetch_or(kInfoReadExpired, std::memory_order_release);
    } else {
      if (seq != pd->wseq_ || pd->wd_ <= 0) return;
      pd->wd_ = -1;
      pd->info_.fetch_or(kInfoWriteExpired, std::memory_order_release);
    }
  }
  GOPOLL_PERTURB_POINT("timer.deadline_expired");
  if (Waiter* w = pd->Unblock(d, false)) w->Wake();
}

void PollDesc::Evict() {
  {
    absl::MutexLock l(&mu_);
    // The closing bit is only ever set here, under mu_: reading it under
    // mu_ sees every earlier Evict.
    if (info_.load(std::memory_order_relaxed) & kInfoClosing) return;
    ++rseq_;
    ++wseq_;
    info_.fetch_or(kInfoClosing, std::memory_order_release);
  }
  TimerQueue::Default().Cancel(&rt_);
  TimerQueue::Default().Cancel(&wt_);
  if (Waiter* w = Unblock(Dir::kRead, false)) w->Wake();
  if (Waiter* w = Unblock(Dir::kWrite, false)) w->Wake();
}

}  // namespace gopoll::internal
