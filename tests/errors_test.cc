// SPDX-License-Identifier: BSD-3-Clause
// poll's errors: messages name the operation (Go's OpError), carry no
// payload in ToString(), and the predicates survive a caller's prefix.
#include "poll/errors.h"

#include <cerrno>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace gopoll {
namespace {

TEST(ErrorsTest, WithOpNamesTheOperationOnce) {
  absl::Status s = WithOp(ErrDeadlineExceeded(), "read");
  EXPECT_EQ(s.ToString(), "DEADLINE_EXCEEDED: read: i/o timeout");
  EXPECT_TRUE(IsDeadlineExceeded(s));
  // Inner layers name the operation first; outer layers leave it alone.
  EXPECT_EQ(WithOp(s, "write").message(), "read: i/o timeout");
  EXPECT_EQ(ErrDeadlineExceeded("accept").message(), "accept: i/o timeout");

  absl::Status c = WithOp(ErrClosing(FdKind::kNet), "write");
  EXPECT_EQ(c.ToString(),
            "FAILED_PRECONDITION: write: use of closed network connection");
  EXPECT_TRUE(IsClosing(c));
  EXPECT_TRUE(IsClosing(ErrClosing(FdKind::kPipe, "read")));
  EXPECT_EQ(ErrClosing(FdKind::kFile, "read").message(),
            "read: use of closed file");
  EXPECT_TRUE(IsNoDeadline(WithOp(ErrNoDeadline(), "setdeadline")));
  EXPECT_TRUE(IsNotPollable(WithOp(ErrNotPollable(), "rawread")));
  EXPECT_TRUE(IsTooManyRefs(WithOp(ErrTooManyRefs(), "read")));
}

TEST(ErrorsTest, WithOpLeavesOtherStatusesAlone) {
  EXPECT_TRUE(WithOp(absl::OkStatus(), "read").ok());
  // EOF stays bare, as Go's io.EOF.
  EXPECT_EQ(WithOp(ErrEof(), "read").message(), "EOF");
  EXPECT_TRUE(IsEof(WithOp(ErrEof(), "read")));
  absl::Status os = ErrnoError("recvmsg", ECONNRESET);
  EXPECT_EQ(WithOp(os, "read"), os);
  absl::Status other = absl::InvalidArgumentError("i/o timeout");
  EXPECT_EQ(WithOp(other, "read"), other);
  absl::StatusOr<int> r = WithOp(absl::StatusOr<int>(7), "read");
  EXPECT_EQ(*r, 7);
  r = WithOp(absl::StatusOr<int>(ErrDeadlineExceeded()), "read");
  EXPECT_EQ(r.status().message(), "read: i/o timeout");
}

TEST(ErrorsTest, NoPayloadInToString) {
  for (const absl::Status& s :
       {ErrClosing(FdKind::kNet, "read"), ErrDeadlineExceeded("read"),
        ErrNoDeadline(), ErrNotPollable(), ErrEof(), ErrTooManyRefs(),
        ErrnoError("read", EBADF)}) {
    EXPECT_EQ(s.ToString(), absl::StrCat(absl::StatusCodeToString(s.code()),
                                         ": ", s.message()));
  }
}

TEST(ErrorsTest, PredicatesSurviveACallersPrefix) {
  auto wrap = [](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("conn 7: ", s.message()));
  };
  EXPECT_TRUE(IsClosing(wrap(ErrClosing(FdKind::kNet, "read"))));
  EXPECT_TRUE(IsEof(wrap(ErrEof())));
  EXPECT_TRUE(IsNoDeadline(wrap(ErrNoDeadline())));
  EXPECT_EQ(OsErrorCode(wrap(ErrnoError("read", EBADF))), EBADF);
  // The same text with another code, or inside another word, is not it.
  EXPECT_FALSE(IsClosing(absl::InternalError("use of closed file")));
  EXPECT_FALSE(IsEof(absl::OutOfRangeError("NOTEOF")));
  EXPECT_FALSE(IsEof(absl::OutOfRangeError("x:EOF")));
}

