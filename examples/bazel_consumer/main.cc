// SPDX-License-Identifier: BSD-3-Clause
// An application built against poll from another Bazel workspace: a read
// with a deadline, then a blocked read ended by Close from another thread.
// Exits 0 when both behaved as documented.
#include <sys/socket.h>

#include <cstdio>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/version.h"

int main() {
  std::printf("poll %s\n", gopoll::LibraryVersionString());
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    std::perror("socketpair");
    return 1;
  }
  gopoll::FD conn(sv[0]);  // owns the descriptor from here on
  gopoll::FD peer(sv[1]);
  if (absl::Status s = conn.Init(gopoll::FdKind::kNet, /*pollable=*/true);
      !s.ok()) {
    std::fprintf(stderr, "init: %s\n", s.ToString().c_str());
    return 1;
  }

  char buf[64];
  (void)conn.SetReadDeadline(absl::Now() + absl::Milliseconds(20));
  absl::StatusOr<size_t> n = conn.Read(absl::MakeSpan(buf));
  std::printf("read with a deadline: %s\n", n.status().ToString().c_str());
  if (!gopoll::IsDeadlineExceeded(n.status())) return 1;

  (void)conn.SetReadDeadline(absl::InfiniteFuture());
  std::thread closer([&] {
    absl::SleepFor(absl::Milliseconds(20));
    (void)conn.Close();
  });
  n = conn.Read(absl::MakeSpan(buf));
  closer.join();
  std::printf("blocked read, then Close: %s\n", n.status().ToString().c_str());
  if (!gopoll::IsClosing(n.status())) return 1;
  std::printf("OK\n");
  return 0;
}
