// SPDX-License-Identifier: BSD-3-Clause
// poll/posix/interrupter.h
//
// SyscallInterrupter: the Waiter of the interruptible-call strategy (the
// plan9_stub backend, and the Linux default for blocking callers). A thread
// about to make a blocking system call for an FD publishes its interrupter in
// the FD's PollDesc; a deadline or Close that takes it out calls Wake(), which
// interrupts the call with a signal (SIGURG, handler installed without
// SA_RESTART, so the call fails with EINTR).
//
// The hand-shake guarantees:
//   - no lost interrupt: Wake() may run just before the thread enters the
//     call. Until the thread acknowledges (End), Wake re-sends the signal
//     every millisecond from the shared TimerQueue, so a call entered after
//     the first signal is still interrupted;
//   - no stray signal: End() stops the re-sending under the interrupter's
//     lock (every signal is sent under it), then makes a system call: the
//     kernel delivers the signals already queued to the thread on its
//     return, so none reaches the thread after it has moved on. (Counting
//     deliveries against sends cannot work: signals of one kind coalesce.)
// One interrupter per thread, recycled (never freed) when the thread exits.
#ifndef POLL_POSIX_INTERRUPTER_H_
#define POLL_POSIX_INTERRUPTER_H_

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "poll/internal/recycled.h"
#include "poll/internal/timer_queue.h"
#include "poll/internal/waiter.h"

namespace gopoll::posix {

// The signal used to interrupt blocked calls.
inline constexpr int kInterruptSignal = SIGURG;

class SyscallInterrupter final : public internal::Waiter {
 public:
  // The calling thread's interrupter (installs the signal handler once).
  static SyscallInterrupter& Current();

  // Opens the window in which Wake() may interrupt this thread.
  void Begin();
  // Closes it. `wake_pending`: the waiter was taken out of its PollDesc slot
  // by somebody else, so a Wake() is running or about to run.
  void End(bool wake_pending);

  void Wake() override;

  // Signals delivered to threads outside any window (tests: must stay 0).
  static uint64_t StraySignals();

 private:
  SyscallInterrupter();
  template <typename T>
  friend class ::gopoll::internal::RecycledPool;
  static void OnRetry(void* arg, uint64_t seq);
  static void ReportUnacknowledged();
  static void Handler(int sig, siginfo_t* info, void* ctx);
  void SendLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  pthread_t thread_{};
  // The window's state: kWoken once a Wake() came (set under mu_), kDone
  // once End() closed it; 0 while the thread is in its call.
  static constexpr uint32_t kDone = 1;
  static constexpr uint32_t kWoken = 2;
  std::atomic<uint32_t> state_{kDone};
  std::atomic<bool> in_window_{false};
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> received_{0};
  internal::Timer retry_;
  uint32_t resends_ ABSL_GUARDED_BY(mu_) = 0;  // of the current Wake
  SyscallInterrupter* next_free_ = nullptr;
};

}  // namespace gopoll::posix

#endif  // POLL_POSIX_INTERRUPTER_H_
