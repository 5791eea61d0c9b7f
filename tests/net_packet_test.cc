// SPDX-License-Identifier: BSD-3-Clause
// poll/net.h's ListenPacket: bound datagram sockets (UDP over IPv4 and IPv6,
// unix datagram sockets) as blocking FDs and on a loop (both Linux loop
// backends), serving any peer with RecvFrom/SendTo; bad addresses and a
// port in use give a clear status and leak nothing.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"
#include "poll/net.h"
#include "tests/loop_test_util.h"
#include "tests/posix_test_util.h"

namespace gopoll {
namespace {

using ::gopoll::testing::FdLeakTest;

bool SameAddr(const SockAddr& a, const SockAddr& b) {
  return a.len == b.len && std::memcmp(a.storage, b.storage, a.len) == 0;
}

class NetPacketTest : public FdLeakTest {};

// Two blocking sockets: each datagram arrives whole, with its sender.
void ExpectRoundTrip(const std::string& a_addr, const std::string& b_addr) {
  absl::StatusOr<std::unique_ptr<FD>> a = ListenPacket(a_addr);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::unique_ptr<FD>> b = ListenPacket(b_addr);
  ASSERT_TRUE(b.ok()) << b.status();
  absl::StatusOr<SockAddr> at_a = LocalAddr(**a);
  absl::StatusOr<SockAddr> at_b = LocalAddr(**b);
  ASSERT_TRUE(at_a.ok() && at_b.ok());
  ASSERT_TRUE((*a)->SetDeadline(absl::Now() + absl::Seconds(20)).ok());
  ASSERT_TRUE((*b)->SetDeadline(absl::Now() + absl::Seconds(20)).ok());
  absl::StatusOr<size_t> w = (*a)->SendTo(std::string_view("ping"), *at_b, 0);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(*w, 4u);
  char buf[16];
  absl::StatusOr<RecvFromResult> r = (*b)->RecvFrom(absl::MakeSpan(buf), 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::string(buf, r->n), "ping");
  EXPECT_TRUE(SameAddr(r->from, *at_a)) << r->from.ToString();
  // A zero-byte datagram is a datagram.
  w = (*b)->SendTo(std::string_view(), r->from, 0);
  ASSERT_TRUE(w.ok()) << w.status();
  r = (*a)->RecvFrom(absl::MakeSpan(buf), 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->n, 0u);
  EXPECT_TRUE((*a)->Close().ok());
  EXPECT_TRUE((*b)->Close().ok());
}

TEST_F(NetPacketTest, UdpIPv4) {
  ExpectRoundTrip("127.0.0.1:0", "127.0.0.1:0");
}

TEST_F(NetPacketTest, UdpIPv6) {
  // (A machine without IPv6 on loopback cannot bind [::1].)
  absl::StatusOr<std::unique_ptr<FD>> probe = ListenPacket("[::1]:0");
  if (!probe.ok() && absl::IsUnavailable(probe.status())) {
    GTEST_SKIP() << "no IPv6 loopback here: " << probe.status();
  }
  ASSERT_TRUE(probe.ok()) << probe.status();
  ASSERT_TRUE((*probe)->Close().ok());
  ExpectRoundTrip("[::1]:0", "[::1]:0");
}

TEST_F(NetPacketTest, UnixDatagram) {
  // (Short: a unix socket path has at most 107 bytes; the test's temporary
  // directory can be longer.)
  char dir[] = "/tmp/gopoll_pkt_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string a = absl::StrCat(dir, "/a");
  const std::string b = absl::StrCat(dir, "/b");
  ExpectRoundTrip("unix:" + a, "unix:" + b);
  ::unlink(a.c_str());
  ::unlink(b.c_str());
  ::rmdir(dir);
}

TEST_F(NetPacketTest, BadAddressAndPortInUse) {
  absl::StatusOr<std::unique_ptr<FD>> bad = ListenPacket("no port");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  absl::StatusOr<std::unique_ptr<FD>> a = ListenPacket("127.0.0.1:0");
  ASSERT_TRUE(a.ok()) << a.status();
  const std::string at = LocalAddr(**a)->ToString();
  absl::StatusOr<std::unique_ptr<FD>> again = ListenPacket(at);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(OsErrorCode(again.status()), EADDRINUSE) << again.status();
  EXPECT_TRUE(absl::StrContains(again.status().message(),
                                absl::StrCat("listen ", at, ": bind")))
      << again.status();
  Loop loop;
  absl::StatusOr<AsyncFd> on_loop = ListenPacket(loop, at);
  ASSERT_FALSE(on_loop.ok());
  EXPECT_EQ(OsErrorCode(on_loop.status()), EADDRINUSE) << on_loop.status();
  EXPECT_TRUE(absl::IsInvalidArgument(ListenPacket(loop, "x").status()));
  EXPECT_TRUE((*a)->Close().ok());
}

// A loop's datagram socket echoes to whoever sent (a plain socket here),
// in both forms.
Task<void> EchoOnce(AsyncFd s, bool* done) {
  char buf[2048];
  absl::StatusOr<RecvFromResult> r =
      co_await s.RecvFrom(absl::MakeSpan(buf), 0);
  EXPECT_TRUE(r.ok()) << r.status();
  if (r.ok()) {
    absl::StatusOr<size_t> w =
        co_await s.SendTo(absl::MakeConstSpan(buf, r->n), r->from, 0);
    EXPECT_TRUE(w.ok()) << w.status();
  }
  *done = true;
}

TEST_F(NetPacketTest, LoopEchoesToTheSender) {
  Loop loop;
  absl::StatusOr<AsyncFd> srv = ListenPacket(loop, "127.0.0.1:0");
  ASSERT_TRUE(srv.ok()) << srv.status();
  absl::StatusOr<SockAddr> at = srv->LocalAddr();
  ASSERT_TRUE(at.ok()) << at.status();
  const int c = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(c, 0);
  for (bool coroutine : {true, false}) {
    bool done = false;
    if (coroutine) {
      loop.Spawn(EchoOnce(*srv, &done));
    } else {
      static char buf[2048];
      AsyncFd s = *srv;
      s.AsyncRecvFrom(absl::MakeSpan(buf), 0,
                      [s, &done](absl::StatusOr<RecvFromResult> r) {
                        ASSERT_TRUE(r.ok()) << r.status();
                        s.AsyncSendTo(absl::MakeConstSpan(buf, r->n), r->from,
                                      0, [&done](absl::StatusOr<size_t> w) {
                                        EXPECT_TRUE(w.ok()) << w.status();
                                        done = true;
                                      });
                      });
    }
    loop.RunOnce(absl::ZeroDuration());
    const std::string msg = coroutine ? "coroutine" : "callback";
    ASSERT_EQ(::sendto(c, msg.data(), msg.size(), 0, at->get(), at->len),
              static_cast<ssize_t>(msg.size()));
    testing::RunLoopUntil(loop, [&] { return done; });
    char got[64];
    const ssize_t n = ::recv(c, got, sizeof(got), 0);
    ASSERT_EQ(n, static_cast<ssize_t>(msg.size()));
    EXPECT_EQ(std::string(got, n), msg);
  }
  ::close(c);
  EXPECT_TRUE(srv->Close().ok());
}

}  // namespace
}  // namespace gopoll
