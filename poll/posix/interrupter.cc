// SPDX-License-Identifier: BSD-3-Clause
#include "poll/posix/interrupter.h"

#include <sched.h>
#include <signal.h>

#include "absl/base/call_once.h"
#include "absl/base/internal/raw_logging.h"
#include "poll/internal/monotonic_clock.h"
#include "poll/internal/recycled.h"
#include "poll/internal/sanitizers.h"

namespace gopoll::posix {
namespace {

constexpr int64_t kRetryNs = 1'000'000;  // re-send every 1 ms until acked
// Re-sends without an acknowledgement after which something is wrong with
// the signal (about one second).
constexpr uint32_t kSuspectResends = 1000;

thread_local SyscallInterrupter* tls_current = nullptr;
std::atomic<uint64_t> stray_signals{0};
struct sigaction previous_action;
absl::once_flag install_once;

}  // namespace

namespace {
struct Holder {
  SyscallInterrupter* s;
  Holder() : s(internal::RecycledPool<SyscallInterrupter>::Get()) {}
  ~Holder() {
    tls_current = nullptr;
    internal::RecycledPool<SyscallInterrupter>::Put(s);
  }
};
}  // namespace

SyscallInterrupter::SyscallInterrupter() {
  retry_.fn = &SyscallInterrupter::OnRetry;
  retry_.arg = this;
}

void SyscallInterrupter::Handler(int sig, siginfo_t* info, void* ctx) {
  SyscallInterrupter* s = tls_current;
  if (s != nullptr && s->in_window_.load()) {
    s->received_.fetch_add(1);
  } else {
    stray_signals.fetch_add(1);
  }
  // Chain to a handler the application installed before us.
  if (previous_action.sa_flags & SA_SIGINFO) {
    if (previous_action.sa_sigaction != nullptr) {
      previous_action.sa_sigaction(sig, info, ctx);
    }
  } else if (previous_action.sa_handler != SIG_DFL &&
             previous_action.sa_handler != SIG_IGN &&
             previous_action.sa_handler != nullptr) {
    previous_action.sa_handler(sig);
  }
}

SyscallInterrupter& SyscallInterrupter::Current() {
  absl::call_once(install_once, [] {
    struct sigaction sa = {};
    sa.sa_sigaction = &SyscallInterrupter::Handler;
    sa.sa_flags = SA_SIGINFO;  // no SA_RESTART: blocked calls fail with EINTR
    sigemptyset(&sa.sa_mask);
    sigaction(kInterruptSignal, &sa, &previous_action);
  });
  thread_local Holder holder;
  if (tls_current == nullptr) {
    holder.s->thread_ = pthread_self();
    tls_current = holder.s;
  }
  return *holder.s;
}

uint64_t SyscallInterrupter::StraySignals() { return stray_signals.load(); }

void SyscallInterrupter::Begin() {
  state_.store(0);
  in_window_.store(true);
}

void SyscallInterrupter::SendLocked() {
  sent_.fetch_add(1);
  pthread_kill(thread_, kInterruptSignal);
}

void SyscallInterrupter::Wake() {
  // Under mu_ from marking to sending: an End that finds kWoken set waits
  // on mu_ for the send to be done.
  absl::MutexLock l(&mu_);
  if (state_.fetch_or(kWoken) & kDone) return;
  resends_ = 0;
  SendLocked();
  internal::TimerQueue::Default().Arm(&retry_, internal::MonoNow() + kRetryNs,
                                      0);
}

// Says once per process why interrupts may not arrive: the handler was
// replaced (or restarts calls), or, if it is ours, the thread blocks it.
void SyscallInterrupter::ReportUnacknowledged() {
  static std::atomic<bool> reported{false};
  if (reported.exchange(true)) return;
  struct sigaction cur = {};
  sigaction(kInterruptSignal, nullptr, &cur);
  const bool ours = (cur.sa_flags & SA_SIGINFO) &&
                    cur.sa_sigaction == &SyscallInterrupter::Handler &&
                    !(cur.sa_flags & SA_RESTART);
  ABSL_RAW_LOG(ERROR,
               "poll: a blocked call has not been interrupted after %u "
               "SIGURGs: %s; such calls ignore deadlines and Close "
               "(WaitStrategy::kPoller does not use signals)",
               kSuspectResends,
               ours ? "the thread blocks SIGURG"
                    : "another SIGURG handler replaced poll's (or restarts "
                      "system calls)");
}

void SyscallInterrupter::OnRetry(void* arg, uint64_t) {
  auto* s = static_cast<SyscallInterrupter*>(arg);
  absl::MutexLock l(&s->mu_);
  if (s->state_.load() != kWoken) return;  // acknowledged (or never woken)
  // The thread has not acknowledged yet: it may have entered its call
  // after the previous signal was handled. Interrupt it again.
  s->SendLocked();
  if (++s->resends_ == kSuspectResends) ReportUnacknowledged();
  internal::TimerQueue::Default().Arm(&s->retry_,
                                      internal::MonoNow() + kRetryNs, 0);
}

void SyscallInterrupter::End(bool wake_pending) {
  // The common case, an operation no deadline or Close interrupted: one
  // compare-and-swap closes the window; no Wake() can send after it (Wake
  // sees kDone), so there is nothing to collect and no system call.
  uint32_t expect = 0;
  if (!wake_pending && state_.compare_exchange_strong(expect, kDone)) {
    in_window_.store(false);
    return;
  }
  {
    // A Wake() ran, runs or is coming (wake_pending: the waiter was taken
    // out of its slot). Once it has marked kWoken it holds mu_ until its
    // signal is sent, so taking mu_ after seeing kWoken waits for that.
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](std::atomic<uint32_t>* st) { return (st->load() & kWoken) != 0; },
        &state_));
    state_.fetch_or(kDone);  // no signal is sent from now on
  }
  internal::TimerQueue::Default().Cancel(&retry_);
  // Every signal sent for this window was queued to this thread before
  // kDone was set (sends happen under mu_). The kernel delivers pending
  // signals whenever a thread returns from a system call: make one, so they
  // are all handled while in_window_ is still true.
  sigset_t pending;
  sigpending(&pending);
  // ThreadSanitizer defers a signal's handler to its next safe point: wait
  // a bounded while there. (Elsewhere the handlers have run by now; and as
  // signals coalesce, `received` may stay behind `sent` for good, so this
  // wait must not run in normal builds.)
  if (internal::kThreadSanitizer) {
    for (int i = 0; i < 1000 && received_.load() < sent_.load(); ++i) {
      sched_yield();
    }
  }
  // Signals of one kind coalesce (two sends before delivery run the handler
  // once), so `received` may stay behind `sent`: that is not a lost signal.
  received_.store(sent_.load());
  in_window_.store(false);
}

}  // namespace gopoll::posix
