// SPDX-License-Identifier: BSD-3-Clause
// poll/windows/shared_handles.h
//
// The opt-in for standard and inheritable handles. By default an FD leaves
// the file object of such a handle alone, because another process may use
// it too: it is not bound to the FD's completion port and gets no
// skip-on-success modes; the FD does its overlapped I/O in event mode
// (IoMode::kEvent: an event per operation, deadlines and Close still work).
// A caller that knows no other process uses the file object can allow the
// FD to treat the handle like any other (bound lazily, skip-on-success).
#ifndef POLL_WINDOWS_SHARED_HANDLES_H_
#define POLL_WINDOWS_SHARED_HANDLES_H_

// First of all includes: a clear #error below C++20.
// clang-format off
#include "poll/require_cxx20.h"
// clang-format on

#include "absl/status/status.h"
#include "poll/fd.h"

namespace gopoll {

// Lets `fd` bind its handle to the IOCP and set
// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE even
// if it is a standard or inheritable handle. Call after Init and before the
// first operation, deadline call or Close of `fd`; FailedPrecondition once
// the FD has decided its I/O mode. Sockets are always bound: no effect.
absl::Status AllowSharedHandleModeChanges(FD& fd);

}  // namespace gopoll

#endif  // POLL_WINDOWS_SHARED_HANDLES_H_
