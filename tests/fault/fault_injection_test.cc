// SPDX-License-Identifier: BSD-3-Clause
// Fault injection (poll/testing/fault_injection.h) against the POSIX
// backends: EINTR, spurious EAGAIN, short transfers, injected delays and OS
// errors on the calls the library makes. Every test checks that nothing
// hangs, no byte is lost, duplicated or reordered, no descriptor leaks and
// errors carry the name of the failing call.
#include "poll/testing/fault_injection.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"
#include "tests/loop_test_util.h"
#include "tests/posix_test_util.h"

namespace gopoll::testing {
namespace {

// The strategies this backend has (plan9_stub has no kPoller).
std::vector<WaitStrategy> Strategies() {
  std::vector<WaitStrategy> out;
  for (WaitStrategy s :
       {WaitStrategy::kInterruptibleCall, WaitStrategy::kPoller}) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) continue;
    FD probe(p[0]);
    if (probe.Init(FdKind::kPipe, true, s).ok()) out.push_back(s);
    ::close(p[1]);
  }
  return out;
}

std::string StrategyName(const ::testing::TestParamInfo<WaitStrategy>& i) {
  return i.param == WaitStrategy::kPoller ? "Poller" : "Interruptible";
}

std::unique_ptr<FD> Wrap(int fd, FdKind kind, WaitStrategy s) {
  auto f = std::make_unique<FD>(fd);
  absl::Status st = f->Init(kind, true, s);
  EXPECT_TRUE(st.ok()) << st;
  return f;
}

FdPair Pair(WaitStrategy s, int type = SOCK_STREAM) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
  return {Wrap(sv[0], FdKind::kNet, s), Wrap(sv[1], FdKind::kNet, s)};
}

std::string Pattern(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(g());
  return s;
}

// Writes `data` to `w` in chunks of random size (Write, or WriteV of up to
// three pieces), then closes `w`; reads `r` until EOF on this thread.
// Returns what was read.
std::string Pump(FD& w, FD& r, const std::string& data, bool vectored) {
  std::thread writer([&] {
    std::mt19937 g(7);
    size_t off = 0;
    while (off < data.size()) {
      size_t n = std::min<size_t>(data.size() - off, 1 + g() % 9000);
      absl::StatusOr<size_t> k;
      if (vectored && n >= 3) {
        absl::Span<const char> all(data.data() + off, n);
        std::vector<absl::Span<const char>> parts = {all.subspan(0, n / 3),
                                                     all.subspan(n / 3, n / 3),
                                                     all.subspan(2 * (n / 3))};
        k = w.WriteV(parts);
      } else {
        k = w.Write(absl::string_view(data.data() + off, n));
      }
      ASSERT_TRUE(k.ok()) << k.status();
      ASSERT_EQ(*k, n);
      off += n;
    }
    EXPECT_TRUE(w.Close().ok());
  });
  std::string got;
  char buf[4096];
  std::mt19937 g(11);
  for (;;) {
    size_t want = 1 + g() % sizeof(buf);
    absl::StatusOr<size_t> n;
    if (vectored) {
      absl::Span<char> all(buf, want);
      std::vector<absl::Span<char>> parts = {all.subspan(0, want / 2),
                                             all.subspan(want / 2)};
      n = r.ReadV(parts);
    } else {
      n = r.Read(absl::MakeSpan(buf, want));
    }
    if (IsEof(n.status())) break;
    if (!n.ok()) {
      ADD_FAILURE() << n.status();
      break;
    }
    got.append(buf, *n);
  }
  writer.join();
  return got;
}

class FaultTest : public FdLeakTest,
                  public ::testing::WithParamInterface<WaitStrategy> {
 protected:
  void TearDown() override {
    ClearRules();
    FdLeakTest::TearDown();
  }
};

INSTANTIATE_TEST_SUITE_P(Strategies, FaultTest,
                         ::testing::ValuesIn(Strategies()), StrategyName);

constexpr size_t kBytes = 1 << 20;

// EINTR on one in two of every call of the process (the poller's and the
// loop's waits too): each is retried, nothing is lost.
TEST_P(FaultTest, EintrEverywhereLosesNothing) {
  for (bool vectored : {false, true}) {
    FdPair p = Pair(GetParam());
    const std::string data = Pattern(kBytes, 1);
    AddRule({.calls = kAllIo | kPoll | kEpollWait | kShutdown,
             .err = EINTR,
             .one_in = 2});
    EXPECT_EQ(Pump(*p.w, *p.r, data, vectored), data) << vectored;
    ClearRules();
  }
}

