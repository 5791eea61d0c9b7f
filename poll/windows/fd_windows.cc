// SPDX-License-Identifier: BSD-3-Clause
// The IOCP backend's part of FD, with lazy IOCP binding (Go 75bf2a8c):
// Init records the handle (sockets are bound at once); initIO() runs once,
// on the first operation, deadline call or Close, and decides the IoMode:
//   kPort  - bound to our port; FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (and
//            SKIP_SET_EVENT) when allowed, so synchronous completions need
//            no packet;
//   kEvent - overlapped but bound elsewhere (the caller's port): each
//            operation uses its own event with the low bit set in hEvent,
//            so no packet reaches any port;
//   kSync  - opened for synchronous I/O: plain blocking calls, no deadlines.
// ExecIO submits one overlapped call and, if it is pending, waits for its
// completion, cancelling it (CancelIoEx) when the deadline passes or the FD
// closes, and never returns while the kernel still owns the OVERLAPPED.
// Sockets read and write with WSARecv/WSASend; their other calls are in
// fd_socket_windows.cc.
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <algorithm>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "poll/fd.h"
#include "poll/internal/detached_thread.h"
#include "poll/internal/perturb.h"
#include "poll/internal/poller.h"
#include "poll/windows/iocp.h"
#include "poll/windows/win_error.h"
#include "poll/windows/wsa.h"

namespace gopoll {
namespace {

HANDLE H(Sysfd s) { return reinterpret_cast<HANDLE>(s); }
SOCKET Sock(Sysfd s) { return static_cast<SOCKET>(s); }

// --- Is the handle opened for synchronous I/O? ---------------------------
//
// NtQueryInformationFile(FileModeInformation) answers, but on a synchronous
// file object the query waits behind a synchronous call pending in another
// thread (Go #75949: querying stdin hung). Such a wait can only happen for
// synchronous file objects, so the query runs on a helper thread: if it has
// not answered within kModeQueryTimeout the handle is synchronous. The
// helper works on a duplicate of the handle and exits when its query finally
// returns. The timeout is generous because a wrong "synchronous" for an
// overlapped handle would be a misuse of the handle (plain ReadFile on an
// overlapped file object), while the price of waiting is paid only once per
// FD and only in the rare blocked case; 100 ms was exceeded by the mere
// thread start when two Wine test processes shared the 2 CPUs.
constexpr absl::Duration kModeQueryTimeout = absl::Seconds(1);

using NtQueryInformationFileFn = LONG(NTAPI*)(HANDLE, void*, void*, ULONG, int);
constexpr int kFileModeInformation = 16;
constexpr ULONG kFileSynchronousIoAlert = 0x10;
constexpr ULONG kFileSynchronousIoNonalert = 0x20;

bool QueryIsSynchronous(HANDLE h) {
  static NtQueryInformationFileFn fn =
      reinterpret_cast<NtQueryInformationFileFn>(
          reinterpret_cast<void*>(GetProcAddress(GetModuleHandleA("ntdll.dll"),
                                                 "NtQueryInformationFile")));
  if (fn == nullptr) return true;
  struct {
    LONG_PTR status;
    ULONG_PTR information;
  } iosb{};
  ULONG mode = 0;
  if (fn(h, &iosb, &mode, sizeof(mode), kFileModeInformation) != 0) {
    return true;  // unknown: synchronous is the safe assumption
  }
  return (mode & (kFileSynchronousIoAlert | kFileSynchronousIoNonalert)) != 0;
}

bool IsSynchronousHandle(HANDLE h) {
  HANDLE dup = nullptr;
  if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &dup, 0,
                       FALSE, DUPLICATE_SAME_ACCESS)) {
    return true;
  }
  struct Shared {
    absl::Notification done;
    bool sync = true;
  };
  auto shared = std::make_shared<Shared>();
  if (!internal::SpawnDetached([shared, dup] {
        shared->sync = QueryIsSynchronous(dup);
        CloseHandle(dup);
        shared->done.Notify();
      })) {
    CloseHandle(dup);
    return true;  // no helper: synchronous is the safe assumption
  }
  if (!shared->done.WaitForNotificationWithTimeout(kModeQueryTimeout)) {
    return true;  // the query waits behind a synchronous call
  }
  return shared->sync;
}

