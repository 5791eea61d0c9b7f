// SPDX-License-Identifier: BSD-3-Clause
// poll/windows/backend_state.h (included as "poll/backend_state.h")
//
// Per-FD state of the IOCP backend: how the handle does I/O, decided once
// by initIO() (lazy IOCP binding), the FD's own file offset for overlapped
// file handles (overlapped I/O does not use the OS file pointer), and a
// socket's family, type and protocol.
#ifndef POLL_WINDOWS_BACKEND_STATE_H_
#define POLL_WINDOWS_BACKEND_STATE_H_

#include <atomic>
#include <cstdint>

#include "absl/base/call_once.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace gopoll {

// How an FD's handle does I/O, decided by initIO().
enum class IoMode : int {
  kUndecided = 0,
  kPort,   // overlapped, bound to our IOCP: completions come as packets
  kEvent,  // overlapped, not bound to our port (e.g. bound to the caller's):
           // per-operation event with the low bit set, no packet anywhere
  kSync,   // opened for synchronous I/O: plain blocking calls
};

namespace internal {
class Poller;
}  // namespace internal

struct BackendState {
  bool want_poller = false;  // Init(kind, pollable=true)
  // AllowSharedHandleModeChanges: a standard or inheritable handle may be
  // bound to the port and given skip-on-success modes like any other.
  std::atomic<bool> allow_shared{false};
  // Init(kind, loop_poller): the event loop's IocpLoopPoller, whose port
  // initIO() binds to instead of the process-wide one.
  internal::Poller* loop_poller = nullptr;
  absl::once_flag init_once;
  std::atomic<IoMode> mode{IoMode::kUndecided};
  // FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set: a call that completes at
  // once queues no packet.
  bool skip_sync_notify = false;
  // Serialises Read, Write and Seek of file handles (the offset below).
  absl::Mutex offset_mu;
  // Offset of the next Read/Write on overlapped file handles.
  int64_t offset = 0;
  // Sockets (kNet): the protocol triple from SO_PROTOCOL_INFOW at Init.
  // Accept creates its socket with it; Connect uses ConnectEx for streams.
  int sock_family = 0;
  int sock_type = 0;
  int sock_protocol = 0;
  // Calls of a kSync handle that are inside the OS call (or about to enter
  // it): Close cancels them with CancelIoEx, again and again until none is
  // left, since a call may enter the OS just after a cancellation. Close
  // waits on sync_mu (Await) for the count to drop to zero; a call that
  // leaves while the FD is closing takes sync_mu once to wake it.
  std::atomic<int> sync_calls{0};
  absl::Mutex sync_mu;
  // The last read (under the read lock) returned a truncated message or
  // datagram (ERROR_MORE_DATA / WSAEMSGSIZE). ReadMsg reports it as
  // MSG_TRUNC, which Wine's WSARecvMsg does not set itself.
  bool read_truncated = false;
};

}  // namespace gopoll

#endif  // POLL_WINDOWS_BACKEND_STATE_H_
