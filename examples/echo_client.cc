// SPDX-License-Identifier: BSD-3-Clause
// A load client for examples/echo_server: opens --connections connections
// (at most --concurrency at a time) on one gopoll::Loop, sends each a
// distinct payload of --bytes bytes, checks that every byte comes back, and
// exits 0 only if all did.
//
//   ./bazelw run //examples:echo_client -- --port=7000 --connections=1000
//
// --idle_probe instead opens one connection, sends nothing and waits for the
// server to close it (its idle deadline); exit 0 if it did.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "poll/loop/loop.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server IPv4 address");
ABSL_FLAG(int, port, 7000, "server TCP port");
ABSL_FLAG(int, connections, 1000, "connections to make in total");
ABSL_FLAG(int, concurrency, 100, "connections open at a time");
ABSL_FLAG(int, bytes, 4096, "payload bytes per connection");
ABSL_FLAG(bool, idle_probe, false,
          "open one silent connection and expect the server to close it");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(60), "give up after this");

namespace {

using gopoll::AsyncFd;
using gopoll::Task;

struct Stats {
  int running = 0;
  int ok = 0;
  int failed = 0;
  int64_t bytes = 0;
};

std::string Payload(int id, int size) {
  std::string p(static_cast<size_t>(size), '\0');
  for (int i = 0; i < size; ++i)
    p[i] = static_cast<char>((id * 7919 + i) % 251);
  return p;
}

Task<void> OneConnection(gopoll::Loop* loop, gopoll::SockAddr addr, int id,
                         int size, Stats* st) {
  ++st->running;
  bool good = false;
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  absl::StatusOr<AsyncFd> c = loop->Adopt(s, gopoll::FdKind::kNet);
  if (c.ok()) {
    (void)c->SetDeadline(absl::Now() + absl::GetFlag(FLAGS_timeout));
    absl::Status cs = co_await c->Connect(addr);
    const std::string out = Payload(id, size);
    absl::Status ws;
    if (cs.ok()) ws = (co_await c->Write(out)).status();
    if (cs.ok() && ws.ok()) {
      std::string in;
      char buf[16 << 10];
      while (in.size() < out.size()) {
        absl::StatusOr<size_t> n = co_await c->Read(absl::MakeSpan(buf));
        if (!n.ok()) {
          std::fprintf(stderr, "connection %d: read after %zu bytes: %s\n", id,
                       in.size(), n.status().ToString().c_str());
          break;
        }
        in.append(buf, *n);
      }
      good = in == out;
      if (good) st->bytes += static_cast<int64_t>(in.size());
    } else {
      std::fprintf(stderr, "connection %d: %s: %s\n", id,
                   cs.ok() ? "write" : "connect",
                   (cs.ok() ? ws : cs).ToString().c_str());
    }
    (void)c->Close();
  }
  good ? ++st->ok : ++st->failed;
  --st->running;
}

Task<void> Driver(gopoll::Loop* loop, gopoll::SockAddr addr, Stats* st) {
  const int total = absl::GetFlag(FLAGS_connections);
  const int limit = absl::GetFlag(FLAGS_concurrency);
  const int size = absl::GetFlag(FLAGS_bytes);
  for (int id = 0; id < total; ++id) {
    while (st->running >= limit) {
      // Let the open connections progress: yield through the loop.
      struct Yield {
        gopoll::Loop* loop;
        bool await_ready() { return false; }
        void await_suspend(std::coroutine_handle<> h) {
          loop->Post([h] { h.resume(); });
        }
        void await_resume() {}
      };
      co_await Yield{loop};
    }
    loop->Spawn(OneConnection(loop, addr, id, size, st));
  }
}

Task<void> IdleProbe(gopoll::Loop* loop, gopoll::SockAddr addr, bool* closed) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  absl::StatusOr<AsyncFd> c = loop->Adopt(s, gopoll::FdKind::kNet);
  if (!c.ok() || !(co_await c->Connect(addr)).ok()) co_return;
  (void)c->SetReadDeadline(absl::Now() + absl::GetFlag(FLAGS_timeout));
  char b;
  absl::StatusOr<size_t> n = co_await c->Read(absl::MakeSpan(&b, 1));
  *closed = gopoll::IsEof(n.status()) ||
            gopoll::OsErrorCode(n.status()) == ECONNRESET;
  (void)c->Close();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(absl::GetFlag(FLAGS_port)));
  if (inet_pton(AF_INET, absl::GetFlag(FLAGS_host).c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "bad --host\n");
    return 2;
  }
  gopoll::SockAddr addr;
  addr.Set(&a, sizeof(a));
  gopoll::Loop loop;
  const absl::Time give_up = absl::Now() + absl::GetFlag(FLAGS_timeout);

  if (absl::GetFlag(FLAGS_idle_probe)) {
    bool closed = false;
    bool done = false;
    loop.Spawn([](gopoll::Loop* l, gopoll::SockAddr a, bool* closed,
                  bool* done) -> Task<void> {
      co_await IdleProbe(l, a, closed);
      *done = true;
    }(&loop, addr, &closed, &done));
    while (!done && absl::Now() < give_up) loop.RunOnce(absl::Seconds(1));
    std::printf("idle connection closed by server: %s\n",
                closed ? "yes" : "no");
    return closed ? 0 : 1;
  }

  Stats st;
  const int total = absl::GetFlag(FLAGS_connections);
  loop.Spawn(Driver(&loop, addr, &st));
  while (st.ok + st.failed < total && absl::Now() < give_up) {
    loop.RunOnce(absl::Seconds(1));
  }
  std::printf("connections: %d ok, %d failed, %lld bytes echoed and checked\n",
              st.ok, st.failed, static_cast<long long>(st.bytes));
  return st.ok == total ? 0 : 1;
}