// The completion port association and the completion modes belong to the
// file object, which other processes may share (Go #80979): a standard
// handle or an inheritable one may be in use by a parent or child process.
// Such handles are not bound to our port unless the caller opts in
// (AllowSharedHandleModeChanges): another process's overlapped I/O on a
// bound file object queues its packets to our port, with OVERLAPPED
// pointers into that process (our dequeuing thread crashed on one in the
// test), it can no longer bind the handle to its own port, and
// FILE_SKIP_SET_EVENT_ON_HANDLE would leave a process that waits on the
// handle itself waiting forever.
bool MayBeShared(HANDLE h) {
  for (DWORD std : {STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE}) {
    if (GetStdHandle(std) == h) return true;
  }
  DWORD flags = 0;
  if (!GetHandleInformation(h, &flags)) return true;
  return (flags & HANDLE_FLAG_INHERIT) != 0;
}

void SetOffset(OVERLAPPED* ov, int64_t off) {
  ov->Offset = static_cast<DWORD>(off);
  ov->OffsetHigh = static_cast<DWORD>(static_cast<uint64_t>(off) >> 32);
}

// The result of a ReadFile/WriteFile that already ran (never pass the call
// itself as an argument next to its byte count: argument evaluation order
// is unspecified). With an OVERLAPPED, Windows documents the byte count
// argument as unreliable: a synchronous completion's count is also in
// InternalHigh. ERROR_MORE_DATA (a longer pipe message) keeps its count:
// those bytes were read (ReadFile and GetOverlappedResult report it).
IoResult Done(BOOL ok, DWORD n, const OVERLAPPED* ov = nullptr) {
  if (!ok) {
    const DWORD err = GetLastError();
    return {err == ERROR_MORE_DATA ? static_cast<int64_t>(n) : 0,
            static_cast<int64_t>(err)};
  }
  if (ov != nullptr && n == 0) n = static_cast<DWORD>(ov->InternalHigh);
  return {static_cast<int64_t>(n), 0};
}

}  // namespace

absl::Status FD::InitBackend(bool pollable, WaitStrategy strategy,
                             internal::Poller* loop_poller) {
  if (pollable && strategy == WaitStrategy::kInterruptibleCall) {
    return absl::UnimplementedError(
        "poll: WaitStrategy::kInterruptibleCall is POSIX only (Windows "
        "handles wait through the IOCP)");
  }
  HANDLE h = H(sysfd_);
  backend_.loop_poller = loop_poller;
  if (GetFileType(h) == FILE_TYPE_UNKNOWN && GetLastError() != NO_ERROR) {
    return WinError("GetFileType", GetLastError());
  }
  // Close waits for the last reference in every mode (as Go's does on
  // Windows): whatever initIO() decides later, also kSync, whose calls
  // Close cancels. Only SetBlocking() turns the wait off.
  blocking_.store(false);
  backend_.want_poller = pollable;
  if (kind_ == FdKind::kNet) {
    WSAPROTOCOL_INFOW info{};
    int len = sizeof(info);
    if (getsockopt(Sock(sysfd_), SOL_SOCKET, SO_PROTOCOL_INFOW,
                   reinterpret_cast<char*>(&info), &len) != 0) {
      return WinError("getsockopt(SO_PROTOCOL_INFOW)", WSAGetLastError());
    }
    backend_.sock_family = info.iAddressFamily;
    backend_.sock_type = info.iSocketType;
    backend_.sock_protocol = info.iProtocol;
    zero_read_is_eof_ =
        info.iSocketType != SOCK_DGRAM && info.iSocketType != SOCK_RAW;
    // Sockets need the port from the start (Go does the same).
    return initIO();
  }
  return absl::OkStatus();
}

// The IOCP (or, unbound, an event per operation): always the poller kind.
WaitStrategy FD::wait_strategy() const {
  return pd_.pollable() ? WaitStrategy::kPoller : WaitStrategy::kAuto;
}

