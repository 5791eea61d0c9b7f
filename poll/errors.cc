// SPDX-License-Identifier: BSD-3-Clause
#include "poll/errors.h"

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gopoll {
namespace {

constexpr absl::string_view kClosedFile = "use of closed file";
constexpr absl::string_view kClosedNet = "use of closed network connection";
constexpr absl::string_view kTimeout = "i/o timeout";
constexpr absl::string_view kNoDeadline = "file type does not support deadline";
constexpr absl::string_view kNotPollable = "not pollable";
constexpr absl::string_view kEof = "EOF";
constexpr absl::string_view kTooManyRefs =
    "too many concurrent operations on a single file or socket (max 1048575)";
constexpr absl::string_view kOsErrorMark = " (os error ";

// The public API takes std::string_view; abseil's own string_view is a
// distinct class in some builds of abseil (Debian's), so convert here.
absl::string_view Sv(std::string_view v) { return {v.data(), v.size()}; }

absl::Status Make(absl::StatusCode code, std::string_view op,
                  absl::string_view text) {
  if (op.empty()) return absl::Status(code, text);
  return absl::Status(code, absl::StrCat(Sv(op), ": ", text));
}

// The canonical code of an OS error code: abseil's mapping for an errno;
// on Windows the code of the errno for the same condition.
absl::StatusCode OsStatusCode(int64_t code) {
#ifdef _WIN32
  switch (code) {
    case 2:  // ERROR_FILE_NOT_FOUND
    case 3:  // ERROR_PATH_NOT_FOUND
      return absl::StatusCode::kNotFound;
    case 5:      // ERROR_ACCESS_DENIED
    case 10013:  // WSAEACCES
      return absl::StatusCode::kPermissionDenied;
    case 8:      // ERROR_NOT_ENOUGH_MEMORY
    case 14:     // ERROR_OUTOFMEMORY
    case 10024:  // WSAEMFILE
    case 10055:  // WSAENOBUFS
      return absl::StatusCode::kResourceExhausted;
    case 80:     // ERROR_FILE_EXISTS
    case 183:    // ERROR_ALREADY_EXISTS
    case 10049:  // WSAEADDRNOTAVAIL (abseil's code for EADDRNOTAVAIL)
      return absl::StatusCode::kAlreadyExists;
    case 50:  // ERROR_NOT_SUPPORTED
      return absl::StatusCode::kUnimplemented;
    case 87:     // ERROR_INVALID_PARAMETER
    case 10014:  // WSAEFAULT
    case 10022:  // WSAEINVAL
    case 10038:  // WSAENOTSOCK
      return absl::StatusCode::kInvalidArgument;
    case 6:      // ERROR_INVALID_HANDLE
    case 109:    // ERROR_BROKEN_PIPE (EPIPE)
    case 232:    // ERROR_NO_DATA (EPIPE)
    case 233:    // ERROR_PIPE_NOT_CONNECTED
    case 10048:  // WSAEADDRINUSE
    case 10057:  // WSAENOTCONN
    case 10058:  // WSAESHUTDOWN
      return absl::StatusCode::kFailedPrecondition;
    case 995:  // ERROR_OPERATION_ABORTED
      return absl::StatusCode::kCancelled;
    case 121:    // ERROR_SEM_TIMEOUT
    case 10060:  // WSAETIMEDOUT
      return absl::StatusCode::kDeadlineExceeded;
    case 64:     // ERROR_NETNAME_DELETED
    case 1236:   // ERROR_CONNECTION_ABORTED
    case 10035:  // WSAEWOULDBLOCK
    case 10050:  // WSAENETDOWN
    case 10051:  // WSAENETUNREACH
    case 10053:  // WSAECONNABORTED
    case 10054:  // WSAECONNRESET
    case 10061:  // WSAECONNREFUSED
    case 10065:  // WSAEHOSTUNREACH
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
#else
  if (code <= 0 || code > INT32_MAX) return absl::StatusCode::kUnknown;
  return absl::ErrnoToStatusCode(static_cast<int>(code));
#endif
}

// `s` has `code` and its message is `text`, or ends with ": " + `text`.
bool Names(const absl::Status& s, absl::StatusCode code,
           absl::string_view text) {
  if (s.code() != code) return false;
  absl::string_view m = s.message();
  if (m == text) return true;
  if (m.size() < text.size() + 2 || !absl::EndsWith(m, text)) return false;
  return m.substr(m.size() - text.size() - 2, 2) == ": ";
}

}  // namespace

std::string_view FdKindName(FdKind kind) {
  switch (kind) {
    case FdKind::kFile:
      return "file";
    case FdKind::kPipe:
      return "pipe";
    case FdKind::kConsole:
      return "console";
    case FdKind::kNet:
      return "net";
  }
  return "unknown";
}

absl::Status ErrClosing(FdKind kind, std::string_view op) {
  return Make(absl::StatusCode::kFailedPrecondition, op,
              kind == FdKind::kNet ? kClosedNet : kClosedFile);
}

absl::Status ErrDeadlineExceeded(std::string_view op) {
  return Make(absl::StatusCode::kDeadlineExceeded, op, kTimeout);
}

absl::Status ErrNoDeadline() {
  return absl::Status(absl::StatusCode::kFailedPrecondition, kNoDeadline);
}

absl::Status ErrNotPollable() {
  return absl::Status(absl::StatusCode::kFailedPrecondition, kNotPollable);
}

absl::Status ErrEof() {
  return absl::Status(absl::StatusCode::kOutOfRange, kEof);
}

absl::Status ErrNullBuffer(size_t size, std::string_view op) {
  return absl::InvalidArgumentError(
      absl::StrCat(Sv(op), ": null buffer with length ", size));
}

absl::Status ErrBadWhence(int whence) {
  // The code the OS gives for it (Go passes whence on to the OS).
#ifdef _WIN32
  constexpr int64_t kCode = 87;  // ERROR_INVALID_PARAMETER
#else
  constexpr int64_t kCode = EINVAL;
#endif
  return absl::InvalidArgumentError(
      absl::StrCat("seek: bad whence ", whence, kOsErrorMark, kCode, ")"));
}

absl::Status ErrTooManyRefs() {
  return absl::Status(absl::StatusCode::kResourceExhausted, kTooManyRefs);
}

absl::Status WithOp(absl::Status s, std::string_view op) {
  if (s.ok() || op.empty()) return s;
  absl::string_view m = s.message();
  // Only poll's own sentinels, and only while they name no operation.
  bool bare = false;
  switch (s.code()) {
    case absl::StatusCode::kFailedPrecondition:
      bare = m == kClosedFile || m == kClosedNet || m == kNoDeadline ||
             m == kNotPollable;
      break;
    case absl::StatusCode::kDeadlineExceeded:
      bare = m == kTimeout;
      break;
    case absl::StatusCode::kResourceExhausted:
      bare = m == kTooManyRefs;
      break;
    default:
      break;
  }
  if (!bare) return s;
  return absl::Status(s.code(), absl::StrCat(Sv(op), ": ", m));
}

absl::Status OsError(std::string_view syscall, int64_t code,
                     std::string_view text) {
  return absl::Status(
      OsStatusCode(code),
      absl::StrCat(Sv(syscall), ": ", Sv(text), kOsErrorMark, code, ")"));
}

absl::Status ErrnoError(std::string_view syscall, int err) {
  // An errno on every platform (Windows' C library has its own), so
  // abseil's mapping, not OsError's.
  absl::StatusCode code =
      err > 0 ? absl::ErrnoToStatusCode(err) : absl::StatusCode::kUnknown;
  return absl::Status(code, absl::StrCat(Sv(syscall), ": ",
                                         std::generic_category().message(err),
                                         kOsErrorMark, err, ")"));
}

bool IsClosing(const absl::Status& s) {
  return Names(s, absl::StatusCode::kFailedPrecondition, kClosedNet) ||
         Names(s, absl::StatusCode::kFailedPrecondition, kClosedFile);
}
bool IsNoDeadline(const absl::Status& s) {
  return Names(s, absl::StatusCode::kFailedPrecondition, kNoDeadline);
}
bool IsNotPollable(const absl::Status& s) {
  return Names(s, absl::StatusCode::kFailedPrecondition, kNotPollable);
}
bool IsEof(const absl::Status& s) {
  return Names(s, absl::StatusCode::kOutOfRange, kEof);
}
bool IsTooManyRefs(const absl::Status& s) {
  return Names(s, absl::StatusCode::kResourceExhausted, kTooManyRefs);
}

int64_t OsErrorCode(const absl::Status& s) {
  // OS errors carry their canonical code, so any code but OK; the message
  // ends with the mark and the number.
  if (s.ok()) return 0;
  absl::string_view m = s.message();
  size_t at = m.rfind(kOsErrorMark);
  if (at == absl::string_view::npos || !absl::EndsWith(m, ")")) return 0;
  absl::string_view digits = m.substr(at + kOsErrorMark.size());
  digits.remove_suffix(1);
  int64_t code = 0;
  if (!absl::SimpleAtoi(digits, &code)) return 0;
  return code;
}

bool IsConnectionReset(const absl::Status& s) {
  switch (OsErrorCode(s)) {
#ifdef _WIN32
    case 64:     // ERROR_NETNAME_DELETED
    case 109:    // ERROR_BROKEN_PIPE
    case 232:    // ERROR_NO_DATA
    case 1236:   // ERROR_CONNECTION_ABORTED
    case 10053:  // WSAECONNABORTED
    case 10054:  // WSAECONNRESET
    case 10058:  // WSAESHUTDOWN
#else
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
#endif
      return true;
    default:
      return false;
  }
}

}  // namespace gopoll