// Short reads and writes (at most 1..7 bytes per call, one call in two):
// Write and WriteV loop until everything is written.
TEST_P(FaultTest, ShortTransfersLoseNothing) {
  for (bool vectored : {false, true}) {
    FdPair p = Pair(GetParam());
    const std::string data = Pattern(kBytes / 8, 3);
    for (size_t cap = 1; cap <= 7; cap += 3) {
      AddRule({.calls = kAllIo, .max_bytes = cap, .one_in = 2});
    }
    EXPECT_EQ(Pump(*p.w, *p.r, data, vectored), data) << vectored;
    ClearRules();
  }
}

// Random delays before calls (the schedule perturbation at the system call
// level: between arming a waiter and the call, before each wait).
TEST_P(FaultTest, DelaysLoseNothing) {
  FdPair p = Pair(GetParam());
  const std::string data = Pattern(kBytes / 4, 4);
  AddRule(
      {.calls = kAllIo | kPoll | kEpollWait, .delay_max_us = 300, .one_in = 5});
  EXPECT_EQ(Pump(*p.w, *p.r, data, false), data);
}

// Datagram boundaries survive EINTR and spurious EAGAIN.
TEST_P(FaultTest, SeqpacketBoundariesSurviveRetries) {
  FdPair p = Pair(GetParam(), SOCK_SEQPACKET);
  AddRule({.calls = kAllIo, .err = EINTR, .one_in = 2});
  if (GetParam() == WaitStrategy::kInterruptibleCall) {  // see below
    AddRule({.calls = kAllReads,
             .fd = static_cast<int>(p.r->sysfd()),
             .err = EAGAIN,
             .one_in = 3});
  }
  std::thread writer([&] {
    for (int i = 1; i <= 200; ++i) {
      std::string m = Pattern(static_cast<size_t>(i), static_cast<uint32_t>(i));
      absl::StatusOr<size_t> n = p.w->Write(m);
      ASSERT_TRUE(n.ok()) << n.status();
    }
    EXPECT_TRUE(p.w->Close().ok());
  });
  char buf[512];
  for (int i = 1; i <= 200; ++i) {
    absl::StatusOr<size_t> n = p.r->Read(absl::MakeSpan(buf));
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(std::string(buf, *n),
              Pattern(static_cast<size_t>(i), static_cast<uint32_t>(i)));
  }
  EXPECT_TRUE(IsEof(p.r->Read(absl::MakeSpan(buf)).status()));
  writer.join();
}

// An OS error of any call is returned once, as an OsError naming the call
// with the errno; the FD stays usable.
TEST_P(FaultTest, OsErrorsCarryTheCallName) {
  FdPair p = Pair(GetParam());
  FdPair d = Pair(GetParam(), SOCK_DGRAM);
  char buf[64];
  char oob[64];
  struct Case {
    const char* call;
    uint32_t bit;
    FD* fd;
    std::function<absl::Status()> op;
  };
  auto ok_read = [&](FD& f) {
    return [&f, &buf] {
      absl::StatusOr<size_t> n = f.Read(absl::MakeSpan(buf));
      return n.status();
    };
  };
  const std::vector<Case> cases = {
      {"read", kRead, p.r.get(), ok_read(*p.r)},
      {"write", kWrite | kSend, p.w.get(),
       [&] { return p.w->Write(absl::string_view("x")).status(); }},
      {"readv", kReadv, p.r.get(),
       [&] {
         absl::Span<char> s(buf, 8);
         return p.r->ReadV({&s, 1}).status();
       }},
      {"writev", kWritev | kSendmsg, p.w.get(),
       [&] {
         absl::Span<const char> s("x", 1);
         return p.w->WriteV({&s, 1}).status();
       }},
      {"recvmsg", kRecvmsg, p.r.get(),
       [&] {
         return p.r->ReadMsg(absl::MakeSpan(buf), absl::MakeSpan(oob), 0)
             .status();
       }},
      {"sendmsg", kSendmsg, p.w.get(),
       [&] {
         return p.w->WriteMsg(absl::string_view("x"), {}, nullptr, 0).status();
       }},
      {"recvfrom", kRecvfrom, d.r.get(),
       [&] { return d.r->RecvFrom(absl::MakeSpan(buf), 0).status(); }},
      {"shutdown", kShutdown, d.w.get(),
       [&] { return d.w->Shutdown(SHUT_RD); }},
  };
  for (int err : {ENOMEM, ECONNRESET, EPIPE, EIO}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(absl::StrCat(c.call, " errno ", err));
      // Data for the reads that must succeed afterwards.
      ASSERT_TRUE(p.w->Write(absl::string_view("abc")).ok());
      ASSERT_TRUE(d.w->Write(absl::string_view("abc")).ok());
      int id = AddRule({.calls = c.bit,
                        .fd = static_cast<int>(c.fd->sysfd()),
                        .err = err,
                        .times = 1});
      absl::Status s = c.op();
      EXPECT_EQ(Fired(id), 1);
      EXPECT_EQ(OsErrorCode(s), err) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), c.call)) << s;
      EXPECT_FALSE(IsClosing(s) || IsEof(s) || IsDeadlineExceeded(s)) << s;
      // Usable again.
      s = c.op();
      EXPECT_TRUE(s.ok()) << s;
      RemoveRule(id);
      // Drain what is left.
      p.r->SetReadDeadline(absl::Now() - absl::Seconds(1)).IgnoreError();
      while (p.r->Read(absl::MakeSpan(buf)).ok()) {
      }
      p.r->SetReadDeadline(absl::InfiniteFuture()).IgnoreError();
      d.r->SetReadDeadline(absl::Now() - absl::Seconds(1)).IgnoreError();
      while (d.r->Read(absl::MakeSpan(buf)).ok()) {
      }
      d.r->SetReadDeadline(absl::InfiniteFuture()).IgnoreError();
    }
  }
}