absl::Status FD::initIO() {
  absl::call_once(backend_.init_once, [this] {
    GOPOLL_PERTURB_POINT("fd.initio");
    HANDLE h = H(sysfd_);
    IoMode mode = IoMode::kUndecided;
    absl::Status bind;
    // Close runs this too (EvictBackend): a closing handle is never bound.
    // A handle opened for synchronous I/O is never bound either: its calls
    // complete synchronously anyway, and the port would only be taken from
    // a caller who might want it (sockets are always overlapped).
    if (pd_.closing() || kind_ == FdKind::kConsole ||
        (kind_ != FdKind::kNet && IsSynchronousHandle(h))) {
      mode = IoMode::kSync;
    } else if (backend_.want_poller &&
               (kind_ == FdKind::kNet || backend_.allow_shared.load() ||
                !MayBeShared(h))) {
      auto* loop = static_cast<IocpLoopPoller*>(backend_.loop_poller);
      HANDLE port = loop != nullptr ? loop->port() : Iocp::Port();
      if (port == nullptr) {
        bind =
            loop != nullptr
                ? absl::InternalError("the loop's completion port is missing")
                : Iocp::PortStatus();
      } else if (CreateIoCompletionPort(h, port, PortKey(backend_), 0) ==
                 port) {
        mode = IoMode::kPort;
        // Sockets: only if every provider hands out IFS handles (Go's
        // socketCanUseSetFileCompletionNotificationModes). Other handles
        // get here only if no other process may share the file object, or
        // the caller said so.
        const bool may_skip =
            kind_ != FdKind::kNet || SocketsCanSkipCompletionPort();
        if (may_skip && SetFileCompletionNotificationModes(
                            h, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                                   FILE_SKIP_SET_EVENT_ON_HANDLE)) {
          backend_.skip_sync_notify = true;
        }
      } else {
        // Typically ERROR_INVALID_PARAMETER: the handle belongs to another
        // port. The FD keeps working without ours.
        bind = WinError("CreateIoCompletionPort", GetLastError());
      }
    }
    if (mode == IoMode::kUndecided) {
      // Not bound: the poller was not wanted, binding failed, or the handle
      // may be shared with another process. The first branch found it
      // overlapped (sockets are: socket() and WSASocket with
      // WSA_FLAG_OVERLAPPED create them so); asking again would only run
      // another mode query.
      mode = IoMode::kEvent;
    }
    if (mode != IoMode::kSync) {
      // Deadlines and Close can cancel operations. Bound to a loop's port,
      // the PollDesc names that loop's poller (Close does not wait on the
      // loop thread, blocked callers park until the loop wakes them).
      if (mode != IoMode::kPort || backend_.loop_poller == nullptr ||
          !pd_.Open(backend_.loop_poller, sysfd_).ok()) {
        pd_.OpenWithoutPoller();
      }
    }
    backend_.mode.store(mode);
    RunInitIOHook(h, mode, bind);
  });
  return absl::OkStatus();
}

void FD::EvictBackend() {
  initIO().IgnoreError();
  HANDLE h = H(sysfd_);
  // Overlapped operations are also cancelled by their own waiters (woken by
  // PollDesc::Evict); a synchronous call can only be ended from here:
  // CancelIoEx ends a ReadFile/WriteFile blocked on a synchronous handle
  // (ERROR_OPERATION_ABORTED), as Go's Close relies on for pipes.
  CancelIoEx(h, nullptr);
  if (backend_.mode.load() != IoMode::kSync || blocking_.load()) return;
  // A call that checked `closing` before Evict may enter the OS only now,
  // after the cancellation: cancel again until every call has left (each
  // announced itself in sync_calls before its check, so none is missed).
  // The pauses grow, so a call that cannot be cancelled (a console read)
  // costs a few CancelIoEx calls per second, not a spinning CPU. Not on the
  // thread of the FD's event loop (Close does not wait there).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (backend_.sync_calls.load() == 0) return;
  if (internal::IsCurrentLoopPoller(backend_.loop_poller)) {
    return;
  }
  absl::Duration pause = absl::Milliseconds(1);
  absl::MutexLock l(&backend_.sync_mu);
  const absl::Condition none(
      +[](BackendState* b) { return b->sync_calls.load() == 0; }, &backend_);
  while (!backend_.sync_mu.AwaitWithTimeout(none, pause)) {
    CancelIoEx(h, nullptr);
    pause = std::min(pause * 2, absl::Milliseconds(100));
  }
}

