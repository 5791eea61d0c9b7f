// SPDX-License-Identifier: BSD-3-Clause
// poll/windows/iocp.h
//
// The process-wide I/O completion port of the IOCP backend, created on
// first use, and the completion ports of event loops. Each overlapped
// operation is an Op on the stack of the thread that started it (or, in an
// event loop, on the heap); whoever dequeues its packet records the result
// in the Op and wakes its waiter. The process-wide port has no thread of its
// own: the threads blocked on its operations dequeue its packets themselves
// (leader/followers, poll/internal/leader_followers.h), so a thread whose own
// packet arrives is woken once, by the kernel. The kernel owns an Op from
// submission until its packet is dequeued (or, for kEvent mode, until its
// event is signalled): the starting thread never returns before.
//
// Test hook: SetInitIOHook() observes when and with what result initIO()
// decided a handle's mode (Go's logInitFD).
#ifndef POLL_WINDOWS_IOCP_H_
#define POLL_WINDOWS_IOCP_H_

#include <windows.h>

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "poll/backend_state.h"
#include "poll/internal/leader_followers.h"
#include "poll/internal/poller.h"
#include "poll/internal/waiter.h"

namespace gopoll {

// The completion key of an FD's handle on our ports: the address of its
// BackendState (never 0; Interrupt() posts key 0 without an OVERLAPPED).
inline ULONG_PTR PortKey(const BackendState& b) {
  return reinterpret_cast<ULONG_PTR>(&b);
}
// What an Op of the handle with completion key `key` carries in `tag`.
inline uintptr_t OpTag(ULONG_PTR key) {
  return static_cast<uintptr_t>(key) ^
         static_cast<uintptr_t>(0x90D01EC0FFEE0BADull);
}

// An operation of ours. A packet on our port whose OVERLAPPED is not in an
// Op (the application's own overlapped I/O on a handle the FD bound, Go
// #58870) is told apart by `tag`, right after the OVERLAPPED: it must be
// OpTag(key) of the packet's completion key. Foreign packets are dropped
// (the application waits on its own event or GetOverlappedResult, not on
// our port); the dequeuer writes nothing into their memory. Reading the
// word after a foreign OVERLAPPED is the one access left (Go reads its
// operation's pollDesc pointer there the same way).
struct Op {
  OVERLAPPED ov{};
  uintptr_t tag = 0;  // OpTag(key); must follow `ov`
  std::atomic<bool> done{false};
  DWORD bytes = 0;
  DWORD err = 0;
  internal::Waiter* waiter = nullptr;
};

// A completion port as a Poller: nothing to register (Register and
// Unregister do nothing), no readiness to report; Interrupt() posts an
// empty packet that ends the current wait on the port.
class IocpPollerBase : public internal::Poller {
 public:
  HANDLE port() const { return port_; }

  absl::Status Register(intptr_t, internal::PollDesc*) override {
    return absl::OkStatus();
  }
  void Unregister(intptr_t, internal::PollDesc*) override {}
  void Interrupt() override;

 protected:
  explicit IocpPollerBase(HANDLE port) : port_(port) {}
  const HANDLE port_;
};

// The poller of one event loop (poll/loop/loop.h): its own completion port,
// which the loop thread drains in Poll() (GetQueuedCompletionStatusEx, up
// to 64 packets a round). FDs adopted by the loop bind to this port, lazily
// in initIO(), instead of the process-wide one; their completions, also
// those of blocking calls made by other threads, are dispatched by the loop
// thread. port() is null if the port could not be created (FDs then fall
// back to the process-wide port's modes).
//
// Once the loop is gone (Orphan()), nobody runs Poll() any more: the
// threads blocked on the port's operations dequeue it themselves, as
// leader/followers like on the process-wide port, so the FDs that outlive
// their loop keep their blocking calls, deadlines and Close.
class IocpLoopPoller final : public IocpPollerBase {
 public:
  IocpLoopPoller();
  ~IocpLoopPoller() override;
  // False if its completion port could not be created (create_error()
  // says why); NewLoopPoller then reports instead of returning it.
  bool ok() const { return port_ != nullptr; }
  uint32_t create_error() const { return static_cast<uint32_t>(create_error_); }

  // Until Orphan(): other threads' blocking calls follow, the loop thread
  // wakes them (leadership reserved). Afterwards: leader/followers on the
  // port, as on the process-wide one.
  void Park(internal::ThreadWaiter& w) override;
  void Poll(int timeout_ms) override;
  const char* backend_name() const override { return "iocp"; }

 protected:
  // The oldest follower (if any) becomes leader.
  void OnOrphan() override;

 private:
  internal::LeaderFollowers lf_;
  unsigned long create_error_ = 0;
};

// The process-wide port: Park() of a thread blocked on an operation of a
// handle bound to it, which leads GetQueuedCompletionStatus while no other
// thread does (leader/followers).
class IocpPortPoller final : public IocpPollerBase {
 public:
  explicit IocpPortPoller(HANDLE port) : IocpPollerBase(port) {}

  void Park(internal::ThreadWaiter& w) override;

 private:
  internal::LeaderFollowers lf_;
};

class Iocp {
 public:
  // The port; null if it could not be created (the status says why).
  static HANDLE Port();
  static absl::Status PortStatus();
  // Where threads blocked on the port's operations park. Only valid when
  // Port() is not null.
  static internal::Poller& Waiters();
};

// Called by initIO() for every handle it decides: the handle, the mode and
// the error of binding to the port (OK when bound or not attempted).
using InitIOHook = std::function<void(HANDLE, IoMode, const absl::Status&)>;
void SetInitIOHook(InitIOHook hook);
void RunInitIOHook(HANDLE h, IoMode mode, const absl::Status& bind);

}  // namespace gopoll

#endif  // POLL_WINDOWS_IOCP_H_
