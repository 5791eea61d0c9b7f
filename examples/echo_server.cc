// SPDX-License-Identifier: BSD-3-Clause
// A TCP echo server on one gopoll::Loop: one coroutine per connection, each
// with an idle deadline (a connection that sends nothing for --idle_timeout
// is closed).
//
//   ./bazelw run //examples:echo_server -- --port=7000
//   ./bazelw run //examples:echo_client -- --port=7000 --connections=1000
//
// --port=0 picks a free port. The server prints "listening on HOST:PORT" and
// runs until SIGINT or SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "poll/loop/loop.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "IPv4 address to listen on");
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
    absl::StatusOr<size_t> w = co_await conn.Write(absl::string_view(buf, *n));
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

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // SIGINT/SIGTERM are taken by a thread that stops the loop.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(absl::GetFlag(FLAGS_port)));
  if (inet_pton(AF_INET, absl::GetFlag(FLAGS_host).c_str(), &addr.sin_addr) !=
      1) {
    std::fprintf(stderr, "bad --host\n");
    return 2;
  }
  int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (ls < 0 ||
      ::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(ls, 4096) != 0) {
    std::perror("listen");
    return 1;
  }
  socklen_t len = sizeof(addr);
  getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &len);

  gopoll::Loop loop;
  absl::StatusOr<AsyncFd> listener = loop.Adopt(ls, gopoll::FdKind::kNet);
  if (!listener.ok()) {
    std::fprintf(stderr, "%s\n", listener.status().ToString().c_str());
    return 1;
  }
  std::printf("listening on %s:%d\n", absl::GetFlag(FLAGS_host).c_str(),
              ntohs(addr.sin_port));
  std::fflush(stdout);

  std::thread signals([&] {
    int sig;
    sigwait(&stop_signals, &sig);
    loop.Stop();
  });
  loop.Spawn(AcceptLoop(&loop, *listener, absl::GetFlag(FLAGS_idle_timeout)));
  loop.Run();
  signals.join();
  std::printf("stopped\n");
  return 0;
}
