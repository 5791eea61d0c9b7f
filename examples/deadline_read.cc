// SPDX-License-Identifier: BSD-3-Clause
// Wrap a socket in gopoll::FD, read with a deadline, and close it from another
// thread while a read is blocked. Run: ./bazelw run //examples:deadline_read
//
// This is the pattern an embedding networking stack uses: the FD owns the
// descriptor; deadlines bound each read; Close() from any thread ends every
// pending operation with IsClosing and releases the descriptor only after
// the last operation has returned.
#include <sys/socket.h>

#include <cstdio>
#include <string_view>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "poll/fd.h"

int main() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    std::perror("socketpair");
    return 1;
  }
  gopoll::FD conn(sv[0]);  // takes ownership of the descriptors
  gopoll::FD peer(sv[1]);
  if (absl::Status s = conn.Init(gopoll::FdKind::kNet, /*pollable=*/true);
      !s.ok()) {
    std::fprintf(stderr, "init: %s\n", s.ToString().c_str());
    return 1;
  }
  if (absl::Status s = peer.Init(gopoll::FdKind::kNet, true); !s.ok()) {
    std::fprintf(stderr, "init: %s\n", s.ToString().c_str());
    return 1;
  }

  char buf[64];

  // 1. Nothing arrives within 50 ms: the read fails with a timeout.
  conn.SetReadDeadline(absl::Now() + absl::Milliseconds(50)).IgnoreError();
  absl::StatusOr<size_t> n = conn.Read(absl::MakeSpan(buf));
  std::printf("read with 50ms deadline: %s (timeout: %s)\n",
              n.status().ToString().c_str(),
              gopoll::IsDeadlineExceeded(n.status()) ? "yes" : "no");

  // 2. Extend the deadline and let the peer write: the same FD works again.
  conn.SetReadDeadline(absl::Now() + absl::Seconds(5)).IgnoreError();
  peer.Write(std::string_view("hello")).IgnoreError();
  n = conn.Read(absl::MakeSpan(buf));
  if (n.ok()) {
    std::printf("read: \"%.*s\"\n", static_cast<int>(*n), buf);
  }

  // 3. A read blocks with no deadline; another thread closes the FD.
  conn.SetReadDeadline(absl::InfiniteFuture()).IgnoreError();
  std::thread closer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    conn.Close().IgnoreError();
  });
  n = conn.Read(absl::MakeSpan(buf));
  closer.join();
  std::printf("blocked read after Close: %s (closing: %s)\n",
              n.status().ToString().c_str(),
              gopoll::IsClosing(n.status()) ? "yes" : "no");
  return gopoll::IsClosing(n.status()) ? 0 : 1;
}
