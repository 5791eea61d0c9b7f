// SPDX-License-Identifier: BSD-3-Clause
// A UDP echo server on one gopoll::Loop: every datagram goes back to the
// address it came from, whole (up to 64 KiB, UDP's largest).
//
//   ./bazelw run //examples:udp_echo_server -- --port=7001
//
// --port=0 picks a free port. The server prints "listening on HOST:PORT" and
// runs until SIGINT or SIGTERM. poll/net.h binds the socket (ListenPacket)
// and waits for the signal.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "poll/loop/loop.h"
#include "poll/net.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 7001, "UDP port (0: any free port)");

namespace {

using gopoll::AsyncFd;
using gopoll::Task;

Task<void> Echo(AsyncFd sock) {
  std::vector<char> buf(64 << 10);
  for (;;) {
    absl::StatusOr<gopoll::RecvFromResult> got =
        co_await sock.RecvFrom(absl::MakeSpan(buf), 0);
    if (!got.ok()) {
      if (gopoll::IsClosing(got.status())) co_return;
      // E.g. ECONNREFUSED: an earlier reply reached a closed port. UDP
      // carries on with the next datagram.
      std::fprintf(stderr, "recvfrom: %s\n", got.status().ToString().c_str());
      continue;
    }
    absl::StatusOr<size_t> sent = co_await sock.SendTo(
        absl::MakeConstSpan(buf.data(), got->n), got->from, 0);
    if (!sent.ok()) {
      std::fprintf(stderr, "sendto %s: %s\n", got->from.ToString().c_str(),
                   sent.status().ToString().c_str());
    }
  }
}

// Stops the loop on SIGINT/SIGTERM.
Task<void> StopOnSignal(gopoll::Loop* loop) {
  (void)co_await gopoll::ShutdownSignal(*loop);
  loop->Stop();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  gopoll::Loop loop;
  absl::StatusOr<AsyncFd> sock = gopoll::ListenPacket(
      loop,
      absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port)));
  if (!sock.ok()) {
    std::fprintf(stderr, "%s\n", sock.status().ToString().c_str());
    return 1;
  }
  loop.Spawn(StopOnSignal(&loop));
  loop.Spawn(Echo(*sock));
  // Posted after the tasks' start: printed once the signals are taken.
  loop.Post([&] {
    std::printf("listening on %s\n", sock->LocalAddr()->ToString().c_str());
    std::fflush(stdout);
  });
  loop.Run();
  std::printf("stopped\n");
  return 0;
}