absl::Status FD::CloseSysfd() {
  if (kind_ == FdKind::kNet) {
    if (closesocket(reinterpret_cast<SOCKET>(H(sysfd_))) != 0) {
      return WinError("closesocket", WSAGetLastError());
    }
    return absl::OkStatus();
  }
  if (!CloseHandle(H(sysfd_))) return WinError("CloseHandle", GetLastError());
  return absl::OkStatus();
}

bool FD::AsyncNative(internal::Poller* loop_poller, bool resumable) {
  // Reads and writes of pipes and sockets bound to the loop's port run on
  // the loop thread; the rest (files, Accept, Connect, foreign ports,
  // synchronous handles) on helper threads.
  if (loop_poller == nullptr || !resumable ||
      (kind_ != FdKind::kPipe && kind_ != FdKind::kNet)) {
    return false;
  }
  initIO().IgnoreError();
  return backend_.mode.load() == IoMode::kPort && pd_.poller() == loop_poller;
}

void FD::CancelAsync(void* backend_op) {
  CancelIoEx(H(sysfd_), &static_cast<Op*>(backend_op)->ov);
}

void FD::FreeAsync(void* backend_op) { delete static_cast<Op*>(backend_op); }

bool FD::OneLoopOpAtATime() const { return false; }

bool FD::LoopRunsItsCalls() const {
  const internal::Poller* p = backend_.loop_poller;
  return p != nullptr && !p->orphaned();
}

void FD::KeepAbandonedRead(void* backend_op, absl::Span<const char> buf) {
  auto* op = static_cast<Op*>(backend_op);
  if (!op->done.load() || (op->err != 0 && op->err != ERROR_MORE_DATA)) return;
  // Datagrams are messages; a pipe's (even a message pipe's) rest stays in
  // the pipe, so its bytes are a stream here.
  const size_t n = std::min(static_cast<size_t>(op->bytes), buf.size());
  KeepUnread(buf.subspan(0, n));
}

void FD::KeepUnread(absl::Span<const char> buf) {
  unread_.Keep(buf, kind_ == FdKind::kNet && !zero_read_is_eof_);
}

