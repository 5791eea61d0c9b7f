// SPDX-License-Identifier: BSD-3-Clause
// The loop's read shortcut (PollDesc::read_drained): after a short read of a
// TCP socket, the epoll loop's next read waits for the next edge instead of
// a read(2) that would fail with EAGAIN. These cases are what lost data or
// EOF when an earlier form of the shortcut trusted every short read: each
// one starts with a short read (so that the next read may take the
// shortcut), then builds the scenario so that it arrives in one readiness
// edge (written before the loop polls): data and FIN in one edge, a FIN
// after the read, a pipe's writer closed with the last bytes, RST,
// shutdown(SHUT_WR), packets, datagrams and SCM_RIGHTS queued behind one
// edge, a blocking read, Dup, RawControl or WaitReadable between two loop
// reads, a deadline and Close while the shortcut waits; and the shortcut
// itself: one read(2) per round trip on a TCP socket. Both loop backends
// (the shortcut is epoll's; io_uring reads on the ring) and both forms.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "gtest/gtest.h"
#include "poll/loop/loop.h"
#include "tests/loop_test_util.h"
#include "tests/posix_test_util.h"

namespace gopoll {
namespace {

using ::gopoll::testing::FdLeakTest;

// A hang would otherwise take the 20 s default: these reads either come at
// once or never.
constexpr absl::Duration kLimit = absl::Seconds(5);

class LoopShortReadTest : public FdLeakTest,
                          public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    FdLeakTest::SetUp();
    loop_ = std::make_unique<Loop>();
  }
  void TearDown() override {
    loop_.reset();
    FdLeakTest::TearDown();
  }
  bool coroutine() const { return GetParam(); }

  AsyncFd Adopt(int fd, FdKind kind) {
    absl::StatusOr<AsyncFd> a = loop_->Adopt(fd, kind);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? *a : AsyncFd();
  }

  // What one read got; shared with its callback or coroutine, so a read
  // still pending when a failed check ends the test writes into live
  // memory when the loop cancels it.
  struct ReadState {
    char buf[64];
    absl::StatusOr<size_t> got = absl::UnknownError("not run");
    bool done = false;
    std::string data() const {
      return got.ok() ? std::string(buf, *got) : std::string();
    }
  };

  std::shared_ptr<ReadState> StartRead(AsyncFd fd) {
    auto st = std::make_shared<ReadState>();
    if (!coroutine()) {
      fd.AsyncRead(absl::MakeSpan(st->buf), [st](absl::StatusOr<size_t> n) {
        st->got = std::move(n);
        st->done = true;
      });
      return st;
    }
    loop_->Spawn([](AsyncFd fd, std::shared_ptr<ReadState> st) -> Task<void> {
      st->got = co_await fd.Read(absl::MakeSpan(st->buf));
      st->done = true;
    }(fd, st));
    return st;
  }

  std::shared_ptr<ReadState> Read(AsyncFd fd) {
    std::shared_ptr<ReadState> st = StartRead(fd);
    testing::RunLoopUntil(
        *loop_, [&] { return st->done; }, kLimit);
    return st;
  }

  // Starts a read of `r` that has to wait (the loop runs one round so that
  // it waits), runs `produce` while the loop does not poll, then runs the
  // loop until the read finished: all that `produce` did arrives in one
  // readiness edge.
  std::shared_ptr<ReadState> ReadAfter(AsyncFd r,
                                       const std::function<void()>& produce) {
    std::shared_ptr<ReadState> st = StartRead(r);
    loop_->RunOnce(absl::ZeroDuration());
    EXPECT_FALSE(st->done);
    produce();
    testing::RunLoopUntil(
        *loop_, [&] { return st->done; }, kLimit);
    return st;
  }
  std::string ReadDataAfter(AsyncFd r, const std::function<void()>& produce) {
    std::shared_ptr<ReadState> st = ReadAfter(r, produce);
    EXPECT_TRUE(st->got.ok()) << st->got.status();
    return st->data();
  }

  // A short read of one byte written to `peer`: from now on the next loop
  // read of `r` may take the shortcut (on epoll, TCP).
  void ShortRead(AsyncFd r, int peer) {
    EXPECT_EQ(ReadDataAfter(r, [&] { ASSERT_EQ(::write(peer, "x", 1), 1); }),
              "x");
  }

  void ExpectRead(AsyncFd r, const std::string& want) {
    std::shared_ptr<ReadState> st = Read(r);
    ASSERT_TRUE(st->got.ok()) << st->got.status();
    EXPECT_EQ(st->data(), want);
  }
  void ExpectEof(AsyncFd r) {
    std::shared_ptr<ReadState> st = Read(r);
    EXPECT_TRUE(IsEof(st->got.status())) << st->got.status();
  }

