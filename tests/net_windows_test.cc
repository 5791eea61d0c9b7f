// SPDX-License-Identifier: BSD-3-Clause
// poll/net.h on Windows: addresses from strings and back, Listen and Dial
// (blocking and on a loop), the addresses of a connection (also as Accept
// hands it over), ShutdownSignal on console control events; unix addresses
// are Unimplemented there.
#include <winsock2.h>
// clang-format off
#include <windows.h>
// clang-format on

#include <csignal>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/loop/console_ctrl.h"
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
    *peer = "Accept: " + *peer +
            ", PeerAddr: " + (p.ok() ? p->ToString() : p.status().ToString());
  }
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

Task<void> WaitSig(Loop* loop, absl::StatusOr<int>* out) {
  *out = co_await ShutdownSignal(*loop);
}

TEST(NetWindowsTest, LoopListenDial) {
  Loop loop;
  absl::StatusOr<AsyncFd> ln = Listen(loop, "127.0.0.1:0");
  ASSERT_TRUE(ln.ok()) << ln.status();
  absl::StatusOr<SockAddr> at = ln->LocalAddr();
  ASSERT_TRUE(at.ok()) << at.status();
  std::string peer, got, local;
  absl::Status dial;
  loop.Spawn(AcceptOne(*ln, &peer, &got));
  loop.Spawn(DialOne(&loop, at->ToString(), &local, &dial));
  loop.RunUntilDone();
  EXPECT_TRUE(dial.ok()) << dial;
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(peer, local);
  (void)ln->Close();
}

// The callback form of Accept hands over the peer too.
TEST(NetWindowsTest, AsyncAcceptGivesThePeer) {
  Loop loop;
  absl::StatusOr<AsyncFd> ln = Listen(loop, "127.0.0.1:0");
  ASSERT_TRUE(ln.ok()) << ln.status();
  absl::StatusOr<SockAddr> at = ln->LocalAddr();
  ASSERT_TRUE(at.ok()) << at.status();
  std::string peer = "not run", local;
  absl::Status accepted = absl::UnknownError("not run"), dial;
  ln->AsyncAccept([&](absl::StatusOr<AsyncFd> c, const SockAddr& from) {
    accepted = c.status();
    peer = from.ToString();
    if (c.ok()) (void)c->Close();
  });
  loop.Spawn(DialOne(&loop, at->ToString(), &local, &dial));
  while (peer == "not run") loop.RunOnce(absl::Seconds(1));
  loop.RunUntilDone();
  ASSERT_TRUE(accepted.ok()) << accepted;
  EXPECT_EQ(peer, local);
  (void)ln->Close();
}

// Runs `loop` until every task finished, delivering console control event
// `type` from another thread (as the system does) once the tasks wait.
// Returns whether the handler took the event.
bool RunDelivering(Loop& loop, DWORD type) {
  bool delivered = false;
  std::thread sender;
  // Posted after the waiters' start: they wait by then.
  loop.Post([&] {
    sender =
        std::thread([&] { delivered = internal_net::HandleConsoleCtrl(type); });
  });
  loop.RunUntilDone();
  sender.join();
  return delivered;
}

// Ctrl+C and Ctrl+Break wake a ShutdownSignal waiter with SIGINT, closing
// the console with SIGTERM (Go's mapping). The system's handler thread is
// stood in for by a thread calling the handler's delivery: Wine gives a
// process run by the test runner no console whose events could be raised
// (GenerateConsoleCtrlEvent).
TEST(NetWindowsTest, ShutdownSignalTakesConsoleEvents) {
  struct Case {
    DWORD type;
    int sig;
  };
  for (Case c :
       {Case{CTRL_C_EVENT, SIGINT}, Case{CTRL_BREAK_EVENT, SIGINT},
        Case{CTRL_CLOSE_EVENT, SIGTERM}, Case{CTRL_SHUTDOWN_EVENT, SIGTERM}}) {
    Loop loop;
    absl::StatusOr<int> got = absl::UnknownError("not run");
    loop.Spawn(WaitSig(&loop, &got));
    EXPECT_TRUE(RunDelivering(loop, c.type)) << c.type;
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, c.sig) << c.type;
  }
  // Nobody waits any more: the event goes to the next handler (by default
  // the one that ends the process).
  EXPECT_FALSE(internal_net::HandleConsoleCtrl(CTRL_C_EVENT));
}

