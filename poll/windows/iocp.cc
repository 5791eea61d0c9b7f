// SPDX-License-Identifier: BSD-3-Clause
#include "poll/windows/iocp.h"

#include <memory>

#include "absl/base/call_once.h"
#include "absl/base/const_init.h"
#include "absl/synchronization/mutex.h"
#include "poll/internal/poller.h"
#include "poll/windows/win_error.h"

namespace gopoll {

absl::StatusOr<std::unique_ptr<internal::Poller>> internal::NewLoopPoller(
    LoopBackend, unsigned /*ring_entries*/) {
  auto p = std::make_unique<IocpLoopPoller>();
  if (!p->ok()) {
    return WinError("CreateIoCompletionPort", p->create_error());
  }
  return std::unique_ptr<internal::Poller>(std::move(p));
}
namespace {

absl::once_flag port_once;
IocpPortPoller* port_poller = nullptr;
absl::Status* port_status = nullptr;

void InitPort() {
  // No concurrency limit (Go does the same): over time every blocked
  // thread may lead, and each stays associated with the port afterwards;
  // a limit would hold packets back while such threads run.
  HANDLE port =
      CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, INFINITE);
  if (port == nullptr) {
    port_status =
        new absl::Status(WinError("CreateIoCompletionPort", GetLastError()));
    return;
  }
  port_status = new absl::Status();
  port_poller = new IocpPortPoller(port);
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

// Records a dequeued packet's result in its Op and wakes the Op's waiter,
// or only marks it when it is `self` (a leader dequeuing its own packet).
// Packets that are not ours (see Op) are dropped untouched.
void Complete(OVERLAPPED* ov, ULONG_PTR key, DWORD bytes, DWORD err,
              internal::ThreadWaiter* self) {
  if (ov == nullptr || key == 0) return;  // Interrupt()
  Op* op = CONTAINING_RECORD(ov, Op, ov);
  if (op->tag != OpTag(key)) return;  // the application's own OVERLAPPED
  internal::Waiter* w = op->waiter;
  op->bytes = bytes;
  op->err = err;
  // After `done` the starting thread may return and free the Op.
  op->done.store(true, std::memory_order_release);
  if (w == nullptr) return;
  if (w == self) {
    self->MarkWoken();
  } else {
    w->Wake();
  }
}

// One wait of a leader on `port` and the delivery of the packet it got.
void DequeueOne(HANDLE port, internal::ThreadWaiter& self) {
  DWORD bytes = 0;
  ULONG_PTR key = 0;
  OVERLAPPED* ov = nullptr;
  BOOL ok = GetQueuedCompletionStatus(port, &bytes, &key, &ov, INFINITE);
  Complete(ov, key, bytes, ok ? 0 : GetLastError(), &self);
}

}  // namespace

namespace {
absl::Mutex hook_mu(absl::kConstInit);
InitIOHook* hook = nullptr;
}  // namespace

// No concurrency limit: once orphaned, any blocked thread may lead, and
// one that led stays associated with the port while it runs on (see
// InitPort).
IocpLoopPoller::IocpLoopPoller()
    : IocpPollerBase(
          CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, INFINITE)) {
  if (port_ == nullptr) create_error_ = GetLastError();
  lf_.ReserveLeadership();  // the loop thread polls until Orphan()
}

IocpLoopPoller::~IocpLoopPoller() {
  if (port_ != nullptr) CloseHandle(port_);
}

void IocpLoopPoller::Park(internal::ThreadWaiter& w) {
  lf_.Park(w, this, [&] { DequeueOne(port_, w); });
}

void IocpLoopPoller::OnOrphan() { lf_.ReleaseLeadership(); }

void IocpPollerBase::Interrupt() {
  if (port_ != nullptr) PostQueuedCompletionStatus(port_, 0, 0, nullptr);
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
    Complete(ov, entries[i].lpCompletionKey,
             entries[i].dwNumberOfBytesTransferred,
             ov != nullptr ? PacketError(ov) : 0, nullptr);
  }
}

void IocpPortPoller::Park(internal::ThreadWaiter& w) {
  // One packet per wait: under Wine, GetQueuedCompletionStatusEx asks the
  // wineserver once more for further packets after the first, and with
  // blocked callers a leader usually finds only its own.
  lf_.Park(w, this, [&] { DequeueOne(port_, w); });
}

HANDLE Iocp::Port() {
  absl::call_once(port_once, InitPort);
  return port_poller != nullptr ? port_poller->port() : nullptr;
}

internal::Poller& Iocp::Waiters() {
  absl::call_once(port_once, InitPort);
  return *port_poller;
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
