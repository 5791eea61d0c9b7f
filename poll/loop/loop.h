// SPDX-License-Identifier: BSD-3-Clause
// poll/loop/loop.h
//
// Loop: an event loop for embedding poll's FDs in a networking stack. A loop
// owns one poller instance (its own epoll on Linux) and uses the shared
// deadline runtime; one thread runs it (Run/RunOnce), and every callback and
// coroutine of its FDs runs on that thread. Several loops may run in one
// process (one per core is the usual embedding).
//
//   gopoll::Loop loop;
//   absl::StatusOr<gopoll::AsyncFd> conn = loop.Adopt(sock, FdKind::kNet);
//   conn->AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
//     ...; loop.Stop();
//   });
//   loop.Run();
//
// Backends: on Linux the loop runs on io_uring where the kernel allows it
// (poll/unix/uring_poller.h: reads, writes and accepts are submitted to the
// ring, one io_uring_submit_and_wait per turn), on epoll otherwise or when
// asked (LoopOptions, GOPOLL_LOOP_BACKEND=epoll); backend_name() says which.
// On epoll the loop thread runs epoll_wait itself. On Windows the
// loop has its own completion port, which FDs adopted by it bind to (lazily,
// in initIO), and the loop thread drains it: reads and writes of pipes and
// sockets run there. On plan9_stub the loop thread only runs callbacks:
// each operation runs as the FD's blocking call on a helper thread
// (poll/loop/offload.h) and is delivered on the loop thread. Operations the
// loop's poller cannot take (regular files on epoll; on Windows also Accept,
// Connect and handles left in event or sync mode) take that path too.
//
// Timers: PostAfter runs a function on the loop thread once a delay has
// passed, and a coroutine of the loop sleeps with `co_await loop.Sleep(d)`.
// Both use the shared deadline runtime (poll/internal/timer_queue.h): never
// early.
//
// Thread-safety: Stop, Post, PostAfter, Spawn and Adopt may be called from
// any thread.
// Run/RunOnce from one thread at a time. A loop is not bound to a thread:
// it may be run by one thread, then by another (after the first stopped
// running it), and destroyed on any thread that does not run it at the
// time. On io_uring every such thread enters the same ring (no ring is
// bound to the thread that made it, poll/unix/uring_poller.h): the thread
// that destroys the loop cancels the operations in flight and waits for
// their real completions, as the loop's own thread would, so bytes the
// kernel read are delivered to the callback (or kept by the FD for its
// next read, if the coroutine that asked was destroyed), and the kernel
// never writes into a buffer after its operation was reported done. A
// read the kernel cannot interrupt (e.g. on a hard NFS mount) keeps ~Loop
// waiting until it ends, on every thread. Destroy the loop only when no
// thread runs it: pending spawned tasks are destroyed, pending callback
// operations complete with CancelledError on the destroying thread (an
// operation still running on a helper thread completes on that thread when
// it returns), and posted functions not yet run are dropped. FDs adopted
// by the loop may outlive it: their asynchronous operations then fail at
// once with CancelledError (inside the call: no loop thread is left), and
// blocking calls on fd() keep working (the loop's poller passes to the
// blocked threads, Poller::Orphan).
#ifndef POLL_LOOP_LOOP_H_
#define POLL_LOOP_LOOP_H_

// First of all includes: a clear #error below C++20.
// clang-format off
#include "poll/require_cxx20.h"
// clang-format on

#include <atomic>
#include <coroutine>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "poll/loop/async_fd.h"
#include "poll/loop/task.h"
#include "poll/loop_backend.h"

namespace gopoll {

// What `co_await loop.Sleep(d)` waits on (see Loop::Sleep).
class [[nodiscard]] SleepAwaiter {
 public:
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  // A coroutine destroyed while it sleeps (Loop destruction destroys
  // spawned tasks) is never resumed.
  ~SleepAwaiter();

  bool await_ready() const noexcept { return delay_ <= absl::ZeroDuration(); }
  void await_suspend(std::coroutine_handle<> h);
  void await_resume() const noexcept {}

 private:
  friend class Loop;
  SleepAwaiter(std::weak_ptr<LoopCore> core, absl::Duration delay)
      : core_(std::move(core)), delay_(delay) {}