TEST(ErrorsTest, OsErrorCode) {
  absl::Status s = ErrnoError("connect", ECONNREFUSED);
  EXPECT_EQ(OsErrorCode(s), ECONNREFUSED);
  EXPECT_EQ(
      s.message(),
      absl::StrCat("connect: ", std::generic_category().message(ECONNREFUSED),
                   " (os error ", ECONNREFUSED, ")"));
  EXPECT_EQ(OsErrorCode(OsError("WSARecv", 10054, "reset")), 10054);
  EXPECT_EQ(OsErrorCode(absl::OkStatus()), 0);
  EXPECT_EQ(OsErrorCode(ErrDeadlineExceeded("read")), 0);
  EXPECT_EQ(OsErrorCode(absl::UnknownError("x (os error y)")), 0);
}

TEST(ErrorsTest, OsErrorsCarryTheCanonicalCode) {
  // The errno's canonical code; message and OsErrorCode unchanged.
  absl::Status reset = ErrnoError("write", ECONNRESET);
  EXPECT_EQ(reset.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(reset.code(), absl::ErrnoToStatusCode(ECONNRESET));
  EXPECT_EQ(reset.message(),
            absl::StrCat("write: ", std::generic_category().message(ECONNRESET),
                         " (os error ", ECONNRESET, ")"));
  EXPECT_EQ(OsErrorCode(reset), ECONNRESET);
  EXPECT_EQ(ErrnoError("open", ENOENT).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoError("open", EACCES).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoError("read", EBADF).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrnoError("read", EINVAL).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OsErrorCode(ErrnoError("open", ENOENT)), ENOENT);
  EXPECT_EQ(OsErrorCode(ErrnoError("read", EBADF)), EBADF);
  // An OS timeout is a timeout too (Go's Timeout() is true for it).
  EXPECT_TRUE(IsDeadlineExceeded(ErrnoError("connect", ETIMEDOUT)));
  // None of poll's own predicates takes an OS error for its condition.
  for (int e : {EBADF, EPIPE, ENOTCONN, EINVAL, ECONNRESET}) {
    absl::Status s = ErrnoError("read", e);
    EXPECT_FALSE(IsClosing(s)) << s;
    EXPECT_FALSE(IsEof(s)) << s;
    EXPECT_FALSE(IsNoDeadline(s)) << s;
    EXPECT_FALSE(IsNotPollable(s)) << s;
    EXPECT_EQ(WithOp(s, "write"), s);
  }
  // An error code with no errno equivalent stays kUnknown.
  EXPECT_EQ(ErrnoError("read", 0).code(), absl::StatusCode::kUnknown);
#ifdef _WIN32
  EXPECT_EQ(OsError("WSARecv", 10054, "reset").code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(OsError("CreateFileW", 2, "not found").code(),
            absl::StatusCode::kNotFound);
#else
  EXPECT_EQ(OsError("recvmsg", ECONNRESET, "reset").code(),
            absl::StatusCode::kUnavailable);
#endif
  EXPECT_EQ(OsError("x", 987654321, "odd").code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(OsErrorCode(OsError("x", 987654321, "odd")), 987654321);
}

TEST(ErrorsTest, IsConnectionReset) {
#ifdef _WIN32
  for (int64_t c : {10054, 10053, 10058, 64, 1236, 109, 232}) {
    EXPECT_TRUE(IsConnectionReset(OsError("WSASend", c, "gone"))) << c;
  }
  EXPECT_FALSE(IsConnectionReset(OsError("WSASend", 10061, "refused")));
#else
  for (int e : {ECONNRESET, EPIPE, ECONNABORTED}) {
    EXPECT_TRUE(IsConnectionReset(ErrnoError("write", e))) << e;
    // A caller's context in front keeps it.
    absl::Status s = ErrnoError("write", e);
    EXPECT_TRUE(IsConnectionReset(
        absl::Status(s.code(), absl::StrCat("conn 7: ", s.message()))));
  }
  EXPECT_FALSE(IsConnectionReset(ErrnoError("connect", ECONNREFUSED)));
  EXPECT_FALSE(IsConnectionReset(ErrnoError("read", EBADF)));
#endif
  EXPECT_FALSE(IsConnectionReset(absl::OkStatus()));
  EXPECT_FALSE(IsConnectionReset(ErrEof()));
  EXPECT_FALSE(IsConnectionReset(ErrClosing(FdKind::kNet, "write")));
  EXPECT_FALSE(IsConnectionReset(ErrDeadlineExceeded("write")));
}

}  // namespace
}  // namespace gopoll