  // The loop collects whatever edge is pending, with no read waiting.
  void CollectEdges() {
    for (int i = 0; i < 3; ++i) loop_->RunOnce(absl::ZeroDuration());
  }

  std::unique_ptr<Loop> loop_;
};

INSTANTIATE_TEST_SUITE_P(Forms, LoopShortReadTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "Coroutine" : "Callback";
                         });

// A connected loopback TCP pair: {client, accepted}.
std::pair<int, int> TcpPair() {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(l, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(::listen(l, 4), 0);
  socklen_t len = sizeof(a);
  EXPECT_EQ(::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  int s = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  EXPECT_GE(s, 0);
  ::close(l);
  return {c, s};
}

// Waits until `fd` has bytes to read (loopback delivers at once; this only
// makes the order explicit).
void AwaitBytes(int fd) {
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
}

// --- Hang-ups ----------------------------------------------------------

TEST_P(LoopShortReadTest, TcpDataAndFinInOneEdgeAfterAShortRead) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  EXPECT_EQ(ReadDataAfter(r,
                          [&, c = c] {
                            ASSERT_EQ(::write(c, "abc", 3), 3);
                            ::close(c);
                          }),
            "abc");
  ExpectEof(r);
}

// The data and the FIN came before the read started (no read waiting when
// the loop collected them).
TEST_P(LoopShortReadTest, TcpDataAndFinBeforeTheNextReadStarts) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  ASSERT_EQ(::write(c, "abc", 3), 3);
  ::close(c);
  CollectEdges();
  ExpectRead(r, "abc");
  ExpectEof(r);
}

TEST_P(LoopShortReadTest, TcpFinAfterTheRead) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  EXPECT_EQ(
      ReadDataAfter(r, [&, c = c] { ASSERT_EQ(::write(c, "abc", 3), 3); }),
      "abc");
  // The read that follows waits for the edge (shortcut); the FIN brings it.
  std::shared_ptr<ReadState> st = ReadAfter(r, [&, c = c] { ::close(c); });
  EXPECT_TRUE(IsEof(st->got.status())) << st->got.status();
}

TEST_P(LoopShortReadTest, TcpShutdownWriteAfterAShortReadKeepsTheOtherWay) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  EXPECT_EQ(ReadDataAfter(r,
                          [&, c = c] {
                            ASSERT_EQ(::write(c, "abc", 3), 3);
                            ASSERT_EQ(::shutdown(c, SHUT_WR), 0);
                          }),
            "abc");
  ExpectEof(r);
  // Half-closed: the other direction still works.
  absl::StatusOr<size_t> w = r.fd().Write(std::string_view("pong"));
  ASSERT_TRUE(w.ok()) << w.status();
  char buf[8];
  AwaitBytes(c);
  EXPECT_EQ(::read(c, buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  ::close(c);
}

TEST_P(LoopShortReadTest, TcpResetAfterAShortRead) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  std::shared_ptr<ReadState> st = ReadAfter(r, [&, c = c] {
    ASSERT_EQ(::write(c, "abc", 3), 3);
    linger l{1, 0};  // close sends RST
    ASSERT_EQ(::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
    ::close(c);
  });
  // The bytes may or may not survive the reset; the reads end either way.
  std::string got;
  for (int i = 0; i < 4 && st->got.ok() && *st->got > 0; ++i) {
    got += st->data();
    st = Read(r);
  }
  EXPECT_TRUE(std::string("abc").starts_with(got)) << got;
  ASSERT_TRUE(st->done);
  EXPECT_TRUE(IsConnectionReset(st->got.status()) || IsEof(st->got.status()))
      << st->got.status();
}

TEST_P(LoopShortReadTest, PipeWriterClosedInTheSameEdgeAsTheLastBytes) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  AsyncFd r = Adopt(p[0], FdKind::kPipe);
  ShortRead(r, p[1]);
  EXPECT_EQ(ReadDataAfter(r,
                          [&] {
                            ASSERT_EQ(::write(p[1], "abc", 3), 3);
                            ::close(p[1]);
                          }),
            "abc");
  ExpectEof(r);
}

// --- Message, packet and control-data boundaries --------------------------

TEST_P(LoopShortReadTest, SeqpacketBurstBehindOneEdgeAfterAShortRead) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s), 0);
  AsyncFd r = Adopt(s[0], FdKind::kNet);
  ShortRead(r, s[1]);
  EXPECT_EQ(ReadDataAfter(r,
                          [&] {
                            ASSERT_EQ(::write(s[1], "one", 3), 3);
                            ASSERT_EQ(::write(s[1], "two", 3), 3);
                            ASSERT_EQ(::write(s[1], "three", 5), 5);
                          }),
            "one");
  ExpectRead(r, "two");
  ExpectRead(r, "three");
  ::close(s[1]);
}

