// SPDX-License-Identifier: BSD-3-Clause
#include "poll/errors.h"

#include <cerrno>
#include <string>
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

absl::Status Make(absl::StatusCode code, absl::string_view op,
                  absl::string_view text) {
  if (op.empty()) return absl::Status(code, text);
  return absl::Status(code, absl::StrCat(op, ": ", text));
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

absl::string_view FdKindName(FdKind kind) {
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

absl::Status ErrClosing(FdKind kind, absl::string_view op) {
  return Make(absl::StatusCode::kFailedPrecondition, op,
              kind == FdKind::kNet ? kClosedNet : kClosedFile);
}

absl::Status ErrDeadlineExceeded(absl::string_view op) {
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

absl::Status ErrNullBuffer(size_t size, absl::string_view op) {
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": null buffer with length ", size));
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

absl::Status WithOp(absl::Status s, absl::string_view op) {
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
  return absl::Status(s.code(), absl::StrCat(op, ": ", m));
}

absl::Status OsError(absl::string_view syscall, int64_t code,
                     absl::string_view text) {
  return absl::Status(
      absl::StatusCode::kUnknown,
      absl::StrCat(syscall, ": ", text, kOsErrorMark, code, ")"));
}

absl::Status ErrnoError(absl::string_view syscall, int err) {
  return OsError(syscall, err, std::generic_category().message(err));
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
  // OS errors are kUnknown; a bad whence is kInvalidArgument with the code.
  if (s.code() != absl::StatusCode::kUnknown &&
      s.code() != absl::StatusCode::kInvalidArgument) {
    return 0;
  }
  absl::string_view m = s.message();
  size_t at = m.rfind(kOsErrorMark);
  if (at == absl::string_view::npos || !absl::EndsWith(m, ")")) return 0;
  absl::string_view digits = m.substr(at + kOsErrorMark.size());
  digits.remove_suffix(1);
  int64_t code = 0;
  if (!absl::SimpleAtoi(digits, &code)) return 0;
  return code;
}

}  // namespace gopoll
