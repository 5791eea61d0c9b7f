// SPDX-License-Identifier: BSD-3-Clause
// poll/loop/task.h
//
// Task<T>: the coroutine type of poll's event loop. A Task starts when it is
// awaited (`T v = co_await Child();`, resuming the awaiter by symmetric
// transfer when it finishes) or when it is given to Loop::Spawn, which runs
// it on the loop thread and destroys its frame when it finishes.
//
// Destroying a Task that was not spawned destroys its frame; destroying a
// suspended frame (Loop destruction destroys spawned tasks still pending)
// abandons the FD operation it waits on: the operation is never resumed and
// releases the FD. Exceptions escaping a task terminate the process.
//
//   gopoll::Task<size_t> CountBytes(gopoll::AsyncFd fd) {
//     char buf[4096];
//     size_t total = 0;
//     for (;;) {
//       absl::StatusOr<size_t> n = co_await fd.Read(absl::MakeSpan(buf));
//       if (!n.ok()) co_return total;  // EOF, Close, deadline, ...
//       total += *n;
//     }
//   }
#ifndef POLL_LOOP_TASK_H_
#define POLL_LOOP_TASK_H_

// First of all includes: a clear #error below C++20.
// clang-format off
#include "poll/require_cxx20.h"
// clang-format on

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace gopoll {

class LoopCore;

namespace internal_task {

struct PromiseBase {
  std::coroutine_handle<> continuation;
  LoopCore* root_of = nullptr;  // set by Loop::Spawn

  std::suspend_always initial_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { std::terminate(); }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      PromiseBase& p = h.promise();
      if (p.continuation) return p.continuation;
      if (p.root_of != nullptr) RootDone(p.root_of, h);
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  // Defined in loop.cc: forgets and destroys a finished spawned task.
  static void RootDone(LoopCore* core, std::coroutine_handle<> h);
};

template <typename T>
struct Promise : PromiseBase {
  std::optional<T> value;
  template <typename U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
};

template <>
struct Promise<void> : PromiseBase {
  void return_void() {}
};

}  // namespace internal_task

template <typename T = void>
class [[nodiscard]] Task {
 public:
  struct promise_type : internal_task::Promise<T> {
    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
  };
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~Task() {
    if (h_) h_.destroy();
  }

  // co_await task: runs it to completion, then yields its value.
  auto operator co_await() && noexcept {
    struct Awaiter {
      Handle h;
      bool await_ready() noexcept { return !h || h.done(); }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> c) {
        h.promise().continuation = c;
        return h;
      }
      T await_resume() {
        if constexpr (!std::is_void_v<T>) return std::move(*h.promise().value);
      }
    };
    return Awaiter{h_};
  }

  // For Loop::Spawn: gives up ownership of the frame.
  Handle Release() { return std::exchange(h_, nullptr); }

 private:
  explicit Task(Handle h) : h_(h) {}
  Handle h_ = nullptr;
};

}  // namespace gopoll

#endif  // POLL_LOOP_TASK_H_
