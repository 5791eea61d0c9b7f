#include "poll/errors.h"

#include <cerrno>
#include <string>
#include <system_error>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gopoll {
namespace {

constexpr absl::string_view kKindUrl = "poll.error/kind";
constexpr absl::string_view kOsCodeUrl = "poll.error/os_code";

absl::Status Tagged(absl::StatusCode code, absl::string_view msg,
                    absl::string_view tag) {
  absl::Status s(code, msg);
  s.SetPayload(kKindUrl, absl::Cord(tag));
  return s;
}

bool HasTag(const absl::Status& s, absl::string_view tag) {
  if (s.ok()) return false;
  auto p = s.GetPayload(kKindUrl);
  return p.has_value() && *p == tag;
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

absl::Status ErrClosing(FdKind kind) {
  return Tagged(absl::StatusCode::kFailedPrecondition,
                kind == FdKind::kNet ? "use of closed network connection"
                                     : "use of closed file",
                "closing");
}

absl::Status ErrDeadlineExceeded() {
  return Tagged(absl::StatusCode::kDeadlineExceeded, "i/o timeout", "deadline");
}

absl::Status ErrNoDeadline() {
  return Tagged(absl::StatusCode::kFailedPrecondition,
                "file type does not support deadline", "no_deadline");
}

absl::Status ErrNotPollable() {
  return Tagged(absl::StatusCode::kFailedPrecondition, "not pollable",
                "not_pollable");
}

absl::Status ErrEof() {
  return Tagged(absl::StatusCode::kOutOfRange, "EOF", "eof");
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
  absl::Status s = absl::InvalidArgumentError(
      absl::StrCat("seek: bad whence ", whence, " (os error ", kCode, ")"));
  s.SetPayload(kOsCodeUrl, absl::Cord(absl::StrCat(kCode)));
  return s;
}

absl::Status ErrTooManyRefs() {
  return Tagged(
      absl::StatusCode::kResourceExhausted,
      "too many concurrent operations on a single file or socket (max 1048575)",
      "too_many_refs");
}

absl::Status OsError(absl::string_view syscall, int64_t code,
                     absl::string_view text) {
  absl::Status s(absl::StatusCode::kUnknown,
                 absl::StrCat(syscall, ": ", text, " (os error ", code, ")"));
  s.SetPayload(kOsCodeUrl, absl::Cord(absl::StrCat(code)));
  return s;
}

absl::Status ErrnoError(absl::string_view syscall, int err) {
  return OsError(syscall, err, std::generic_category().message(err));
}

bool IsClosing(const absl::Status& s) { return HasTag(s, "closing"); }
bool IsNoDeadline(const absl::Status& s) { return HasTag(s, "no_deadline"); }
bool IsNotPollable(const absl::Status& s) { return HasTag(s, "not_pollable"); }
bool IsEof(const absl::Status& s) { return HasTag(s, "eof"); }
bool IsTooManyRefs(const absl::Status& s) { return HasTag(s, "too_many_refs"); }

int64_t OsErrorCode(const absl::Status& s) {
  if (s.ok()) return 0;
  auto p = s.GetPayload(kOsCodeUrl);
  int64_t code = 0;
  if (!p.has_value() || !absl::SimpleAtoi(std::string(*p), &code)) return 0;
  return code;
}

}  // namespace gopoll