// Each event wakes one waiter, the oldest first, on its own loop; an event
// type that is not a shutdown request wakes nobody.
TEST(NetWindowsTest, EachConsoleEventWakesOneWaiter) {
  Loop a, b;
  absl::StatusOr<int> got_a = absl::UnknownError("not run");
  absl::StatusOr<int> got_b = absl::UnknownError("not run");
  a.Spawn(WaitSig(&a, &got_a));
  bool started = false;
  a.Post([&] { started = true; });
  while (!started) a.RunOnce(absl::Seconds(1));
  b.Spawn(WaitSig(&b, &got_b));
  started = false;
  b.Post([&] { started = true; });
  while (!started) b.RunOnce(absl::Seconds(1));
  EXPECT_FALSE(internal_net::HandleConsoleCtrl(3));  // not an event we take
  EXPECT_TRUE(RunDelivering(a, CTRL_BREAK_EVENT));
  ASSERT_TRUE(got_a.ok()) << got_a.status();
  EXPECT_EQ(*got_a, SIGINT);
  EXPECT_EQ(got_b.status().code(), absl::StatusCode::kUnknown);  // waits
  EXPECT_TRUE(RunDelivering(b, CTRL_CLOSE_EVENT));
  ASSERT_TRUE(got_b.ok()) << got_b.status();
  EXPECT_EQ(*got_b, SIGTERM);
}

// A destroyed waiting coroutine leaves the handler's list; an event handed
// to a waiter whose coroutine is destroyed before it resumed goes to the
// next waiter.
TEST(NetWindowsTest, DestroyedConsoleWaiterPassesItsEventOn) {
  {
    Loop gone;
    absl::StatusOr<int> got = absl::UnknownError("not run");
    gone.Spawn(WaitSig(&gone, &got));
    bool started = false;
    gone.Post([&] { started = true; });
    while (!started) gone.RunOnce(absl::Seconds(1));
  }  // destroys the waiting task
  EXPECT_FALSE(internal_net::HandleConsoleCtrl(CTRL_C_EVENT));

  Loop next;
  absl::StatusOr<int> got_next = absl::UnknownError("not run");
  {
    Loop gone;
    absl::StatusOr<int> got = absl::UnknownError("not run");
    gone.Spawn(WaitSig(&gone, &got));
    bool started = false;
    gone.Post([&] { started = true; });
    while (!started) gone.RunOnce(absl::Seconds(1));
    next.Spawn(WaitSig(&next, &got_next));
    started = false;
    next.Post([&] { started = true; });
    while (!started) next.RunOnce(absl::Seconds(1));
    // Handed to the oldest waiter, whose loop never runs it.
    EXPECT_TRUE(internal_net::HandleConsoleCtrl(CTRL_C_EVENT));
    EXPECT_EQ(got.status().code(), absl::StatusCode::kUnknown);
  }  // destroys it before it resumed: the event goes to `next`
  next.RunUntilDone();
  ASSERT_TRUE(got_next.ok()) << got_next.status();
  EXPECT_EQ(*got_next, SIGINT);
}

// Not in a task on its loop: a clear error, nothing registered.
TEST(NetWindowsTest, ShutdownSignalOffItsLoop) {
  Loop loop, other;
  absl::StatusOr<int> got = absl::UnknownError("not run");
  other.Spawn(WaitSig(&loop, &got));
  other.RunUntilDone();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition)
      << got.status();
  EXPECT_FALSE(internal_net::HandleConsoleCtrl(CTRL_C_EVENT));
}

}  // namespace
}  // namespace gopoll
