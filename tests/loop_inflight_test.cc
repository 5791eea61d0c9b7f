// SPDX-License-Identifier: BSD-3-Clause
// An operation the loop waits on (on io_uring: in flight in the ring, with
// its PollDesc slot watched for deadlines and Close; on epoll: armed for
// readiness) stays reachable by its FD's deadline and Close whatever else
// happens meanwhile:
//   - readiness edges of its direction that bring it nothing (another reader
//     of a dup'd descriptor took the byte);
//   - a deadline another thread moves between past and future: the
//     operation ends with IsDeadlineExceeded, never with the loop's
//     CancelledError;
//   - its coroutine destroyed: the FD is free for the next operation in the
//     same loop turn (no IsBusy).
// And the loop's socket operations refuse a non-socket as FD::Accept and
// FD::Connect do (InvalidArgument).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "gtest/gtest.h"
#include "poll/internal/fd_access.h"
#include "poll/internal/poll_desc.h"
#include "poll/loop/loop.h"
#include "tests/loop_test_util.h"
#include "tests/posix_test_util.h"

namespace gopoll {
namespace {

using ::gopoll::testing::FdLeakTest;
using ::gopoll::testing::RunLoopUntil;

struct Pipe {
  AsyncFd r, w;
};

Pipe AdoptPipe(Loop& loop) {
  int p[2];
  EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
  absl::StatusOr<AsyncFd> r = loop.Adopt(p[0], FdKind::kPipe);
  absl::StatusOr<AsyncFd> w = loop.Adopt(p[1], FdKind::kPipe);
  EXPECT_TRUE(r.ok() && w.ok());
  return {*r, *w};
}

// A pending callback read and what it got.
struct PendingRead {
  char buf[16];
  absl::StatusOr<size_t> got = absl::UnknownError("not delivered");
  std::atomic<bool> done{false};

