// SPDX-License-Identifier: BSD-3-Clause
#include "poll/windows/win_error.h"

#include <windows.h>

#include <string>

#include "poll/errors.h"

namespace gopoll {

absl::Status WinError(std::string_view syscall, uint32_t code) {
  char buf[512];
  DWORD n =
      FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                     nullptr, code, 0, buf, sizeof(buf), nullptr);
  while (n > 0 &&
         (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == '.')) {
    --n;
  }
  std::string text = n > 0 ? std::string(buf, n) : "Windows error";
  return OsError(syscall, code, text);
}

}  // namespace gopoll