// A listening Unix socket with its address.
struct Listener {
  std::unique_ptr<FD> fd;
  SockAddr addr;
};

Listener Listen(WaitStrategy s) {
  Listener l;
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  // Abstract namespace: nothing to clean up.
  std::string name = absl::StrCat("gopoll-fault-", getpid(), "-", ls);
  memcpy(a.sun_path + 1, name.data(), name.size());
  const socklen_t len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  EXPECT_EQ(bind(ls, reinterpret_cast<sockaddr*>(&a), len), 0);
  EXPECT_EQ(listen(ls, 16), 0);
  l.addr.Set(&a, len);
  l.fd = Wrap(ls, FdKind::kNet, s);
  return l;
}

// Accept at the descriptor limit (EMFILE) returns the error each time and
// loses no connection: the pending one is accepted once the limit lifts.
TEST_P(FaultTest, AcceptEmfileKeepsThePendingConnection) {
  Listener l = Listen(GetParam());
  int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(c, l.addr.get(), l.addr.len), 0);
  ASSERT_EQ(write(c, "z", 1), 1);
  int id = AddRule({.calls = kAccept4,
                    .fd = static_cast<int>(l.fd->sysfd()),
                    .err = EMFILE,
                    .times = 3});
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Accepted> a = l.fd->Accept();
    EXPECT_EQ(OsErrorCode(a.status()), EMFILE) << a.status();
    EXPECT_TRUE(absl::StrContains(a.status().message(), "accept4"));
  }
  EXPECT_EQ(Fired(id), 3);
  absl::StatusOr<Accepted> a = l.fd->Accept();
  ASSERT_TRUE(a.ok()) << a.status();
  std::unique_ptr<FD> conn =
      Wrap(static_cast<int>(a->sysfd), FdKind::kNet, GetParam());
  char ch = 0;
  absl::StatusOr<size_t> n = conn->Read(absl::MakeSpan(&ch, 1));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(ch, 'z');
  ::close(c);
}

// connect's errors (refused, EINTR while it goes on) through the FD.
TEST_P(FaultTest, ConnectRetriesEintrAndReportsErrors) {
  Listener l = Listen(GetParam());
  for (int err : {EINTR, ECONNREFUSED}) {
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    std::unique_ptr<FD> cf = Wrap(c, FdKind::kNet, GetParam());
    int id = AddRule({.calls = kConnect, .fd = c, .err = err, .times = 1});
    absl::Status s = cf->Connect(l.addr);
    EXPECT_EQ(Fired(id), 1);
    if (err == EINTR) {
      EXPECT_TRUE(s.ok()) << s;
      absl::StatusOr<Accepted> a = l.fd->Accept();
      ASSERT_TRUE(a.ok()) << a.status();
      ::close(static_cast<int>(a->sysfd));
    } else {
      EXPECT_EQ(OsErrorCode(s), err) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), "connect")) << s;
    }
    RemoveRule(id);
  }
}

