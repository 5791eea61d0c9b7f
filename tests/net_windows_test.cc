// SPDX-License-Identifier: BSD-3-Clause
// poll/net.h on Windows: addresses from strings and back, Listen and Dial
// (blocking and on a loop), the addresses of a connection; unix addresses
// and ShutdownSignal are Unimplemented there.
#include <winsock2.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"
#include "poll/net.h"

namespace gopoll {
namespace {

TEST(NetWindowsTest, ParsesAndPrints) {
  for (std::string_view s : {"127.0.0.1:80", "[::1]:8080", "0.0.0.0:0"}) {
    absl::StatusOr<SockAddr> a = SockAddr::Parse(s);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->ToString(), s);
  }
  EXPECT_EQ(SockAddr::Parse("localhost:1")->ToString(), "127.0.0.1:1");
  EXPECT_EQ(SockAddr::Parse("1.2.3.4").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SockAddr::Parse("unix:/x").status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(NetWindowsTest, BlockingListenDial) {
  absl::StatusOr<std::unique_ptr<FD>> ln = Listen("127.0.0.1:0");
  ASSERT_TRUE(ln.ok()) << ln.status();
  absl::StatusOr<SockAddr> at = LocalAddr(**ln);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_NE(at->ToString(), "127.0.0.1:0");
  absl::StatusOr<std::unique_ptr<FD>> c =
      Dial(at->ToString(), absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<Accepted> s = (*ln)->Accept();
  ASSERT_TRUE(s.ok()) << s.status();
  FD server(s->sysfd);
  ASSERT_TRUE(server.Init(FdKind::kNet, true).ok());
  EXPECT_EQ(PeerAddr(**c)->ToString(), at->ToString());
  EXPECT_EQ(PeerAddr(server)->ToString(), LocalAddr(**c)->ToString());
  ASSERT_TRUE((*c)->Write(std::string_view("ping")).ok());
  char buf[8];
  absl::StatusOr<size_t> n = server.Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string_view(buf, *n), "ping");
  // The port is taken.
  absl::StatusOr<std::unique_ptr<FD>> again = Listen(at->ToString());
  EXPECT_EQ(OsErrorCode(again.status()), WSAEADDRINUSE) << again.status();
}

Task<void> AcceptOne(AsyncFd ln, std::string* peer, std::string* got) {
  absl::StatusOr<AsyncFd> c = co_await ln.Accept();
  if (!c.ok()) {
    *got = c.status().ToString();
    co_return;
  }
  absl::StatusOr<SockAddr> p = c->PeerAddr();
  *peer = p.ok() ? p->ToString() : p.status().ToString();
  char buf[16];
  absl::StatusOr<size_t> n = co_await c->Read(absl::MakeSpan(buf));
  *got = n.ok() ? std::string(buf, *n) : n.status().ToString();
  (void)c->Close();
}

Task<void> DialOne(Loop* loop, std::string addr, std::string* local,
                   absl::Status* st) {
  absl::StatusOr<AsyncFd> c =
      co_await Dial(*loop, addr, absl::Now() + absl::Seconds(30));
  *st = c.status();
  if (!c.ok()) co_return;
  absl::StatusOr<SockAddr> l = c->LocalAddr();
  *local = l.ok() ? l->ToString() : l.status().ToString();
  *st = (co_await c->Write(std::string_view("hello"))).status();
  (void)c->Close();
}

Task<void> WaitSig(Loop* loop, absl::Status* out) {
  *out = (co_await ShutdownSignal(*loop)).status();
}

TEST(NetWindowsTest, LoopListenDial) {
  Loop loop;
  absl::StatusOr<AsyncFd> ln = Listen(loop, "127.0.0.1:0");
  ASSERT_TRUE(ln.ok()) << ln.status();
  absl::StatusOr<SockAddr> at = ln->LocalAddr();
  ASSERT_TRUE(at.ok()) << at.status();
  std::string peer, got, local;
  absl::Status dial, sig;
  loop.Spawn(AcceptOne(*ln, &peer, &got));
  loop.Spawn(DialOne(&loop, at->ToString(), &local, &dial));
  loop.Spawn(WaitSig(&loop, &sig));
  loop.RunUntilDone();
  EXPECT_TRUE(dial.ok()) << dial;
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(peer, local);
  EXPECT_EQ(sig.code(), absl::StatusCode::kUnimplemented) << sig;
  (void)ln->Close();
}

}  // namespace
}  // namespace gopoll
