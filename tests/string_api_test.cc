// SPDX-License-Identifier: BSD-3-Clause
// The public API takes std::string_view wherever it takes a string (one API
// whatever the abseil: Debian's absl::string_view is its own class), and
// every write refuses a byte array (a string literal would send its NUL).
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"

namespace gopoll {
namespace {

// A write of a string literal does not compile; of a string_view it does.
template <typename T>
concept WritesLiteral = requires(T& t) {
  t.Write("x");
};
template <typename T>
concept AsyncWritesLiteral = requires(T& t) {
  t.AsyncWrite("x", nullptr);
};
template <typename T>
concept WritesView = requires(T& t) {
  t.Write(std::string_view("x"));
};

static_assert(!WritesLiteral<FD>);
static_assert(!WritesLiteral<const AsyncFd>);
static_assert(!AsyncWritesLiteral<const AsyncFd>);
static_assert(WritesView<FD>);
static_assert(WritesView<const AsyncFd>);

TEST(StringApiTest, EveryStringParameterTakesStdStringView) {
  const std::string op_text = "read";
  const std::string_view op = op_text;  // not a literal, not absl's type
  EXPECT_EQ(WithOp(ErrDeadlineExceeded(), op).message(), "read: i/o timeout");
  EXPECT_EQ(WithOp(absl::StatusOr<int>(ErrEof()), op).status().message(),
            "EOF");
  EXPECT_EQ(ErrClosing(FdKind::kNet, op).message(),
            "read: use of closed network connection");
  EXPECT_EQ(ErrDeadlineExceeded(op).message(), "read: i/o timeout");
  EXPECT_EQ(ErrNullBuffer(3, op).message(), "read: null buffer with length 3");
  EXPECT_TRUE(CheckBuffer(nullptr, 0, op).ok());
  EXPECT_EQ(OsErrorCode(OsError(op, 5, std::string_view("text"))), 5);
  EXPECT_EQ(OsErrorCode(ErrnoError(op, 5)), 5);
  std::string_view kind = FdKindName(FdKind::kPipe);
  EXPECT_EQ(kind, "pipe");
}

}  // namespace
}  // namespace gopoll