absl::StatusOr<size_t> FD::ExecIO(
    internal::Dir d, const char* syscall,
    absl::FunctionRef<IoResult(void* ctx)> attempt) {
  absl::Status s = initIO();
  if (!s.ok()) return s;
  const IoMode mode = backend_.mode.load();
  // Only port operations of event loops use the scope; synchronous handles
  // skip the thread-local lookup (emulated TLS is a call with mingw).
  internal::NonBlockingScope* nb =
      mode == IoMode::kSync ? nullptr : internal::NonBlockingScope::Current();
  // Collecting a completed in-flight operation: its result decides, even
  // when a deadline or Close cancelled it (then CheckErr reports that).
  const bool collecting = nb != nullptr && nb->backend_op != nullptr;
  if (!collecting) {
    // Also for handles without deadlines (kSync, whose PollDesc never
    // opens): a Close that ran initIO() before this operation did chose
    // the mode of a closing handle, not of this one.
    if (pd_.closing()) return ErrClosing(kind_);
    s = pd_.Prepare(d, kind_);
    if (!s.ok()) return s;
  }
  HANDLE h = H(sysfd_);
  // Why a cancelled operation was cancelled, as seen when it was: the
  // deadline may be extended before the cancellation completes. (An event
  // loop's operation was cancelled by the loop, which says why.)
  absl::Status cancel_reason = collecting ? nb->cancel_reason : absl::Status();
  IoResult r;
  if (mode == IoMode::kPort && nb != nullptr && nb->resumable) {
    // An event loop's operation: never wait here. Submit and leave the Op
    // in flight (its completion wakes nb->completion on the loop thread),
    // or collect the Op the loop hands back after that completion.
    Op* op = static_cast<Op*>(nb->backend_op);
    nb->backend_op = nullptr;
    if (op == nullptr) {
      op = new Op;
      op->tag = OpTag(PortKey(backend_));
      op->waiter = nb->completion;
      r = attempt(&op->ov);
      const bool warning = r.err == ERROR_MORE_DATA || r.err == WSAEMSGSIZE;
      if (warning) r.n = static_cast<int64_t>(op->ov.InternalHigh);
      if (r.err == ERROR_IO_PENDING ||
          ((r.err == 0 || warning) && !backend_.skip_sync_notify)) {
        nb->SetInFlight(op);  // a packet follows
        return absl::Status(absl::StatusCode::kUnavailable, "");
      }
      delete op;
    } else {
      r = {static_cast<int64_t>(op->bytes), static_cast<int64_t>(op->err)};
      if (kind_ == FdKind::kNet && op->err != 0) {
        DWORD n = 0;
        DWORD flags = 0;
        if (WSAGetOverlappedResult(Sock(sysfd_), &op->ov, &n, FALSE, &flags)) {
          r = {static_cast<int64_t>(n), 0};
        } else {
          r = {static_cast<int64_t>(op->ov.InternalHigh),
               static_cast<int64_t>(WSAGetLastError())};
        }
      }
      delete op;
    }
  } else if (mode == IoMode::kSync) {
    // Announced before the closing check that Close's cancellation loop
    // pairs with (EvictBackend); the check above may be stale by now.
    backend_.sync_calls.fetch_add(1);
    if (pd_.closing()) {
      r = {0, ERROR_OPERATION_ABORTED};
    } else {
      r = attempt(nullptr);
    }
    if (backend_.sync_calls.fetch_sub(1) == 1 && pd_.closing()) {
      absl::MutexLock l(&backend_.sync_mu);  // Close re-checks on unlock
    }
    if (r.err == ERROR_OPERATION_ABORTED && pd_.closing()) {
      return ErrClosing(kind_);
    }
  } else {
    Op op;
    op.tag = OpTag(PortKey(backend_));
    internal::ThreadWaiter& tw = internal::ThreadWaiter::Current();
    op.waiter = &tw;
    // Bound to a loop's port: its thread dequeues our packet and wakes us.
    // Bound to the process-wide port: we may dequeue it ourselves.
    internal::Poller* parker = nullptr;
    if (mode == IoMode::kPort) {
      parker = backend_.loop_poller != nullptr ? backend_.loop_poller
                                               : &Iocp::Waiters();
    }
    HANDLE event = nullptr;
    if (mode == IoMode::kEvent) {
      event = CreateEventA(nullptr, TRUE, FALSE, nullptr);
      if (event == nullptr) return WinError("CreateEvent", GetLastError());
      // The low bit keeps the completion away from any port.
      op.ov.hEvent =
          reinterpret_cast<HANDLE>(reinterpret_cast<uintptr_t>(event) | 1);
    }
    r = attempt(&op.ov);
    // A longer message or datagram than the buffer is a warning status
    // (STATUS_BUFFER_OVERFLOW), not an error: like a success it queues a
    // packet unless skip-on-success is set (seen under Wine for WSARecv and
    // WSARecvMsg: a packet without skip mode, none with it), and its byte
    // count is only in the OVERLAPPED.
    const bool warning = r.err == ERROR_MORE_DATA || r.err == WSAEMSGSIZE;
    if (warning) r.n = static_cast<int64_t>(op.ov.InternalHigh);
    const bool packet_follows =
        mode == IoMode::kPort &&
        (r.err == ERROR_IO_PENDING ||
         ((r.err == 0 || warning) && !backend_.skip_sync_notify));
    const bool pending = r.err == ERROR_IO_PENDING;
    if (packet_follows || (mode == IoMode::kEvent && pending)) {
      // Publish the waiter so a deadline or Close wakes us to cancel.
      absl::StatusOr<bool> armed = pd_.Arm(d, kind_, &tw);
      bool cancelled = false;
      for (;;) {
        bool done;
        if (mode == IoMode::kPort) {
          done = op.done.load(std::memory_order_acquire);
        } else {
          done = WaitForSingleObject(event, cancelled ? INFINITE : 10) ==
                 WAIT_OBJECT_0;
        }
        if (done) break;
        if (!cancelled) {
          cancel_reason = armed.ok() ? pd_.CheckErr(d, kind_) : armed.status();
          if (!cancel_reason.ok()) {
            CancelIoEx(h, &op.ov);
            cancelled = true;
          }
        }
        if (mode == IoMode::kPort) {
          parker->Park(tw);
          // A deadline that fired took `tw` out of the slot. If it was
          // extended before we looked, the operation goes on: publish `tw`
          // again, or the new deadline would find nobody to wake.
          if (!cancelled && !op.done.load(std::memory_order_acquire)) {
            pd_.Disarm(d, &tw);
            armed = pd_.Arm(d, kind_, &tw);
          }
        }
      }
      // A wake still on its way only causes a spurious wake-up later.
      if (armed.ok()) pd_.Disarm(d, &tw);
      if (kind_ == FdKind::kNet &&
          (mode == IoMode::kEvent || (pending && op.err != 0))) {
        // The port reports the NTSTATUS mapped to a Win32 error
        // (ERROR_NETNAME_DELETED, ERROR_CONNECTION_REFUSED, ...); Winsock's
        // own code (WSAECONNRESET, WSAECONNREFUSED, ...) is what callers of
        // socket calls expect.
        DWORD n = 0;
        DWORD flags = 0;
        if (WSAGetOverlappedResult(Sock(sysfd_), &op.ov, &n, FALSE, &flags)) {
          r = {static_cast<int64_t>(n), 0};
        } else {
          r = {static_cast<int64_t>(op.ov.InternalHigh),
               static_cast<int64_t>(WSAGetLastError())};
        }
      } else if (mode == IoMode::kEvent) {
        DWORD n = 0;
        BOOL ok = GetOverlappedResult(h, &op.ov, &n, FALSE);
        r = Done(ok, n);
      } else if (pending) {
        r = {static_cast<int64_t>(op.bytes), static_cast<int64_t>(op.err)};
      }
    }
    if (event != nullptr) CloseHandle(event);
  }
  if (d == internal::Dir::kRead) backend_.read_truncated = false;
  switch (r.err) {
    case 0:
      return static_cast<size_t>(r.n);
    case ERROR_MORE_DATA:  // a longer message: the bytes read so far
    case WSAEMSGSIZE:      // a longer datagram: truncated, as recv(2) does
      if (d == internal::Dir::kRead) backend_.read_truncated = true;
      return static_cast<size_t>(r.n);
    case ERROR_BROKEN_PIPE:  // the writer closed the pipe: end of stream
    case ERROR_HANDLE_EOF:
      if (d == internal::Dir::kRead) return size_t{0};
      break;
    case ERROR_OPERATION_ABORTED:
      s = pd_.CheckErr(d, kind_);
      if (!s.ok()) return s;
      if (!cancel_reason.ok()) return cancel_reason;
      break;
  }
  return WinError(syscall, static_cast<uint32_t>(r.err));
}

