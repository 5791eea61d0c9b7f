// SPDX-License-Identifier: BSD-3-Clause
// A program built against an installed poll (find_package(gopoll)): a read
// with a deadline on a blocking FD, an echo through an event loop with a
// coroutine, and every public function taking a string called with a
// std::string_view. Exits 0 when everything behaved as documented.
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"
#include "poll/version.h"

namespace {

int Fail(const char* what, const absl::Status& s) {
  std::fprintf(stderr, "FAIL %s: %s\n", what, s.ToString().c_str());
  return 1;
}

// Reads one message on the loop and writes it back.
gopoll::Task<void> EchoOnce(gopoll::AsyncFd conn, gopoll::Loop* loop,
                            absl::Status* result) {
  char buf[64];
  absl::StatusOr<size_t> n = co_await conn.Read(absl::MakeSpan(buf));
  if (!n.ok()) {
    *result = n.status();
  } else {
    *result = (co_await conn.Write(absl::string_view(buf, *n))).status();
  }
  (void)conn.Close();
  loop->Stop();
}

}  // namespace

int main() {
  std::printf("poll %s\n", gopoll::LibraryVersionString());

  // 1. A blocking FD: a read with a deadline times out, Go's way.
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    std::perror("socketpair");
    return 1;
  }
  gopoll::FD client(sv[0]);
  if (absl::Status s = client.Init(gopoll::FdKind::kNet, true); !s.ok()) {
    return Fail("init", s);
  }
  (void)client.SetReadDeadline(absl::Now() + absl::Milliseconds(20));
  char buf[64];
  absl::StatusOr<size_t> n = client.Read(absl::MakeSpan(buf));
  if (!gopoll::IsDeadlineExceeded(n.status())) {
    return Fail("deadline", n.status());
  }
  std::printf("timed out: %s\n", std::string(n.status().message()).c_str());
  (void)client.SetReadDeadline(absl::InfiniteFuture());

  // 2. The other end on an event loop: echo one message.
  gopoll::Loop loop;
  absl::StatusOr<gopoll::AsyncFd> server =
      loop.Adopt(sv[1], gopoll::FdKind::kNet);
  if (!server.ok()) return Fail("adopt", server.status());
  absl::Status echo = absl::UnknownError("not run");
  loop.Spawn(EchoOnce(*server, &loop, &echo));
  if (absl::StatusOr<size_t> w = client.Write(std::string_view("ping"));
      !w.ok()) {
    return Fail("write", w.status());
  }
  loop.Run();
  if (!echo.ok()) return Fail("echo", echo);
  n = client.Read(absl::MakeSpan(buf));
  if (!n.ok()) return Fail("read", n.status());
  std::string got(buf, *n);
  std::printf("echoed: %s\n", got.c_str());
  if (got != "ping") return 1;

  // 3. Every public function taking a string takes a std::string_view,
  // whatever the abseil poll was built against (Debian's has its own
  // absl::string_view class).
  const std::string op_text = "read";
  const std::string_view op = op_text;
  absl::Status timeout = gopoll::WithOp(gopoll::ErrDeadlineExceeded(), op);
  absl::StatusOr<int> eof =
      gopoll::WithOp(absl::StatusOr<int>(gopoll::ErrEof()), op);
  if (timeout.message() != "read: i/o timeout" ||
      !gopoll::IsEof(eof.status()) ||
      !gopoll::IsClosing(gopoll::ErrClosing(gopoll::FdKind::kNet, op)) ||
      !gopoll::IsDeadlineExceeded(gopoll::ErrDeadlineExceeded(op)) ||
      gopoll::ErrNullBuffer(1, op).ok() ||
      !gopoll::CheckBuffer(nullptr, 0, op).ok() ||
      !gopoll::IsConnectionReset(gopoll::ErrnoError(op, ECONNRESET)) ||
      gopoll::OsErrorCode(gopoll::OsError(op, 5, op)) != 5 ||
      gopoll::FdKindName(gopoll::FdKind::kNet) != std::string_view("net")) {
    return Fail("string_view API", timeout);
  }
  std::printf("%s\n", gopoll::ErrnoError(op, ECONNRESET).ToString().c_str());
  std::printf("OK\n");
  return 0;
}
