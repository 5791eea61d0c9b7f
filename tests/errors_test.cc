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

}  // namespace
}  // namespace gopoll
