#include "poll/windows/iocp.h"

#include <thread>

#include "absl/base/call_once.h"
#include "absl/base/const_init.h"
#include "absl/synchronization/mutex.h"
#include "poll/poller.h"
#include "poll/windows/win_error.h"

namespace gopoll {

// Event loops do not drive the IOCP yet: they run blocking operations on
// helper threads (poll/loop/offload.h).
std::unique_ptr<Poller> NewLoopPoller() { return nullptr; }
namespace {

absl::once_flag port_once;
HANDLE port = nullptr;
absl::Status* port_status = nullptr;

void Dequeue(HANDLE p) {
  for (;;) {
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    OVERLAPPED* ov = nullptr;
    BOOL ok = GetQueuedCompletionStatus(p, &bytes, &key, &ov, INFINITE);
    if (ov == nullptr) continue;  // no packet (spurious) — keep serving
    Op* op = CONTAINING_RECORD(ov, Op, ov);
    Waiter* w = op->waiter;
    op->bytes = bytes;
    op->err = ok ? 0 : GetLastError();
    // After `done` the starting thread may return and free the Op.
    op->done.store(true, std::memory_order_release);
    if (w != nullptr) w->Wake();
  }
}

void InitPort() {
  port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (port == nullptr) {
    port_status =
        new absl::Status(WinError("CreateIoCompletionPort", GetLastError()));
    return;
  }
  port_status = new absl::Status();
  std::thread(Dequeue, port).detach();
}

absl::Mutex hook_mu(absl::kConstInit);
InitIOHook* hook = nullptr;

}  // namespace

HANDLE Iocp::Port() {
  absl::call_once(port_once, InitPort);
  return port;
}

absl::Status Iocp::PortStatus() {
  absl::call_once(port_once, InitPort);
  return *port_status;
}

void SetInitIOHook(InitIOHook h) {
  absl::MutexLock l(&hook_mu);
  delete hook;
  hook = h ? new InitIOHook(std::move(h)) : nullptr;
}

void RunInitIOHook(HANDLE h, IoMode mode, const absl::Status& bind) {
  absl::MutexLock l(&hook_mu);
  if (hook != nullptr) (*hook)(h, mode, bind);
}

}  // namespace gopoll