namespace {
bool IsOverlappedFile(FdKind kind, void* ctx) {
  return kind == FdKind::kFile && ctx != nullptr;
}
}  // namespace

absl::StatusOr<size_t> FD::ReadImpl(absl::Span<char> p) {
  if (kind_ == FdKind::kNet) return ReadVImpl(absl::MakeConstSpan(&p, 1));
  // Overlapped file handles use the FD's own offset; reads, writes and
  // seeks of a file are serialised on it (Go's fd.l). Only files: a pipe's
  // pending read must not hold up its writes.
  absl::MutexLockMaybe l(kind_ == FdKind::kFile ? &backend_.offset_mu
                                                : nullptr);
  bool advance = false;
  absl::StatusOr<size_t> n =
      ExecIO(internal::Dir::kRead, "ReadFile", [&](void* ctx) {
        auto* ov = static_cast<OVERLAPPED*>(ctx);
        if (IsOverlappedFile(kind_, ctx)) {
          SetOffset(ov, backend_.offset);
          advance = true;
        }
        DWORD got = 0;
        BOOL ok = ReadFile(H(sysfd_), p.data(), static_cast<DWORD>(p.size()),
                           &got, ov);
        return Done(ok, got, ov);
      });
  if (n.ok() && advance) backend_.offset += static_cast<int64_t>(*n);
  return n;
}

absl::StatusOr<size_t> FD::WriteImpl(absl::Span<const char> p) {
  if (kind_ == FdKind::kNet) return WriteVImpl(absl::MakeConstSpan(&p, 1));
  absl::MutexLockMaybe l(kind_ == FdKind::kFile ? &backend_.offset_mu
                                                : nullptr);
  bool advance = false;
  absl::StatusOr<size_t> n =
      ExecIO(internal::Dir::kWrite, "WriteFile", [&](void* ctx) {
        auto* ov = static_cast<OVERLAPPED*>(ctx);
        if (IsOverlappedFile(kind_, ctx)) {
          SetOffset(ov, backend_.offset);
          advance = true;
        }
        DWORD put = 0;
        BOOL ok = WriteFile(H(sysfd_), p.data(), static_cast<DWORD>(p.size()),
                            &put, ov);
        return Done(ok, put, ov);
      });
  if (n.ok() && advance) backend_.offset += static_cast<int64_t>(*n);
  return n;
}

