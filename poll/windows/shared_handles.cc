// SPDX-License-Identifier: BSD-3-Clause
#include "poll/windows/shared_handles.h"

#include "poll/internal/fd_access.h"

namespace gopoll {

absl::Status AllowSharedHandleModeChanges(FD& fd) {
  BackendState& b = internal::FdAccess::backend(fd);
  b.allow_shared.store(true);
  if (b.mode.load() != IoMode::kUndecided) {
    return absl::FailedPreconditionError(
        "AllowSharedHandleModeChanges: the FD has already decided its I/O "
        "mode (call it before the first operation, deadline call or Close)");
  }
  return absl::OkStatus();
}

}  // namespace gopoll
