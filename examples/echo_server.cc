// SPDX-License-Identifier: BSD-3-Clause
// A TCP echo server on one gopoll::Loop: one coroutine per connection, each
// with an idle deadline (a connection that sends nothing for --idle_timeout
// is closed).
//
//   ./bazelw run //examples:echo_server -- --port=7000
//   ./bazelw run //examples:echo_client -- --port=7000 --connections=1000
//
// --port=0 picks a free port. The server prints "listening on HOST:PORT" and
// runs until SIGINT or SIGTERM. No socket plumbing: poll/net.h listens,
// names the addresses and waits for the signal.
#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "poll/loop/loop.h"
#include "poll/net.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 7000, "TCP port (0: any free port)");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(30),
          "close a connection idle for this long (inf: never)");

namespace {

using gopoll::AsyncFd;
using gopoll::Task;

Task<void> Serve(AsyncFd conn, absl::Duration idle) {
  char buf[16 << 10];
  for (;;) {
    if (idle != absl::InfiniteDuration() &&
        !conn.SetReadDeadline(absl::Now() + idle).ok()) {
      break;
    }
    absl::StatusOr<size_t> n = co_await conn.Read(absl::MakeSpan(buf));
    if (!n.ok()) break;  // EOF, idle deadline, reset, ...
    absl::StatusOr<size_t> w =
        co_await conn.Write(absl::MakeConstSpan(buf, *n));
    if (!w.ok()) break;
  }
  (void)conn.Close();
}

Task<void> AcceptLoop(gopoll::Loop* loop, AsyncFd listener,
                      absl::Duration idle) {
  // After a failed accept (e.g. EMFILE at the descriptor limit: the pending
  // connection stays queued, so retrying at once would spin), wait before
  // the next one: 5 ms, doubling up to 1 s, like Go's net/http server.
  absl::Duration backoff;
  for (;;) {
    absl::StatusOr<AsyncFd> conn = co_await listener.Accept();
    if (!conn.ok()) {
      if (gopoll::IsClosing(conn.status())) co_return;
      backoff = backoff == absl::ZeroDuration()
                    ? absl::Milliseconds(5)
                    : std::min(2 * backoff, absl::Seconds(1));
      std::fprintf(stderr, "accept: %s; retrying in %s\n",
                   conn.status().ToString().c_str(),
                   absl::FormatDuration(backoff).c_str());
      co_await loop->Sleep(backoff);  // the other connections keep running
      continue;
    }
    backoff = absl::ZeroDuration();
    loop->Spawn(Serve(*conn, idle));
  }
}

// Stops the loop on SIGINT/SIGTERM (open connections are dropped with it).
Task<void> StopOnSignal(gopoll::Loop* loop) {
  (void)co_await gopoll::ShutdownSignal(*loop);
  loop->Stop();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  gopoll::Loop loop;
  absl::StatusOr<AsyncFd> listener = gopoll::Listen(
      loop,
      absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port)));
  if (!listener.ok()) {
    std::fprintf(stderr, "%s\n", listener.status().ToString().c_str());
    return 1;
  }
  loop.Spawn(StopOnSignal(&loop));
  loop.Spawn(AcceptLoop(&loop, *listener, absl::GetFlag(FLAGS_idle_timeout)));
  // Posted after the tasks' start: printed once the signals are taken.
  loop.Post([&] {
    std::printf("listening on %s\n", listener->LocalAddr()->ToString().c_str());
    std::fflush(stdout);
  });
  loop.Run();
  std::printf("stopped\n");
  return 0;
}
