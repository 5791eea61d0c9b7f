// SPDX-License-Identifier: BSD-3-Clause
// poll/loop/loop_core.h
//
// LoopCore is the state of one event loop that operations and helper threads
// share with it (internal; applications use poll/loop/loop.h). It owns the
// loop's poller (null on backends without one) and its run queue:
//   - items queued by the loop thread itself go to a local queue, no lock;
//   - items queued by other threads (a Wake from the deadline runtime, a
//     helper thread's finished operation, Post) go to a locked queue and
//     wake the loop thread if it sleeps (one eventfd write / condvar signal
//     per sleep, not per item).
// LoopCore outlives its Loop while operations still reference it.
#ifndef POLL_LOOP_LOOP_CORE_H_
#define POLL_LOOP_LOOP_CORE_H_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "poll/internal/poller.h"

namespace gopoll {

class AsyncOp;

class LoopCore {
 public:
  // A core on the poller NewLoopPoller(backend, ring_entries) makes
  // (poller.h), or its error.
  static absl::StatusOr<std::shared_ptr<LoopCore>> Create(
      LoopBackend backend, unsigned ring_entries);
  // A core on `poller` (null: operations run on helper threads and the
  // loop sleeps on a condition variable).
  explicit LoopCore(std::unique_ptr<internal::Poller> poller);
  ~LoopCore();
  LoopCore(const LoopCore&) = delete;
  LoopCore& operator=(const LoopCore&) = delete;

  // The loop's readiness poller, or null (operations then run on helper
  // threads).
  internal::Poller* poller() const { return poller_.get(); }

  // True on the thread currently running this loop.
  bool InLoop() const;

  // Queues `op` to have Resume() called on the loop thread. Any thread. After
  // the loop was shut down, runs it at once on the calling thread.
  void Enqueue(AsyncOp* op, bool completion = false);
  // Queues `fn` to run on the loop thread. Any thread. After shutdown it is
  // dropped (it never runs).
  void Post(absl::AnyInvocable<void() &&> fn);

  // Runs queued work, waiting at most `timeout` for some if there is none.
  // Returns the number of items run.
  int RunOnce(absl::Duration timeout);
  void Stop();
  // Clears the stop request; true if there was one.
  bool TakeStop();

  // Root coroutines (Loop::Spawn); any thread.
  void AddRoot(std::coroutine_handle<> h);
  void RootDone(std::coroutine_handle<> h);
  // True while a spawned task has not finished; any thread.
  bool HasRoots();

  // Operations waiting in a PollDesc slot (for cancellation at shutdown);
  // loop thread only.
  void AddArmed(AsyncOp* op);
  void RemoveArmed(AsyncOp* op);

  // Destroys pending root coroutines and cancels pending operations (their
  // callbacks run with CancelledError on the calling thread), then makes
  // Enqueue run operations inline. Called by ~Loop.
  void Shutdown();
  bool shut_down() const { return shut_down_fast_.load(); }

 private:
  struct Item {
    AsyncOp* op = nullptr;
    absl::AnyInvocable<void() &&> fn;
    bool completion = false;  // AsyncOp::Resume's argument
  };
  void Wake();
  // Moves everything other threads queued to the loop's local queue.
  void DrainRemoteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void RunItem(Item& item);

  std::unique_ptr<internal::Poller> poller_;
  std::deque<Item> local_;  // loop thread only
  // Rounds run since the last OS poll (loop thread only).
  static constexpr int kBusyRoundsPerPoll = 16;
  int busy_rounds_ = 0;

  absl::Mutex mu_;
  absl::CondVar cv_;  // no-poller loops sleep here
  std::deque<Item> remote_ ABSL_GUARDED_BY(mu_);
  // remote_ is not empty: written under mu_, read by the loop without it
  // (a hint that saves taking the lock when nothing came).
  std::atomic<bool> has_remote_{false};
  bool sleeping_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stop_{false};
  std::atomic<bool> shut_down_fast_{false};

  absl::flat_hash_set<void*> roots_ ABSL_GUARDED_BY(mu_);
  // Armed operations, an intrusive list through AsyncOp (loop thread only).
  AsyncOp* armed_head_ = nullptr;
};

}  // namespace gopoll

#endif  // POLL_LOOP_LOOP_CORE_H_