  std::weak_ptr<LoopCore> core_;
  absl::Duration delay_;
  // Shared with the posted resumption: set when this awaiter (and so the
  // coroutine frame holding it) is destroyed first.
  std::shared_ptr<std::atomic<bool>> gone_;
};

// How a Loop is made.
struct LoopOptions {
  // Linux: io_uring or epoll (see poll/loop_backend.h; the
  // default honours GOPOLL_LOOP_BACKEND=epoll|io_uring). Ignored elsewhere.
  LoopBackend backend = LoopBackend::kDefault;
  // io_uring's submission queue size; 0: the default (256).
  unsigned ring_entries = 0;
};

class Loop {
 public:
  // A loop as `options` asks, or why none can be made: InvalidArgument for
  // ring_entries above 32768 (io_uring's limit; on every platform); on
  // Linux, an io_uring ring that cannot be set up (io_uring disabled,
  // EMFILE, ENOMEM at the RLIMIT_MEMLOCK charge, EINVAL) falls back to
  // epoll (backend_name() tells), and an error (EMFILE, ENFILE, ENOMEM)
  // means the loop's epoll instance or eventfd could not be opened: a
  // loop is either made so that Post and Stop always wake it, or not at
  // all. Never aborts.
  static absl::StatusOr<std::unique_ptr<Loop>> Create(
      const LoopOptions& options = LoopOptions());
  // The constructors cannot report an error: where Create would fail they
  // make a loop without an OS poller (backend_name() "threads", as on
  // plan9_stub: each operation runs as a blocking call on a helper thread,
  // Post and Stop wake it through a condition variable). Use Create to
  // learn why.
  Loop();
  explicit Loop(const LoopOptions& options);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs until Stop() (a Stop before Run makes it return at once).
  void Run();
  // Runs until every task given to Spawn has finished (at once if there is
  // none), or until Stop(). Tasks spawned meanwhile, also by the tasks
  // themselves, are waited for too.
  void RunUntilDone();
  // Runs the work that is ready, first waiting at most `timeout` for some
  // if there is none (not while a Stop is pending). Returns the number of
  // callbacks, resumptions and posted functions it ran.
  int RunOnce(absl::Duration timeout = absl::InfiniteDuration());
  // Makes Run return after the current round. Any thread.
  void Stop();
  // Runs `fn` on the loop thread. Any thread.
  void Post(absl::AnyInvocable<void() &&> fn);
  // Runs `fn` on the loop thread once `delay` has passed (measured on the
  // monotonic clock; never earlier; a delay <= 0 is the next round, like
  // Post). Any thread. An infinite delay never runs `fn`; if the loop is
  // destroyed first, `fn` is dropped without running (its destructor runs
  // on the deadline runtime's thread or the destroying thread).
  void PostAfter(absl::Duration delay, absl::AnyInvocable<void() &&> fn);
  // In a coroutine running on this loop: `co_await loop.Sleep(d);` suspends
  // it and resumes it on the loop thread once `d` has passed (at once when
  // d <= 0). E.g. the backoff of an accept loop at the descriptor limit:
  //   if (!conn.ok()) { co_await loop.Sleep(backoff); continue; }
  SleepAwaiter Sleep(absl::Duration d) { return SleepAwaiter(core_, d); }
  // Runs `task` on the loop thread; the loop owns it until it finishes.
  void Spawn(Task<void> task);

  // Takes ownership of `sysfd`, wraps it in an FD registered with this
  // loop's poller (non-blocking mode, like FD::Init).
  absl::StatusOr<AsyncFd> Adopt(Sysfd sysfd, FdKind kind);

  // True on the thread running this loop.
  bool InLoopThread() const { return core_->InLoop(); }
  // False on backends where operations run on helper threads.
  bool has_poller() const { return core_->poller() != nullptr; }
  // The OS mechanism the loop runs on: "io_uring" or "epoll" on Linux,
  // "iocp" on Windows, "threads" without a poller (plan9_stub).
  const char* backend_name() const {
    return core_->poller() != nullptr ? core_->poller()->backend_name()
                                      : "threads";
  }

 private:
  explicit Loop(std::shared_ptr<LoopCore> core);
  std::shared_ptr<LoopCore> core_;
};

}  // namespace gopoll

#endif  // POLL_LOOP_LOOP_H_