// close failing (EINTR, EIO: Linux has released the descriptor anyway):
// Close reports it at most, the descriptor is not leaked and not closed
// twice.
TEST_P(FaultTest, CloseErrorReleasesTheDescriptorOnce) {
  for (int err : {EINTR, EIO}) {
    FdPair p = Pair(GetParam());
    const int fd = static_cast<int>(p.r->sysfd());
    int id = AddRule({.calls = kClose, .fd = fd, .err = err, .times = 1});
    absl::Status s = p.r->Close();
    EXPECT_EQ(Fired(id), 1);
    if (err == EINTR) {
      EXPECT_TRUE(s.ok()) << s;
    } else {
      EXPECT_EQ(OsErrorCode(s), err) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), "close")) << s;
    }
    EXPECT_EQ(fcntl(fd, F_GETFD), -1);
    RemoveRule(id);
    // A second close of the same FD object must not close a reused number.
    int reuse[2];
    ASSERT_EQ(pipe2(reuse, O_CLOEXEC), 0);
    EXPECT_TRUE(IsClosing(p.r->Close()));
    EXPECT_GE(fcntl(reuse[0], F_GETFD), 0);
    ::close(reuse[0]);
    ::close(reuse[1]);
  }
}

// Deadlines and Close still end calls that keep being interrupted or told
// EAGAIN.
TEST_P(FaultTest, DeadlineAndCloseEndCallsUnderFaults) {
  FdPair p = Pair(GetParam());
  AddRule({.calls = kAllIo | kPoll | kEpollWait, .err = EINTR, .one_in = 2});
  if (GetParam() == WaitStrategy::kInterruptibleCall) {  // see below
    AddRule({.calls = kAllReads, .err = EAGAIN, .one_in = 2});
  }
  char buf[8];
  ASSERT_TRUE(p.r->SetReadDeadline(absl::Now() + absl::Milliseconds(30)).ok());
  absl::StatusOr<size_t> n = p.r->Read(absl::MakeSpan(buf));
  EXPECT_TRUE(IsDeadlineExceeded(n.status())) << n.status();
  ASSERT_TRUE(p.r->SetReadDeadline(absl::InfiniteFuture()).ok());
  std::atomic<pid_t> tid{0};
  std::thread reader([&] {
    tid = ThreadId();
    absl::StatusOr<size_t> m = p.r->Read(absl::MakeSpan(buf));
    EXPECT_TRUE(IsClosing(m.status())) << m.status();
  });
  while (tid.load() == 0) absl::SleepFor(absl::Microseconds(100));
  EXPECT_TRUE(WaitUntilBlocked(tid.load()));  // the read waits
  EXPECT_TRUE(p.r->Close().ok());
  reader.join();
}

// Spurious EAGAIN (the call would not have blocked): only the interruptible
// call can honour it, since it waits with a level-triggered poll(). On
// epoll (kPoller, loops) it is outside the contract, as in Go: readiness is
// edge-triggered and Prepare forgets stale readiness, so a read told EAGAIN
// while data is queued waits for an edge that comes only if the peer writes
// again (a writer blocked on a full buffer never does: both hang).
TEST(FaultInterruptible, SpuriousEagainOnReadsLosesNothing) {
  FdPair p = Pair(WaitStrategy::kInterruptibleCall);
  const std::string data = Pattern(kBytes, 2);
  AddRule({.calls = kAllReads,
           .fd = static_cast<int>(p.r->sysfd()),
           .err = EAGAIN,
           .one_in = 3});
  EXPECT_EQ(Pump(*p.w, *p.r, data, false), data);
  ClearRules();
}

TEST(FaultInterruptible, SpuriousEagainOnWritesLosesNothing) {
  FdPair p = Pair(WaitStrategy::kInterruptibleCall);
  const std::string data = Pattern(kBytes, 5);
  AddRule({.calls = kAllWrites,
           .fd = static_cast<int>(p.w->sysfd()),
           .err = EAGAIN,
           .one_in = 2});
  EXPECT_EQ(Pump(*p.w, *p.r, data, false), data);
  ClearRules();
}

#ifndef GOPOLL_TEST_NO_POLLER  // the epoll backend only
// Regression: EpollPoller::Interrupt() ignored EINTR from its eventfd
// write, so a deadline (or Close) that had to wake the thread leading
// epoll_wait was lost and the read hung. Before the fix this test hit its
// 10 s bound every run (then Close ended the read with IsClosing).
TEST(FaultPoller, DeadlineWakesTheLeaderWhenTheWakeWriteIsInterrupted) {
  FdPair p = Pair(WaitStrategy::kPoller);
  // The only write(2) of this test is the poller's wake.
  int id = AddRule({.calls = kWrite, .err = EINTR, .times = 1});
  absl::Notification done;
  absl::Status st;
  std::thread reader([&] {
    char c;
    st = p.r->Read(absl::MakeSpan(&c, 1)).status();
    done.Notify();
  });
  ASSERT_TRUE(p.r->SetReadDeadline(absl::Now() + absl::Milliseconds(20)).ok());
  if (!done.WaitForNotificationWithTimeout(absl::Seconds(10))) {
    ADD_FAILURE() << "the deadline did not wake the blocked read";
    EXPECT_TRUE(p.r->Close().ok());
  }
  reader.join();
  EXPECT_EQ(Fired(id), 1);
  EXPECT_TRUE(IsDeadlineExceeded(st)) << st;
  ClearRules();
}

