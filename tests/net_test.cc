// SPDX-License-Identifier: BSD-3-Clause
// poll/net.h: addresses from strings and back, Listen and Dial (blocking
// and on a loop, TCP and unix sockets), the addresses of a connection,
// ShutdownSignal, and Loop::RunUntilDone. Runs on both Linux loop backends.
#include "poll/net.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"
#include "tests/loop_test_util.h"

namespace gopoll {
namespace {

std::string RoundTrip(std::string_view s) {
  absl::StatusOr<SockAddr> a = SockAddr::Parse(s);
  if (!a.ok()) return std::string(a.status().ToString());
  return a->ToString();
}

TEST(SockAddrTest, ParsesAndPrintsEveryForm) {
  EXPECT_EQ(RoundTrip("127.0.0.1:80"), "127.0.0.1:80");
  EXPECT_EQ(RoundTrip("[::1]:8080"), "[::1]:8080");
  EXPECT_EQ(RoundTrip("[2001:db8::5]:0"), "[2001:db8::5]:0");
  EXPECT_EQ(RoundTrip(":443"), "0.0.0.0:443");
  EXPECT_EQ(RoundTrip("localhost:7"), "127.0.0.1:7");
  EXPECT_EQ(RoundTrip("10.1.2.3:65535"), "10.1.2.3:65535");
  EXPECT_EQ(RoundTrip("unix:/tmp/s.sock"), "unix:/tmp/s.sock");
  absl::StatusOr<SockAddr> a = SockAddr::Parse("127.0.0.1:80");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->get()->sa_family, AF_INET);
  EXPECT_EQ(SockAddr().ToString(), "");
}

TEST(SockAddrTest, BadAddressesAreInvalidArgumentNamingThem) {
  for (const char* bad_text :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1:+1", "127.0.0.1:8x", "127.0.0.1:000080", "example.com:80",
        "::1:80", "[::1]80", "[::1:80", "[]:80", "[127.0.0.1]:80",
        "300.1.1.1:80", "unix:", "[::1]:"}) {
    const std::string bad = bad_text;
    absl::StatusOr<SockAddr> a = SockAddr::Parse(bad);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(
        absl::StrContains(a.status().message(), absl::StrCat("\"", bad, "\"")))
        << a.status();
  }
  std::string long_path = "unix:/" + std::string(200, 'x');
  EXPECT_EQ(SockAddr::Parse(long_path).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SockAddr::Parse(std::string_view("unix:/a\0b", 9)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A fresh unix socket path in a new directory under /tmp (the test's own
// temporary directory is too deep for sun_path's 107 bytes).
std::string UnixPath(const std::string& name) {
  char dir[] = "/tmp/poll_net_XXXXXX";
  if (::mkdtemp(dir) == nullptr) return "/nonexistent/mkdtemp-failed";
  return absl::StrCat(dir, "/", name);
}

void RemoveUnixPath(const std::string& path) {
  ::unlink(path.c_str());
  ::rmdir(path.substr(0, path.rfind('/')).c_str());
}

void BlockingEcho(const std::string& where) {
  absl::StatusOr<std::unique_ptr<FD>> ln = Listen(where);
  ASSERT_TRUE(ln.ok()) << ln.status();
  absl::StatusOr<SockAddr> at = LocalAddr(**ln);
  ASSERT_TRUE(at.ok()) << at.status();
  if (!absl::StartsWith(where, "unix:")) {
    EXPECT_FALSE(absl::EndsWith(at->ToString(), ":0")) << at->ToString();
  } else {
    EXPECT_EQ(at->ToString(), where);
  }
  absl::StatusOr<std::unique_ptr<FD>> c =
      Dial(at->ToString(), absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<Accepted> s = (*ln)->Accept();
  ASSERT_TRUE(s.ok()) << s.status();
  FD server(s->sysfd);
  ASSERT_TRUE(server.Init(FdKind::kNet, true).ok());
  // Both ends agree on the connection's addresses.
  absl::StatusOr<SockAddr> peer = PeerAddr(**c);
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->ToString(), at->ToString());
  absl::StatusOr<SockAddr> mine = LocalAddr(**c);
  absl::StatusOr<SockAddr> theirs = PeerAddr(server);
  ASSERT_TRUE(mine.ok() && theirs.ok());
  EXPECT_EQ(mine->ToString(), theirs->ToString());
  EXPECT_EQ(s->peer.ToString(), theirs->ToString());
  ASSERT_TRUE((*c)->Write(std::string_view("ping")).ok());
  char buf[8];
  absl::StatusOr<size_t> n = server.Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string_view(buf, *n), "ping");
}

TEST(NetTest, BlockingListenDialTcpAndUnix) {
  BlockingEcho("127.0.0.1:0");
  BlockingEcho("[::1]:0");
  const std::string path = UnixPath("blocking");
  BlockingEcho("unix:" + path);
  RemoveUnixPath(path);
}

TEST(NetTest, ErrorsNameTheAddressAndKeepTheOsError) {
  absl::StatusOr<std::unique_ptr<FD>> ln = Listen("127.0.0.1:0");
  ASSERT_TRUE(ln.ok()) << ln.status();
  const std::string at = LocalAddr(**ln)->ToString();
  // The port is taken.
  absl::StatusOr<std::unique_ptr<FD>> again = Listen(at);
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(absl::StartsWith(again.status().message(),
                               absl::StrCat("listen ", at, ": bind: ")))
      << again.status();
  EXPECT_EQ(OsErrorCode(again.status()), EADDRINUSE);
  EXPECT_EQ(again.status().code(), absl::ErrnoToStatusCode(EADDRINUSE));
  // Nobody listens any more.
  ASSERT_TRUE((*ln)->Close().ok());
  absl::StatusOr<std::unique_ptr<FD>> refused = Dial(at);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(OsErrorCode(refused.status()), ECONNREFUSED) << refused.status();
  EXPECT_TRUE(absl::StartsWith(refused.status().message(),
                               absl::StrCat("dial ", at, ": ")))
      << refused.status();
  // Bad input: the parser's error, nothing opened.
  EXPECT_EQ(Listen("nope").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Dial("nope").status().code(), absl::StatusCode::kInvalidArgument);
  // A unix path in a directory that does not exist.
  absl::StatusOr<std::unique_ptr<FD>> nodir = Listen("unix:/nonexistent/d/s");
  EXPECT_EQ(OsErrorCode(nodir.status()), ENOENT) << nodir.status();
  EXPECT_EQ(nodir.status().code(), absl::StatusCode::kNotFound);
}

Task<void> AcceptOne(AsyncFd ln, std::string* peer, std::string* got) {
  SockAddr from;
  absl::StatusOr<AsyncFd> c = co_await ln.Accept(&from);
  if (!c.ok()) {
    *got = c.status().ToString();
    co_return;
  }
  // Accept's address is the one getpeername reports.
  absl::StatusOr<SockAddr> p = c->PeerAddr();
  *peer = from.ToString();
  if (!p.ok() || p->ToString() != *peer) {
    *peer = absl::StrCat("Accept: ", *peer, ", PeerAddr: ",
                         p.ok() ? p->ToString() : p.status().ToString());
  }
  char buf[16];
  absl::StatusOr<size_t> n = co_await c->Read(absl::MakeSpan(buf));
  *got = n.ok() ? std::string(buf, *n) : n.status().ToString();
  if (n.ok()) (void)co_await c->Write(absl::MakeConstSpan(buf, *n));
  (void)c->Close();
}

Task<void> DialOne(Loop* loop, std::string addr, std::string* local,
                   std::string* echoed) {
  absl::StatusOr<AsyncFd> c =
      co_await Dial(*loop, addr, absl::Now() + absl::Seconds(30));
  if (!c.ok()) {
    *echoed = c.status().ToString();
    co_return;
  }
  absl::StatusOr<SockAddr> l = c->LocalAddr();
  *local = l.ok() ? l->ToString() : l.status().ToString();
  (void)co_await c->Write(std::string_view("hello"));
  char buf[16];
  absl::StatusOr<size_t> n = co_await c->Read(absl::MakeSpan(buf));
  *echoed = n.ok() ? std::string(buf, *n) : n.status().ToString();
  (void)c->Close();
}

void LoopEcho(const std::string& where) {
  Loop loop;
  absl::StatusOr<AsyncFd> ln = Listen(loop, where);
  ASSERT_TRUE(ln.ok()) << ln.status();
  absl::StatusOr<SockAddr> at = ln->LocalAddr();
  ASSERT_TRUE(at.ok()) << at.status();
  std::string peer, got, local, echoed;
  loop.Spawn(AcceptOne(*ln, &peer, &got));
  // The address string is gone before the dial runs: Dial keeps a copy.
  loop.Spawn(DialOne(&loop, at->ToString(), &local, &echoed));
  loop.RunUntilDone();
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(echoed, "hello");
  EXPECT_EQ(peer, local);
  (void)ln->Close();
}

TEST(NetLoopTest, ListenDialOnTheLoop) {
  LoopEcho("127.0.0.1:0");
  const std::string path = UnixPath("loop");
  LoopEcho("unix:" + path);
  RemoveUnixPath(path);
}

// Both forms of Accept hand over the peer's address (FD::Accept's
// Accepted::peer); a failed accept leaves it alone.
TEST(NetLoopTest, AcceptGivesThePeerAddress) {
  Loop loop;
  absl::StatusOr<AsyncFd> ln = Listen(loop, "127.0.0.1:0");
  ASSERT_TRUE(ln.ok()) << ln.status();
  const std::string at = ln->LocalAddr()->ToString();
  std::string local1, local2, echoed1, echoed2;
  std::string cb_peer;
  absl::Status cb_status = absl::UnknownError("not run");
  // Callback form first, then the coroutine form (AcceptOne).
  ln->AsyncAccept([&](absl::StatusOr<AsyncFd> c, const SockAddr& peer) {
    cb_status = c.status();
    cb_peer = peer.ToString();
    if (!c.ok()) return;
    loop.Spawn([](AsyncFd c) -> Task<void> {
      char buf[16];
      absl::StatusOr<size_t> n = co_await c.Read(absl::MakeSpan(buf));
      if (n.ok()) (void)co_await c.Write(absl::MakeConstSpan(buf, *n));
      (void)c.Close();
    }(*std::move(c)));
  });
  loop.Spawn(DialOne(&loop, at, &local1, &echoed1));
  testing::RunLoopUntil(loop, [&] { return !echoed1.empty(); });
  ASSERT_TRUE(cb_status.ok()) << cb_status;
  EXPECT_EQ(cb_peer, local1);
  EXPECT_EQ(echoed1, "hello");

  std::string peer, got;
  loop.Spawn(AcceptOne(*ln, &peer, &got));
  loop.Spawn(DialOne(&loop, at, &local2, &echoed2));
  loop.RunUntilDone();
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(peer, local2);
  EXPECT_NE(local1, local2);

  // A failed accept (the listener closed) writes no address.
  SockAddr untouched;
  absl::Status failed;
  loop.Spawn([](AsyncFd ln, SockAddr* peer, absl::Status* out) -> Task<void> {
    *out = (co_await ln.Accept(peer)).status();
  }(*ln, &untouched, &failed));
  bool posted = false;
  loop.Post([&] {
    posted = true;
    (void)ln->Close();
  });
  loop.RunUntilDone();
  EXPECT_TRUE(posted);
  EXPECT_TRUE(IsClosing(failed)) << failed;
  EXPECT_EQ(untouched.len, 0u);
  cb_status = absl::UnknownError("not run");
  cb_peer = "not run";
  ln->AsyncAccept([&](absl::StatusOr<AsyncFd> c, const SockAddr& peer) {
    cb_status = c.status();
    cb_peer = peer.ToString();
  });
  testing::RunLoopUntil(loop, [&] { return cb_peer != "not run"; });
  EXPECT_TRUE(IsClosing(cb_status)) << cb_status;
  EXPECT_EQ(cb_peer, "");
}

// A coroutine destroyed while its Accept(&peer) waits: the address is never
// written into its gone frame, also when a connection arrives meanwhile
// (ASan's leg would report the write; the connection is closed, not leaked).
TEST(NetLoopTest, AbandonedAcceptNeverWritesThePeer) {
  std::string at;
  bool accepted = false;
  {
    Loop loop;
    absl::StatusOr<AsyncFd> ln = Listen(loop, "127.0.0.1:0");
    ASSERT_TRUE(ln.ok()) << ln.status();
    at = ln->LocalAddr()->ToString();
    loop.Spawn([](AsyncFd ln, bool* accepted) -> Task<void> {
      auto peer = std::make_unique<SockAddr>();  // freed with the frame
      (void)co_await ln.Accept(peer.get());
      *accepted = true;
    }(*ln, &accepted));
    bool posted = false;
    loop.Post([&] { posted = true; });
    testing::RunLoopUntil(loop, [&] { return posted; });
    absl::StatusOr<std::unique_ptr<FD>> c = Dial(at);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_FALSE(accepted);
  }  // destroys the waiting task (its accept may be completing)
}

Task<void> DialExpect(Loop* loop, std::string addr, absl::Status* out) {
  absl::StatusOr<AsyncFd> c = co_await Dial(*loop, addr);
  *out = c.status();
  if (c.ok()) (void)c->Close();
}

TEST(NetLoopTest, DialErrors) {
  Loop loop;
  absl::Status bad, refused, late;
  absl::StatusOr<AsyncFd> ln = Listen(loop, "127.0.0.1:0");
  ASSERT_TRUE(ln.ok()) << ln.status();
  const std::string at = ln->LocalAddr()->ToString();
  ASSERT_TRUE(ln->Close().ok());
  loop.Spawn(DialExpect(&loop, "127.0.0.1:http", &bad));
  loop.Spawn(DialExpect(&loop, at, &refused));
  loop.RunUntilDone();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument) << bad;
  EXPECT_EQ(OsErrorCode(refused), ECONNREFUSED) << refused;
  EXPECT_TRUE(absl::StartsWith(refused.message(), absl::StrCat("dial ", at)))
      << refused;
  EXPECT_EQ(Listen(loop, "unix:").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LoopTest, RunUntilDoneWaitsForEverySpawnedTask) {
  Loop loop;
  loop.RunUntilDone();  // nothing spawned: returns at once
  int done = 0;
  auto sleeper = [](Loop* l, int* d, absl::Duration t) -> Task<void> {
    co_await l->Sleep(t);
    ++*d;
  };
  auto parent = [&](Loop* l, int* d) -> Task<void> {
    // A task spawned by a task is waited for too.
    l->Spawn(sleeper(l, d, absl::Milliseconds(30)));
    ++*d;
    co_return;
  };
  loop.Spawn(sleeper(&loop, &done, absl::Milliseconds(10)));
  loop.Spawn(parent(&loop, &done));
  loop.RunUntilDone();
  EXPECT_EQ(done, 3);
}

Task<void> WaitSig(Loop* loop, absl::StatusOr<int>* out) {
  *out = co_await ShutdownSignal(*loop);
}

bool DefaultAction(int sig) {
  struct sigaction sa = {};
  ::sigaction(sig, nullptr, &sa);
  return sa.sa_handler == SIG_DFL;
}

TEST(NetLoopTest, ShutdownSignalWakesTheWaiterAndRestoresTheDefault) {
  ASSERT_TRUE(DefaultAction(SIGTERM));
  ASSERT_TRUE(DefaultAction(SIGINT));
  for (int sig : {SIGTERM, SIGINT}) {
    Loop loop;
    absl::StatusOr<int> got = absl::UnknownError("not run");
    loop.Spawn(WaitSig(&loop, &got));
    // Runs after the waiter has started waiting (posted after its start).
    loop.Post([sig] { ::raise(sig); });
    loop.RunUntilDone();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, sig);
    // The default action is back: the next such signal ends the process.
    EXPECT_TRUE(DefaultAction(SIGTERM));
    EXPECT_TRUE(DefaultAction(SIGINT));
  }
}

TEST(NetLoopTest, DestroyedSignalWaiterReleasesEverything) {
  {
    Loop loop;
    absl::StatusOr<int> got = absl::UnknownError("not run");
    loop.Spawn(WaitSig(&loop, &got));
    bool posted = false;
    loop.Post([&] { posted = true; });
    testing::RunLoopUntil(loop, [&] { return posted; });
    EXPECT_FALSE(DefaultAction(SIGTERM));  // the waiter holds it
  }                                        // destroys the waiting task
  EXPECT_TRUE(DefaultAction(SIGTERM));
  EXPECT_TRUE(DefaultAction(SIGINT));
}

}  // namespace
}  // namespace gopoll
