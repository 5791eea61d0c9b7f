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
#include <cerrno>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "poll/loop/loop.h"
#include "poll/net.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "server address");
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

Task<void> OneConnection(gopoll::Loop* loop, std::string addr, int id, int size,
                         Stats* st) {
  ++st->running;
  bool good = false;
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_timeout);
  absl::StatusOr<AsyncFd> c = co_await gopoll::Dial(*loop, addr, deadline);
  if (!c.ok()) {
    std::fprintf(stderr, "connection %d: %s\n", id,
                 c.status().ToString().c_str());
  } else {
    (void)c->SetDeadline(deadline);
    const std::string out = Payload(id, size);
    absl::Status ws = (co_await c->Write(out)).status();
    if (ws.ok()) {
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
      std::fprintf(stderr, "connection %d: %s\n", id, ws.ToString().c_str());
    }
    (void)c->Close();
  }
  good ? ++st->ok : ++st->failed;
  --st->running;
}

Task<void> Driver(gopoll::Loop* loop, std::string addr, Stats* st) {
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

Task<void> IdleProbe(gopoll::Loop* loop, std::string addr, bool* closed) {
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_timeout);
  absl::StatusOr<AsyncFd> c = co_await gopoll::Dial(*loop, addr, deadline);
  if (!c.ok()) co_return;
  (void)c->SetReadDeadline(deadline);
  char b;
  absl::StatusOr<size_t> n = co_await c->Read(absl::MakeSpan(&b, 1));
  *closed = gopoll::IsEof(n.status()) || gopoll::IsConnectionReset(n.status());
  (void)c->Close();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string addr =
      absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port));
  if (absl::Status s = gopoll::SockAddr::Parse(addr).status(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 2;
  }
  // Every connection has a deadline, so every task ends.
  gopoll::Loop loop;
  if (absl::GetFlag(FLAGS_idle_probe)) {
    bool closed = false;
    loop.Spawn(IdleProbe(&loop, addr, &closed));
    loop.RunUntilDone();
    std::printf("idle connection closed by server: %s\n",
                closed ? "yes" : "no");
    return closed ? 0 : 1;
  }

  Stats st;
  const int total = absl::GetFlag(FLAGS_connections);
  loop.Spawn(Driver(&loop, addr, &st));
  loop.RunUntilDone();
  std::printf("connections: %d ok, %d failed, %lld bytes echoed and checked\n",
              st.ok, st.failed, static_cast<long long>(st.bytes));
  return st.ok == total ? 0 : 1;
}
