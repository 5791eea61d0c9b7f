// SPDX-License-Identifier: BSD-3-Clause
// poll/windows/win_error.h
//
// Windows error codes as gopoll::OsError statuses: the message names the
// call and carries FormatMessage's text; OsErrorCode() gives the code.
#ifndef POLL_WINDOWS_WIN_ERROR_H_
#define POLL_WINDOWS_WIN_ERROR_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"

namespace gopoll {

absl::Status WinError(std::string_view syscall, uint32_t code);

}  // namespace gopoll

#endif  // POLL_WINDOWS_WIN_ERROR_H_