TEST_P(LoopShortReadTest, DatagramBurstBehindOneEdgeAfterAShortRead) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, s), 0);
  AsyncFd r = Adopt(s[0], FdKind::kNet);
  ShortRead(r, s[1]);
  EXPECT_EQ(ReadDataAfter(r,
                          [&] {
                            ASSERT_EQ(::write(s[1], "one", 3), 3);
                            ASSERT_EQ(::write(s[1], "two", 3), 3);
                            ASSERT_EQ(::write(s[1], "three", 5), 5);
                          }),
            "one");
  ExpectRead(r, "two");
  ExpectRead(r, "three");
  ::close(s[1]);
}

TEST_P(LoopShortReadTest, PacketModePipeBurstBehindOneEdgeAfterAShortRead) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  AsyncFd r = Adopt(p[0], FdKind::kPipe);
  ShortRead(r, p[1]);
  // Only the writer's end is in packet mode: the reader cannot see it.
  ASSERT_EQ(fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_DIRECT), 0);
  EXPECT_EQ(ReadDataAfter(r,
                          [&] {
                            ASSERT_EQ(::write(p[1], "one", 3), 3);
                            ASSERT_EQ(::write(p[1], "two", 3), 3);
                          }),
            "one");
  ExpectRead(r, "two");
  ::close(p[1]);
}

TEST_P(LoopShortReadTest, ScmRightsBehindOneEdgeAfterAShortRead) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  AsyncFd r = Adopt(s[0], FdKind::kNet);
  ShortRead(r, s[1]);
  EXPECT_EQ(ReadDataAfter(r,
                          [&] {
                            int passed = ::dup(s[1]);
                            char data = 'a';
                            iovec iov{&data, 1};
                            alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))];
                            msghdr m{};
                            m.msg_iov = &iov;
                            m.msg_iovlen = 1;
                            m.msg_control = ctl;
                            m.msg_controllen = sizeof(ctl);
                            cmsghdr* cm = CMSG_FIRSTHDR(&m);
                            cm->cmsg_level = SOL_SOCKET;
                            cm->cmsg_type = SCM_RIGHTS;
                            cm->cmsg_len = CMSG_LEN(sizeof(int));
                            std::memcpy(CMSG_DATA(cm), &passed, sizeof(int));
                            ASSERT_EQ(::sendmsg(s[1], &m, 0), 1);
                            ::close(passed);
                            ASSERT_EQ(::write(s[1], "bc", 2), 2);
                          }),
            "a");
  ExpectRead(r, "bc");
  ::close(s[1]);
}

TEST_P(LoopShortReadTest, TcpUrgentMarkAfterAShortRead) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  EXPECT_EQ(ReadDataAfter(r,
                          [&, c = c] {
                            ASSERT_EQ(::send(c, "ab", 2, 0), 2);
                            ASSERT_EQ(::send(c, "!", 1, MSG_OOB), 1);
                            ASSERT_EQ(::send(c, "de", 2, 0), 2);
                          }),
            "ab");
  ExpectRead(r, "de");
  ::close(c);
}

// --- Other readers of the same FD between two loop reads ----------------
// Each consumes the edge that announced "abcdef" and leaves "def": no edge
// comes for it, so the loop's next read must try first.

TEST_P(LoopShortReadTest, BlockingReadBetweenLoopReads) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  ASSERT_EQ(::write(c, "abcdef", 6), 6);
  CollectEdges();  // the edge waits in the FD's slot as "ready"
  char buf[3];
  absl::StatusOr<size_t> n = r.fd().Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "abc");
  ExpectRead(r, "def");
  ::close(c);
}

TEST_P(LoopShortReadTest, DupReadBetweenLoopReads) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  ASSERT_EQ(::write(c, "abcdef", 6), 6);
  CollectEdges();
  absl::StatusOr<Sysfd> d = r.fd().Dup();
  ASSERT_TRUE(d.ok()) << d.status();
  char buf[3];
  AwaitBytes(*d);
  EXPECT_EQ(::read(*d, buf, 3), 3);
  ::close(*d);
  ExpectRead(r, "def");
  ::close(c);
}

TEST_P(LoopShortReadTest, RawControlReadBetweenLoopReads) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  ASSERT_EQ(::write(c, "abcdef", 6), 6);
  CollectEdges();
  ssize_t got = -1;
  char buf[3];
  ASSERT_TRUE(
      r.fd().RawControl([&](Sysfd fd) { got = ::read(fd, buf, 3); }).ok());
  EXPECT_EQ(got, 3);
  ExpectRead(r, "def");
  ::close(c);
}

