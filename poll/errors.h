// SPDX-License-Identifier: BSD-3-Clause
// poll/errors.h
//
// The errors of `poll`, all carried in absl::Status. Each condition a caller
// must tell apart has a constructor and a predicate:
//
//   ErrClosing / IsClosing                 Go's ErrFileClosing / ErrNetClosing
//   ErrDeadlineExceeded / IsDeadlineExceeded  Go's ErrDeadlineExceeded
//                                          (code kDeadlineExceeded)
//   ErrNoDeadline / IsNoDeadline           deadlines unsupported on this FD
//   ErrNotPollable / IsNotPollable         the poller cannot watch this FD
//   ErrEof / IsEof                         end of stream (0-byte read)
//   OsError / OsErrorCode                  an OS call failed; the message
//                                          names the call and the error,
//                                          the code is abseil's canonical
//                                          code for it (ECONNRESET:
//                                          kUnavailable, ENOENT: kNotFound)
//   IsConnectionReset                      the peer went away (ECONNRESET,
//                                          EPIPE, ECONNABORTED and the
//                                          Windows equivalents)
//
// Messages read like Go's: an error of an FD operation names the operation,
// "read: i/o timeout", "write: use of closed network connection" (Go's
// OpError); OS errors name the failing call. Statuses carry no payload, so
// ToString() is just "<CODE>: <message>", fit for a log line.
//
// The predicates look at the code and at the end of the message: a caller
// may put its own context in front of a message ("conn 7: read: i/o
// timeout" is still IsDeadlineExceeded), but not after it.
#ifndef POLL_ERRORS_H_
#define POLL_ERRORS_H_

// First of all includes: a clear #error below C++20.
// clang-format off
#include "poll/require_cxx20.h"
// clang-format on

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gopoll {

// Which kind of OS handle an FD wraps. Decides error texts ("file" vs
// "network connection"), whether a 0-byte read is EOF, and which operations
// make sense (Accept, RecvFrom, ... need kNet).
enum class FdKind { kFile, kPipe, kConsole, kNet };

// "file", "pipe", "console" or "net".
std::string_view FdKindName(FdKind kind);

// "use of closed file" (kFile, kPipe, kConsole) or
// "use of closed network connection" (kNet). Code: kFailedPrecondition.
// With `op` ("read", "accept", ...): "<op>: use of closed ...".
absl::Status ErrClosing(FdKind kind, std::string_view op = {});
// "i/o timeout" ("<op>: i/o timeout"). Code: kDeadlineExceeded.
absl::Status ErrDeadlineExceeded(std::string_view op = {});
// "file type does not support deadline". Code: kFailedPrecondition.
absl::Status ErrNoDeadline();
// "not pollable". Code: kFailedPrecondition.
absl::Status ErrNotPollable();
// "EOF". Code: kOutOfRange.
absl::Status ErrEof();
// "too many concurrent operations on a single file or socket (max 1048575)".
// Code: kResourceExhausted.
absl::Status ErrTooManyRefs();

// A null buffer with a non-zero length, for operation `op` ("read", ...).
// Code: kInvalidArgument. CheckBuffer() is the check every read and write
// makes: inline, the message built only for a bad call.
absl::Status ErrNullBuffer(size_t size, std::string_view op);
inline absl::Status CheckBuffer(const void* data, size_t size,
                                std::string_view op) {
  if (ABSL_PREDICT_FALSE(data == nullptr && size > 0)) {
    return ErrNullBuffer(size, op);
  }
  return absl::OkStatus();
}

// Seek's whence is not 0, 1 or 2: InvalidArgument, carrying the code the
// OS gives for it (EINVAL; ERROR_INVALID_PARAMETER on Windows) for
// OsErrorCode, as Go's error does.
absl::Status ErrBadWhence(int whence);

// Names the operation in a closing, timeout, no-deadline, not-pollable or
// too-many-refs error that does not name one yet: "i/o timeout" becomes
// "<op>: i/o timeout". Any other status (OK, EOF, OS errors, which name
// their call already) is returned as is. FD's methods and the event loop's
// operations apply it to what they return.
absl::Status WithOp(absl::Status s, std::string_view op);
template <typename T>
absl::StatusOr<T> WithOp(absl::StatusOr<T> r, std::string_view op) {
  if (ABSL_PREDICT_TRUE(r.ok())) return r;
  return WithOp(std::move(r).status(), op);
}

// An OS error: `syscall` is the failing call ("read", "WSARecv"), `code` the
// errno (or Windows error code, see windows/win_error.h), `text` its
// description. Message: "<syscall>: <text> (os error <code>)". Status code:
// abseil's canonical code for the error (absl::ErrnoToStatusCode for an
// errno; the same mapping for the Windows codes of the same conditions),
// kUnknown for an error it has none for. ETIMEDOUT (WSAETIMEDOUT) maps to
// kDeadlineExceeded, so IsDeadlineExceeded() is true for it as well, as
// Go's Timeout() is.
absl::Status OsError(std::string_view syscall, int64_t code,
                     std::string_view text);
// An errno error; the text comes from the C library.
absl::Status ErrnoError(std::string_view syscall, int err);

bool IsClosing(const absl::Status& s);
// absl's predicate: poll reports a timeout only as ErrDeadlineExceeded, the
// one status of code kDeadlineExceeded it produces (a using-declaration, so
// unqualified calls are not ambiguous through argument-dependent lookup).
using absl::IsDeadlineExceeded;
bool IsNoDeadline(const absl::Status& s);
bool IsNotPollable(const absl::Status& s);
bool IsEof(const absl::Status& s);
bool IsTooManyRefs(const absl::Status& s);
// The OS error code of an OsError/ErrnoError status, or 0.
int64_t OsErrorCode(const absl::Status& s);
// The peer went away: an OS error ECONNRESET, EPIPE or ECONNABORTED (on
// Windows WSAECONNRESET, WSAECONNABORTED, WSAESHUTDOWN, ERROR_NETNAME_DELETED,
// ERROR_CONNECTION_ABORTED, ERROR_BROKEN_PIPE, ERROR_NO_DATA).
bool IsConnectionReset(const absl::Status& s);

}  // namespace gopoll

#endif  // POLL_ERRORS_H_