namespace {
// Positional I/O on a synchronous handle moves the OS file pointer: put it
// back so that Pread/Pwrite never change the offset (Go #74951).
class KeepFilePointer {
 public:
  KeepFilePointer(HANDLE h, bool active) : h_(h) {
    LARGE_INTEGER zero{};
    active_ = active && SetFilePointerEx(h, zero, &pos_, FILE_CURRENT);
  }
  ~KeepFilePointer() {
    if (active_) SetFilePointerEx(h_, pos_, nullptr, FILE_BEGIN);
  }

 private:
  HANDLE h_;
  LARGE_INTEGER pos_{};
  bool active_ = false;
};
}  // namespace

absl::StatusOr<size_t> FD::PreadImpl(absl::Span<char> p, int64_t off) {
  absl::Status s = initIO();
  if (!s.ok()) return s;
  const bool sync = backend_.mode.load() == IoMode::kSync;
  // The file pointer is moved and put back under the offset mutex, which
  // Read, Write and Seek of a file hold too: none of them may run between.
  absl::MutexLockMaybe l(sync && kind_ == FdKind::kFile ? &backend_.offset_mu
                                                        : nullptr);
  KeepFilePointer keep(H(sysfd_), sync);
  return ExecIO(internal::Dir::kRead, "ReadFile", [&](void* ctx) {
    OVERLAPPED sync_ov{};
    auto* ov = ctx != nullptr ? static_cast<OVERLAPPED*>(ctx) : &sync_ov;
    SetOffset(ov, off);
    DWORD got = 0;
    BOOL ok =
        ReadFile(H(sysfd_), p.data(), static_cast<DWORD>(p.size()), &got, ov);
    if (!ok && ctx == nullptr && GetLastError() == ERROR_IO_PENDING) {
      // Taken for synchronous, overlapped after all (the mode query timed
      // out): the OVERLAPPED is on this stack, so wait for it here.
      ok = GetOverlappedResult(H(sysfd_), ov, &got, TRUE);
    }
    return Done(ok, got, ov);
  });
}

absl::StatusOr<size_t> FD::PwriteImpl(absl::Span<const char> p, int64_t off) {
  absl::Status s = initIO();
  if (!s.ok()) return s;
  const bool sync = backend_.mode.load() == IoMode::kSync;
  // The file pointer is moved and put back under the offset mutex, which
  // Read, Write and Seek of a file hold too: none of them may run between.
  absl::MutexLockMaybe l(sync && kind_ == FdKind::kFile ? &backend_.offset_mu
                                                        : nullptr);
  KeepFilePointer keep(H(sysfd_), sync);
  return ExecIO(internal::Dir::kWrite, "WriteFile", [&](void* ctx) {
    OVERLAPPED sync_ov{};
    auto* ov = ctx != nullptr ? static_cast<OVERLAPPED*>(ctx) : &sync_ov;
    SetOffset(ov, off);
    DWORD put = 0;
    BOOL ok =
        WriteFile(H(sysfd_), p.data(), static_cast<DWORD>(p.size()), &put, ov);
    if (!ok && ctx == nullptr && GetLastError() == ERROR_IO_PENDING) {
      // Taken for synchronous, overlapped after all (the mode query timed
      // out): the OVERLAPPED is on this stack, so wait for it here.
      ok = GetOverlappedResult(H(sysfd_), ov, &put, TRUE);
    }
    return Done(ok, put, ov);
  });
}

// Sockets scatter and gather with WSARecv/WSASend. Windows has no
// scatter/gather for other handles: one buffer per call (a short read or
// write, which the shared layer handles).
absl::StatusOr<size_t> FD::ReadVImpl(absl::Span<const absl::Span<char>> bufs) {
  if (kind_ == FdKind::kNet) {
    DWORD flags = 0;  // in/out: alive until the operation completes
    return ExecIO(internal::Dir::kRead, "WSARecv", [&](void* ctx) {
      flags = 0;
      return WsaRecv(Sock(sysfd_), bufs, &flags, static_cast<OVERLAPPED*>(ctx));
    });
  }
  for (const auto& b : bufs) {
    if (!b.empty()) return ReadImpl(b);
  }
  return size_t{0};
}