TEST_P(LoopShortReadTest, WaitReadableThenOwnReadBetweenLoopReads) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  absl::Status ready = absl::UnknownError("not run");
  bool done = false;
  r.AsyncWaitReadable([&](absl::Status st) {
    ready = st;
    done = true;
  });
  loop_->RunOnce(absl::ZeroDuration());
  ASSERT_EQ(::write(c, "abcdef", 6), 6);
  testing::RunLoopUntil(
      *loop_, [&] { return done; }, kLimit);
  ASSERT_TRUE(ready.ok()) << ready;
  char buf[3];
  // The pattern of code that makes its own calls (async_fd.h).
  EXPECT_EQ(::read(r.fd().sysfd(), buf, 3), 3);
  ExpectRead(r, "def");
  ::close(c);
}

// --- Deadlines and Close while the shortcut waits ------------------------

TEST_P(LoopShortReadTest, DeadlineEndsAReadThatWaitsAfterAShortRead) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  ASSERT_TRUE(
      r.fd().SetReadDeadline(absl::Now() + absl::Milliseconds(50)).ok());
  std::shared_ptr<ReadState> st = Read(r);
  EXPECT_TRUE(IsDeadlineExceeded(st->got.status())) << st->got.status();
  // Extended: the next read gets what comes.
  ASSERT_TRUE(r.fd().SetReadDeadline(absl::InfiniteFuture()).ok());
  EXPECT_EQ(
      ReadDataAfter(r, [&, c = c] { ASSERT_EQ(::write(c, "abc", 3), 3); }),
      "abc");
  ::close(c);
}

TEST_P(LoopShortReadTest, CloseEndsAReadThatWaitsAfterAShortRead) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  std::shared_ptr<ReadState> st = StartRead(r);
  loop_->RunOnce(absl::ZeroDuration());
  EXPECT_FALSE(st->done);
  std::thread closer([r] { EXPECT_TRUE(r.Close().ok()); });
  testing::RunLoopUntil(
      *loop_, [&] { return st->done; }, kLimit);
  closer.join();
  EXPECT_TRUE(IsClosing(st->got.status())) << st->got.status();
  ::close(c);
}

// --- The shortcut itself ---------------------------------------------------

// read(2) calls of the calling thread so far (/proc/thread-self/io's syscr;
// reading the file is one more).
int64_t ReadCalls() {
  int fd = ::open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[512];
  ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* p = std::strstr(buf, "syscr:");
  return p == nullptr ? -1 : std::strtoll(p + 6, nullptr, 10);
}

// A TCP ping-pong through the loop: every round trip's read waits for its
// edge, then reads once. On epoll that is one read(2) per round trip
// (without the shortcut, two: the first fails with EAGAIN); on io_uring
// the reads are ring operations (no read(2) at all).
TEST_P(LoopShortReadTest, OneReadCallPerRoundTripOnTcp) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  ShortRead(r, c);
  constexpr int kRounds = 50;
  const int64_t before = ReadCalls();
  ASSERT_GE(before, 0) << "no /proc/thread-self/io";
  for (int i = 0; i < kRounds; ++i) {
    std::shared_ptr<ReadState> st = StartRead(r);
    loop_->RunOnce(absl::ZeroDuration());
    ASSERT_FALSE(st->done);
    ASSERT_EQ(::write(c, "y", 1), 1);
    testing::RunLoopUntil(
        *loop_, [&] { return st->done; }, kLimit);
    ASSERT_TRUE(st->got.ok()) << st->got.status();
    ASSERT_EQ(st->data(), "y");
  }
  const int64_t reads = ReadCalls() - before - 1;
  if (std::string(loop_->backend_name()) == "epoll") {
    EXPECT_EQ(reads, kRounds);
  } else {
    EXPECT_LE(reads, kRounds);
  }
  ::close(c);
}

// Pipes keep the attempt (a writer may put its end in packet mode unseen):
// two read(2) per round trip on epoll.
TEST_P(LoopShortReadTest, PipeKeepsTheAttemptOnEpoll) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  AsyncFd r = Adopt(p[0], FdKind::kPipe);
  ShortRead(r, p[1]);
  constexpr int kRounds = 20;
  const int64_t before = ReadCalls();
  ASSERT_GE(before, 0) << "no /proc/thread-self/io";
  for (int i = 0; i < kRounds; ++i) {
    std::shared_ptr<ReadState> st = StartRead(r);
    loop_->RunOnce(absl::ZeroDuration());
    ASSERT_FALSE(st->done);
    ASSERT_EQ(::write(p[1], "y", 1), 1);
    testing::RunLoopUntil(
        *loop_, [&] { return st->done; }, kLimit);
    ASSERT_EQ(st->data(), "y");
  }
  const int64_t reads = ReadCalls() - before - 1;
  if (std::string(loop_->backend_name()) == "epoll") {
    EXPECT_EQ(reads, 2 * kRounds);
  } else {
    EXPECT_LE(reads, kRounds);
  }
  ::close(p[1]);
}

}  // namespace
}  // namespace gopoll