  void Start(const AsyncFd& fd) {
    fd.AsyncRead(absl::MakeSpan(buf), [this](absl::StatusOr<size_t> n) {
      got = std::move(n);
      done = true;
    });
  }
};

// Runs a few loop turns without waiting for anything in particular.
void Turns(Loop& loop, int n = 3) {
  for (int i = 0; i < n; ++i) loop.RunOnce(absl::Milliseconds(1));
}

class LoopInFlightTest : public FdLeakTest {
 protected:
  void SetUp() override {
    FdLeakTest::SetUp();
    if (!Loop().has_poller()) {
      // plan9_stub: operations are blocking calls on helper threads; no
      // readiness slot is armed by the loop.
      GTEST_SKIP() << "the helper-thread loop has no readiness slots";
    }
  }
};

// A read edge that brings the pending read nothing, as the poller reports
// it (the byte went to another reader), then the deadline: it must end the
// read.
TEST_F(LoopInFlightTest, AnEdgeThatBringsNothingKeepsTheDeadline) {
  Loop loop;
  Pipe p = AdoptPipe(loop);
  PendingRead rd;
  rd.Start(p.r);
  Turns(loop);
  ASSERT_FALSE(rd.done);
  internal::PollDesc& pd = internal::FdAccess::poll_desc(p.r.fd());
  for (int i = 0; i < 3; ++i) {
    internal::PollDesc::Woken w = pd.NetpollReady(true, false, false);
    if (w.r != nullptr) w.r->Wake();
    Turns(loop);
    ASSERT_FALSE(rd.done) << rd.got.status();
  }
  ASSERT_TRUE(p.r.SetReadDeadline(absl::Now() + absl::Milliseconds(20)).ok());
  RunLoopUntil(
      loop, [&] { return rd.done.load(); }, absl::Seconds(10));
  ASSERT_TRUE(rd.done) << "the deadline never reached the read";
  EXPECT_TRUE(IsDeadlineExceeded(rd.got.status())) << rd.got.status();
}

// The same, ended by Close from another thread.
TEST_F(LoopInFlightTest, AnEdgeThatBringsNothingKeepsClose) {
  Loop loop;
  Pipe p = AdoptPipe(loop);
  PendingRead rd;
  rd.Start(p.r);
  Turns(loop);
  internal::PollDesc& pd = internal::FdAccess::poll_desc(p.r.fd());
  internal::PollDesc::Woken w = pd.NetpollReady(true, false, false);
  if (w.r != nullptr) w.r->Wake();
  Turns(loop);
  ASSERT_FALSE(rd.done) << rd.got.status();
  std::thread closer([r = p.r] { EXPECT_TRUE(r.Close().ok()); });
  RunLoopUntil(
      loop, [&] { return rd.done.load(); }, absl::Seconds(10));
  closer.join();
  ASSERT_TRUE(rd.done) << "Close never reached the read";
  EXPECT_TRUE(IsClosing(rd.got.status())) << rd.got.status();
}

// The real thing: a reader of a dup'd descriptor on another thread competes
// for each byte with the loop's read, after a blocking call on fd() made the
// loop watch the descriptor's readiness. Whenever the other reader won, the
// loop's read must still end with its deadline.
TEST_F(LoopInFlightTest, ACompetingReaderOfADupLeavesTheDeadlineInForce) {
  Loop loop;
  Pipe p = AdoptPipe(loop);
  // A blocking read on fd() that has to wait: the loop reports readiness of
  // this descriptor from now on (on io_uring: its epoll registration is
  // activated).
  {
    std::atomic<bool> got{false};
    std::thread t([&] {
      char c;
      absl::StatusOr<size_t> n = p.r.fd().Read(absl::MakeSpan(&c, 1));
      EXPECT_TRUE(n.ok()) << n.status();
      got = true;
    });
    Turns(loop, 10);
    ASSERT_TRUE(p.w.fd().Write(std::string_view("a")).ok());
    RunLoopUntil(loop, [&] { return got.load(); });
    t.join();
  }
  const int dup_fd =
      fcntl(static_cast<int>(p.r.fd().sysfd()), F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(dup_fd, 0);
  int judged = 0;
  for (int round = 0; round < 300 && judged < 10; ++round) {
    PendingRead rd;
    rd.Start(p.r);
    Turns(loop, 1);
    std::atomic<bool> taken{false};
    std::thread other([&] {
      const absl::Time give_up = absl::Now() + absl::Seconds(10);
      char c;
      while (!rd.done && absl::Now() < give_up) {  // (the loop's read won)
        pollfd pfd{dup_fd, POLLIN, 0};
        if (::poll(&pfd, 1, 10) == 1 && ::read(dup_fd, &c, 1) == 1) {
          taken = true;
          return;
        }
      }
    });
    ASSERT_TRUE(p.w.fd().Write(std::string_view("b")).ok());
    RunLoopUntil(loop, [&] { return rd.done.load() || taken.load(); });
    Turns(loop, 2);
    other.join();
    if (rd.done) {
      ASSERT_TRUE(rd.got.ok()) << rd.got.status();
      EXPECT_EQ(*rd.got, 1u);
      continue;  // the loop's read won: nothing to judge this round
    }
    ++judged;
    ASSERT_TRUE(p.r.SetReadDeadline(absl::Now() - absl::Seconds(1)).ok());
    RunLoopUntil(
        loop, [&] { return rd.done.load(); }, absl::Seconds(10));
    ASSERT_TRUE(rd.done) << "round " << round
                         << ": the deadline never reached the read";
    EXPECT_TRUE(IsDeadlineExceeded(rd.got.status())) << rd.got.status();
    ASSERT_TRUE(p.r.SetReadDeadline(absl::InfiniteFuture()).ok());
  }
  ::close(dup_fd);
}

// Another thread moves the read deadline between past and future while
// reads wait: each read ends with IsDeadlineExceeded, never with the
// CancelledError of a destroyed loop.
TEST_F(LoopInFlightTest, ADeadlineFlippedFromAnotherThreadIsATimeout) {
  Loop loop;
  Pipe p = AdoptPipe(loop);
  std::atomic<bool> stop{false};
  std::thread flipper([&, r = p.r] {
    while (!stop) {
      EXPECT_TRUE(r.SetReadDeadline(absl::Now() - absl::Seconds(1)).ok());
      EXPECT_TRUE(r.SetReadDeadline(absl::Now() + absl::Hours(1)).ok());
    }
  });
  const absl::Time end = absl::Now() + absl::Seconds(2);
  int reads = 0;
  while (absl::Now() < end || reads < 50) {
    PendingRead rd;
    rd.Start(p.r);
    RunLoopUntil(loop, [&] { return rd.done.load(); });
    if (!rd.done || !IsDeadlineExceeded(rd.got.status())) {
      ADD_FAILURE() << "read " << reads << ": " << rd.got.status();
      break;
    }
    ++reads;
  }
  stop = true;
  flipper.join();
}

// Reads once into its own frame; never finishes unless data comes.
Task<void> ReadForever(AsyncFd fd) {
  char buf[16];
  (void)co_await fd.Read(absl::MakeSpan(buf));
}

// B destroys A, which waits in a read of `fd`, then reads `fd` itself in the
// same turn: the FD's read lock was released with A.
Task<void> DestroyThenRead(AsyncFd fd, std::coroutine_handle<>* a,
                           absl::Status* second, std::string* got, bool* done) {
  a->destroy();
  *a = nullptr;
  char buf[16];
  (void)fd.SetReadDeadline(absl::Now() + absl::Seconds(10));
  absl::StatusOr<size_t> n = co_await fd.Read(absl::MakeSpan(buf));
  *second = n.status();
  if (n.ok()) got->assign(buf, *n);
  *done = true;
}

TEST_F(LoopInFlightTest, ADestroyedReaderFreesTheFdInTheSameTurn) {
  Loop loop;
  Pipe p = AdoptPipe(loop);
  std::coroutine_handle<> a = ReadForever(p.r).Release();
  loop.Post([a] { a.resume(); });
  Turns(loop);
  ASSERT_FALSE(a.done());
  absl::Status second = absl::UnknownError("not run");
  std::string got;
  bool done = false;
  loop.Spawn(DestroyThenRead(p.r, &a, &second, &got, &done));
  Turns(loop);
  ASSERT_FALSE(done) << second;  // waits for data (not IsBusy at once)
  ASSERT_TRUE(p.w.fd().Write(std::string_view("hi")).ok());
  RunLoopUntil(loop, [&] { return done; });
  EXPECT_TRUE(second.ok()) << second;
  EXPECT_EQ(got, "hi");
}

// The callback form, started from the loop thread right after the
// destruction.
TEST_F(LoopInFlightTest, ACallbackReadRightAfterADestroyedReaderIsNotBusy) {
  Loop loop;
  Pipe p = AdoptPipe(loop);
  std::coroutine_handle<> a = ReadForever(p.r).Release();
  loop.Post([a] { a.resume(); });
  Turns(loop);
  PendingRead rd;
  loop.Post([&] {
    a.destroy();
    rd.Start(p.r);
  });
  Turns(loop);
  ASSERT_FALSE(rd.done) << rd.got.status();
  ASSERT_TRUE(p.w.fd().Write(std::string_view("x")).ok());
  RunLoopUntil(loop, [&] { return rd.done.load(); });
  ASSERT_TRUE(rd.got.ok()) << rd.got.status();
  EXPECT_EQ(std::string_view(rd.buf, *rd.got), "x");
}

Task<void> AcceptForever(AsyncFd fd) { (void)co_await fd.Accept(); }

// Close first, then the coroutine whose accept completed in flight is
// destroyed (one loop turn): the abandoned operation drops the FD's last
// reference, and still frees what the kernel gave it (the connection is
// closed: FdLeakTest checks; the ring's operation is freed: LeakSanitizer).
TEST_F(LoopInFlightTest, AnAcceptAbandonedAfterCloseLeaksNothing) {
  Loop loop;
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(l, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "gopoll-inflight-" + std::to_string(getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  const socklen_t len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(l, 4), 0);
  absl::StatusOr<AsyncFd> lfd = loop.Adopt(l, FdKind::kNet);
  ASSERT_TRUE(lfd.ok());
  std::coroutine_handle<> a = AcceptForever(*lfd).Release();
  loop.Post([a] { a.resume(); });
  Turns(loop);
  ASSERT_FALSE(a.done());
  const int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(c, 0);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), len), 0);
  bool done = false;
  loop.Post([&] {
    EXPECT_TRUE(lfd->Close().ok());
    a.destroy();
    done = true;
  });
  RunLoopUntil(loop, [&] { return done; });
  Turns(loop);
  ::close(c);
}

// Pread on a stream is ESPIPE as pread(2) says, also where the loop would
// run it on the ring (which ignores a stream's offset): no byte is taken.
TEST_F(LoopInFlightTest, PreadOfAPipeIsESPIPEAndTakesNothing) {
  Loop loop;
  Pipe p = AdoptPipe(loop);
  ASSERT_TRUE(p.w.fd().Write(std::string_view("ab")).ok());
  char buf[4];
  absl::Status st = absl::UnknownError("not run");
  bool done = false;
  p.r.AsyncPread(absl::MakeSpan(buf), 0, [&](absl::StatusOr<size_t> n) {
    st = n.status();
    done = true;
  });
  RunLoopUntil(loop, [&] { return done; });
  EXPECT_EQ(OsErrorCode(st), ESPIPE) << st;
  absl::StatusOr<size_t> n =
      testing::ReadOnLoop(loop, p.r, absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string_view(buf, *n), "ab");
}

Task<void> AcceptAndConnect(AsyncFd fd, absl::Status* accept,
                            absl::Status* connect, bool* done) {
  *accept = (co_await fd.Accept()).status();
  SockAddr addr;
  addr.len = sizeof(sockaddr_in);
  *connect = co_await fd.Connect(addr);
  *done = true;
}

// Socket operations on a pipe: InvalidArgument, as the blocking FD says.
TEST_F(LoopInFlightTest, SocketOperationsOnANonSocketAreInvalidArguments) {
  Loop loop;
  Pipe p = AdoptPipe(loop);
  absl::Status accept_cb = absl::UnknownError("not run");
  absl::Status connect_cb = absl::UnknownError("not run");
  int delivered = 0;
  p.r.AsyncAccept([&](absl::StatusOr<AsyncFd> c) {
    accept_cb = c.status();
    ++delivered;
  });
  SockAddr addr;
  addr.len = sizeof(sockaddr_in);
  p.w.AsyncConnect(addr, [&](absl::Status s) {
    connect_cb = s;
    ++delivered;
  });
  absl::Status accept_co, connect_co;
  bool done = false;
  loop.Spawn(AcceptAndConnect(p.r, &accept_co, &connect_co, &done));
  RunLoopUntil(loop, [&] { return delivered == 2 && done; });
  const absl::Status blocking = p.r.fd().Accept().status();
  EXPECT_EQ(blocking.code(), absl::StatusCode::kInvalidArgument) << blocking;
  for (const absl::Status& s : {accept_cb, connect_cb, accept_co, connect_co}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  }
  EXPECT_EQ(accept_cb.message(), blocking.message());
}

// An empty address: InvalidArgument before any system call, both forms.
TEST_F(LoopInFlightTest, ConnectToAnEmptyAddressIsAnInvalidArgument) {
  Loop loop;
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  absl::StatusOr<AsyncFd> fd = loop.Adopt(s, FdKind::kNet);
  ASSERT_TRUE(fd.ok());
  absl::Status got = absl::UnknownError("not run");
  bool done = false;
  fd->AsyncConnect(SockAddr(), [&](absl::Status st) {
    got = st;
    done = true;
  });
  RunLoopUntil(loop, [&] { return done; });
  EXPECT_EQ(got.code(), absl::StatusCode::kInvalidArgument) << got;
}

}  // namespace
}  // namespace gopoll
