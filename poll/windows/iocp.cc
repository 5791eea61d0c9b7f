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

// A packet's error as GetQueuedCompletionStatus reports it: the NTSTATUS in
// the OVERLAPPED mapped to a Win32 code (warnings too, e.g.
// STATUS_BUFFER_OVERFLOW -> ERROR_MORE_DATA).
DWORD PacketError(const OVERLAPPED* ov) {
  using RtlNtStatusToDosErrorFn = ULONG(NTAPI*)(LONG);
  static RtlNtStatusToDosErrorFn to_dos =
      reinterpret_cast<RtlNtStatusToDosErrorFn>(
          reinterpret_cast<void*>(GetProcAddress(GetModuleHandleA("ntdll.dll"),
                                                 "RtlNtStatusToDosError")));
  const LONG status = static_cast<LONG>(ov->Internal);
  if (status >= 0) return 0;  // NT_SUCCESS
  return to_dos != nullptr ? to_dos(status) : ERROR_GEN_FAILURE;
}

void IocpLoopPoller::Poll(int timeout_ms) {
  if (port_ == nullptr) return;
  OVERLAPPED_ENTRY entries[64];
  ULONG n = 0;
  if (!GetQueuedCompletionStatusEx(
          port_, entries, 64, &n,
          timeout_ms < 0 ? INFINITE : static_cast<DWORD>(timeout_ms), FALSE)) {
    return;  // timeout
  }
  for (ULONG i = 0; i < n; ++i) {
    OVERLAPPED* ov = entries[i].lpOverlapped;
    if (ov == nullptr) continue;  // Interrupt()
    Op* op = CONTAINING_RECORD(ov, Op, ov);
    Waiter* w = op->waiter;
    op->bytes = entries[i].dwNumberOfBytesTransferred;
    op->err = PacketError(ov);
    op->done.store(true, std::memory_order_release);
    if (w != nullptr) w->Wake();
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