#endif  // GOPOLL_TEST_NO_POLLER

// --- The event loop -------------------------------------------------------

Task<void> EchoTask(AsyncFd c, std::atomic<bool>* done) {
  char buf[1024];
  for (;;) {
    absl::StatusOr<size_t> n = co_await c.Read(absl::MakeSpan(buf));
    if (!n.ok()) {
      EXPECT_TRUE(IsEof(n.status())) << n.status();
      break;
    }
    absl::StatusOr<size_t> w = co_await c.Write(absl::string_view(buf, *n));
    if (!w.ok()) {
      ADD_FAILURE() << w.status();
      break;
    }
  }
  (void)c.Close();
  done->store(true);
}

// A loop coroutine echoes 256 KiB while its calls see EINTR and short
// transfers, and its epoll_wait EINTR and delays.
TEST(FaultLoop, EchoUnderFaultsLosesNothing) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::atomic<bool> done{false};
  {
    Loop loop;
    absl::StatusOr<AsyncFd> a = loop.Adopt(sv[0], FdKind::kNet);
    ASSERT_TRUE(a.ok()) << a.status();
    std::unique_ptr<FD> b = Wrap(sv[1], FdKind::kNet, WaitStrategy::kAuto);
    AddRule({.calls = kAllIo | kEpollWait, .err = EINTR, .one_in = 3});
    AddRule({.calls = kAllIo, .fd = sv[0], .max_bytes = 5, .one_in = 2});
    AddRule({.calls = kEpollWait, .delay_max_us = 200, .one_in = 3});
    loop.Spawn(EchoTask(*a, &done));
    const std::string data = Pattern(kBytes / 4, 6);
    std::string got;
    std::thread client([&] {
      std::thread w([&] {
        absl::StatusOr<size_t> n = b->Write(data);
        EXPECT_TRUE(n.ok()) << n.status();
        EXPECT_TRUE(b->Shutdown(SHUT_WR).ok());
      });
      char buf[4096];
      for (;;) {
        absl::StatusOr<size_t> n = b->Read(absl::MakeSpan(buf));
        if (!n.ok()) {
          EXPECT_TRUE(IsEof(n.status())) << n.status();
          break;
        }
        got.append(buf, *n);
      }
      w.join();
    });
    RunLoopUntil(
        loop, [&] { return done.load(); }, absl::Seconds(60));
    client.join();
    ClearRules();
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
  }
}

// The loop's Accept at EMFILE: each callback gets the error, the pending
// connection is taken once the limit lifts.
TEST(FaultLoop, AcceptEmfileKeepsThePendingConnection) {
  Loop loop;
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string name = absl::StrCat("gopoll-fault-loop-", getpid());
  memcpy(a.sun_path + 1, name.data(), name.size());
  const socklen_t len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(bind(ls, reinterpret_cast<sockaddr*>(&a), len), 0);
  ASSERT_EQ(listen(ls, 16), 0);
  absl::StatusOr<AsyncFd> l = loop.Adopt(ls, FdKind::kNet);
  ASSERT_TRUE(l.ok()) << l.status();
  int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), len), 0);
  int id = AddRule({.calls = kAccept4, .fd = ls, .err = EMFILE, .times = 2});
  std::vector<absl::Status> results;
  AsyncFd conn;
  std::function<void()> next = [&] {
    l->AsyncAccept([&](absl::StatusOr<AsyncFd> r) {
      if (r.ok()) {
        conn = *r;
        results.push_back(absl::OkStatus());
        return;
      }
      results.push_back(r.status());
      next();
    });
  };
  next();
  RunLoopUntil(loop, [&] { return conn.valid(); });
  ClearRules();
  EXPECT_EQ(Fired(id), 0);  // removed by ClearRules
  ASSERT_EQ(results.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(OsErrorCode(results[i]), EMFILE) << results[i];
    EXPECT_TRUE(absl::StrContains(results[i].message(), "accept4"));
  }
  EXPECT_TRUE(results[2].ok());
  ::close(c);
  if (conn.valid()) {
    EXPECT_TRUE(conn.Close().ok());
  }
  EXPECT_TRUE(l->Close().ok());
}

}  // namespace
}  // namespace gopoll::testing
