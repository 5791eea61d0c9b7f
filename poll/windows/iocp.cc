#include "poll/windows/iocp.h"

#include <memory>
#include <thread>

#include "absl/base/call_once.h"
#include "absl/base/const_init.h"
#include "absl/synchronization/mutex.h"
#include "poll/poller.h"
#include "poll/windows/win_error.h"

namespace gopoll {

std::unique_ptr<Poller> NewLoopPoller() {
  return std::make_unique<IocpLoopPoller>();
}
namespace {

absl::once_flag port_once;
HANDLE port = nullptr;
absl::Status* port_status = nullptr;

// Dequeues one packet, waiting at most `timeout` ms, and completes its Op.
// False if there was none (timeout, or a wake-up packet without an Op).
bool DequeueOne(HANDLE p, DWORD timeout) {
  DWORD bytes = 0;
  ULONG_PTR key = 0;
  OVERLAPPED* ov = nullptr;
  BOOL ok = GetQueuedCompletionStatus(p, &bytes, &key, &ov, timeout);
  if (ov == nullptr) return false;  // timeout or Interrupt()
  Op* op = CONTAINING_RECORD(ov, Op, ov);
  Waiter* w = op->waiter;
  op->bytes = bytes;
  op->err = ok ? 0 : GetLastError();
  // After `done` the starting thread may return and free the Op.
  op->done.store(true, std::memory_order_release);
  if (w != nullptr) w->Wake();
  return true;
}

void Dequeue(HANDLE p) {
  for (;;) DequeueOne(p, INFINITE);
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

IocpLoopPoller::IocpLoopPoller()
    : port_(CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1)) {}

IocpLoopPoller::~IocpLoopPoller() {
  if (port_ != nullptr) CloseHandle(port_);
}

void IocpLoopPoller::Park(ThreadWaiter& w) {
  while (!w.Take(ThreadWaiter::kWoken)) w.WaitFor(ThreadWaiter::kWoken);
}

void IocpLoopPoller::Interrupt() {
  if (port_ != nullptr) PostQueuedCompletionStatus(port_, 0, 0, nullptr);
}

void IocpLoopPoller::Poll(int timeout_ms) {
  if (port_ == nullptr) return;
  if (!DequeueOne(port_,
                  timeout_ms < 0 ? INFINITE : static_cast<DWORD>(timeout_ms))) {
    return;
  }
  for (int i = 1; i < 64 && DequeueOne(port_, 0); ++i) {
  }
}

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
