// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/fd_access.h
//
// Internal (not for applications; see API_STABILITY.md): how the backends'
// shared code and the event loop reach FD's hooks, which are private so
// that FD's public section is only the application API:
//   - poll_desc(): the FD's PollDesc (readiness slots, deadlines, closing);
//   - backend(): the backend's per-FD state (poll/<backend>/backend_state.h);
//   - ExecIO(): the one operation runner (initIO, closing and deadline
//     checks, attempt, wait on would-block, retry);
//   - AsyncNative / CancelAsync / FreeAsync / KeepAbandonedRead: whether a
//     loop runs an operation on its poller, and the in-flight operations of
//     completion backends (poll/loop/async_op.cc).
// Each forwards to the FD member of the same name; see poll/fd.h.
#ifndef POLL_INTERNAL_FD_ACCESS_H_
#define POLL_INTERNAL_FD_ACCESS_H_

#include <cstddef>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "poll/fd.h"

namespace gopoll::internal {

class FdAccess {
 public:
  static PollDesc& poll_desc(FD& fd) { return fd.poll_desc(); }
  static BackendState& backend(FD& fd) { return fd.backend(); }
  static absl::StatusOr<size_t> ExecIO(
      FD& fd, Dir d, const char* syscall,
      absl::FunctionRef<IoResult(void* ctx)> attempt) {
    return fd.ExecIO(d, syscall, attempt);
  }
  static bool AsyncNative(FD& fd, Poller* loop_poller, bool resumable) {
    return fd.AsyncNative(loop_poller, resumable);
  }
  static void CancelAsync(FD& fd, void* backend_op) {
    fd.CancelAsync(backend_op);
  }
  static void FreeAsync(FD& fd, void* backend_op) { fd.FreeAsync(backend_op); }
  static bool OneLoopOpAtATime(FD& fd) { return fd.OneLoopOpAtATime(); }
  static void KeepAbandonedRead(FD& fd, void* backend_op,
                                absl::Span<const char> buf) {
    fd.KeepAbandonedRead(backend_op, buf);
  }
  static void KeepUnread(FD& fd, absl::Span<const char> buf) {
    fd.KeepUnread(buf);
  }
};

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_FD_ACCESS_H_
