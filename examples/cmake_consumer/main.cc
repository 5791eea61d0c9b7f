// SPDX-License-Identifier: BSD-3-Clause
// A program built against an installed poll (find_package(gopoll)): a read
// with a deadline on a blocking FD, then an echo through an event loop with
// a coroutine. Exits 0 when everything behaved as documented.
#include <sys/socket.h>

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
  std::printf("OK\n");
  return 0;
}