absl::StatusOr<size_t> FD::WriteVImpl(
    absl::Span<const absl::Span<const char>> bufs) {
  if (kind_ == FdKind::kNet) {
    return ExecIO(internal::Dir::kWrite, "WSASend", [&](void* ctx) {
      return WsaSend(Sock(sysfd_), bufs, static_cast<OVERLAPPED*>(ctx));
    });
  }
  for (const auto& b : bufs) {
    if (!b.empty()) return WriteImpl(b);
  }
  return size_t{0};
}

absl::StatusOr<int64_t> FD::SeekImpl(int64_t offset, int whence) {
  absl::Status s = initIO();
  if (!s.ok()) return s;
  absl::MutexLock l(&backend_.offset_mu);
  // Overlapped I/O ignores the OS file pointer: for overlapped files the
  // FD's offset is the one that counts (Go #75081). The OS still computes
  // and checks every new position (so a negative one is its
  // ERROR_NEGATIVE_SEEK, as in Go): a seek from the FD's offset is made
  // from the start, the offset added (wrapping like Go's int64; the OS then
  // refuses the negative result).
  const bool own_offset =
      backend_.mode.load() != IoMode::kSync && kind_ == FdKind::kFile;
  LARGE_INTEGER in, out;
  in.QuadPart = offset;
  DWORD method = static_cast<DWORD>(whence);
  if (own_offset && whence == 1) {
    in.QuadPart = static_cast<int64_t>(static_cast<uint64_t>(backend_.offset) +
                                       static_cast<uint64_t>(offset));
    method = FILE_BEGIN;
  }
  if (!SetFilePointerEx(H(sysfd_), in, &out, method)) {
    return WinError("SetFilePointerEx", GetLastError());
  }
  if (own_offset) backend_.offset = out.QuadPart;
  return static_cast<int64_t>(out.QuadPart);
}

absl::StatusOr<FileInfo> FD::FstatImpl() {
  BY_HANDLE_FILE_INFORMATION bi;
  if (!GetFileInformationByHandle(H(sysfd_), &bi)) {
    return WinError("GetFileInformationByHandle", GetLastError());
  }
  FileInfo fi;
  fi.size = (static_cast<int64_t>(bi.nFileSizeHigh) << 32) | bi.nFileSizeLow;
  fi.mode = bi.dwFileAttributes;
  fi.is_dir = (bi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
  fi.is_regular = GetFileType(H(sysfd_)) == FILE_TYPE_DISK && !fi.is_dir;
  // FILETIME: 100 ns since 1601-01-01.
  int64_t ft = (static_cast<int64_t>(bi.ftLastWriteTime.dwHighDateTime) << 32) |
               bi.ftLastWriteTime.dwLowDateTime;
  fi.mtime_unix_ns = (ft - 116444736000000000LL) * 100;
  return fi;
}

absl::Status FD::FsyncImpl() {
  if (!FlushFileBuffers(H(sysfd_))) {
    return WinError("FlushFileBuffers", GetLastError());
  }
  return absl::OkStatus();
}

absl::StatusOr<Sysfd> FD::DupImpl() {
  HANDLE out = nullptr;
  if (!DuplicateHandle(GetCurrentProcess(), H(sysfd_), GetCurrentProcess(),
                       &out, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
    return WinError("DuplicateHandle", GetLastError());
  }
  return reinterpret_cast<Sysfd>(out);
}

// Windows handles have no blocking flag: the call only records that Close
// must not wait (Go's SetBlocking is a no-op on Windows too).
absl::Status FD::SetBlockingImpl() {
  blocking_.store(true);
  return absl::OkStatus();
}

absl::Status FD::ShutdownImpl(int how) {
  if (shutdown(reinterpret_cast<SOCKET>(H(sysfd_)), how) != 0) {
    return WinError("shutdown", WSAGetLastError());
  }
  return absl::OkStatus();
}

}  // namespace gopoll
