// SPDX-License-Identifier: BSD-3-Clause
// The event loop never loses an event that came in the same readiness edge
// as data it consumed, and never merges or drops messages: a hang-up
// reported once together with the last bytes, two datagrams or packets
// queued behind one edge, a read that stops at SCM_RIGHTS control data or at
// TCP's urgent mark. Each case is built deterministically: the operation is
// armed, everything is written (and the peer closed) before the loop polls,
// so the whole scenario arrives in one edge. Callback and coroutine forms;
// epoll, and (--config=plan9_stub) helper threads.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

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

class LoopEdgesTest : public FdLeakTest,
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
  // that is still pending when a failed check ends the test writes into
  // live memory when the loop cancels it.
  struct ReadState {
    char buf[64];
    absl::StatusOr<size_t> got = absl::UnknownError("not run");
    bool done = false;
    std::string data() const {
      return got.ok() ? std::string(buf, *got) : std::string();
    }
  };

  // Starts one read of `fd` on the loop, callback or coroutine form.
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
  // it is armed), runs `produce` (writes, closes) while the loop does not
  // poll, then runs the loop until the read finished. All that `produce`
  // did is then reported in one readiness edge.
  std::string ReadAfter(AsyncFd r, const std::function<void()>& produce) {
    std::shared_ptr<ReadState> st = StartRead(r);
    loop_->RunOnce(absl::ZeroDuration());
    EXPECT_FALSE(st->done);
    produce();
    testing::RunLoopUntil(
        *loop_, [&] { return st->done; }, kLimit);
    EXPECT_TRUE(st->got.ok()) << st->got.status();
    return st->data();
  }

  // The next read of `r` returns `want`.
  void ExpectRead(AsyncFd r, const std::string& want) {
    std::shared_ptr<ReadState> st = Read(r);
    ASSERT_TRUE(st->got.ok()) << st->got.status();
    EXPECT_EQ(st->data(), want);
  }

  // The next read of `r` ends with EOF (not waiting for an edge that
  // already came).
  void ExpectEof(AsyncFd r) {
    std::shared_ptr<ReadState> st = Read(r);
    EXPECT_TRUE(IsEof(st->got.status())) << st->got.status();
  }

  std::unique_ptr<Loop> loop_;
};

INSTANTIATE_TEST_SUITE_P(Forms, LoopEdgesTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "Coroutine" : "Callback";
                         });

int Listen(sockaddr_in* a) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(s, 0);
  *a = {};
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(s, reinterpret_cast<sockaddr*>(a), sizeof(*a)), 0);
  EXPECT_EQ(::listen(s, 4), 0);
  socklen_t len = sizeof(*a);
  EXPECT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(a), &len), 0);
  return s;
}

// A connected loopback TCP pair: {client, accepted}.
std::pair<int, int> TcpPair() {
  sockaddr_in a;
  int l = Listen(&a);
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  int s = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  EXPECT_GE(s, 0);
  ::close(l);
  return {c, s};
}

// --- A hang-up in the same edge as the last data ---------------------

TEST_P(LoopEdgesTest, PipeEofInTheSameEdgeAsTheLastData) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  AsyncFd r = Adopt(p[0], FdKind::kPipe);
  EXPECT_EQ(ReadAfter(r,
                      [&] {
                        ASSERT_EQ(::write(p[1], "abc", 3), 3);
                        ::close(p[1]);
                      }),
            "abc");
  ExpectEof(r);
}

TEST_P(LoopEdgesTest, UnixStreamEofInTheSameEdgeAsTheLastData) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  AsyncFd r = Adopt(s[0], FdKind::kNet);
  EXPECT_EQ(ReadAfter(r,
                      [&] {
                        ASSERT_EQ(::write(s[1], "abc", 3), 3);
                        ::close(s[1]);
                      }),
            "abc");
  ExpectEof(r);
}

TEST_P(LoopEdgesTest, TcpEofInTheSameEdgeAsTheLastData) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  EXPECT_EQ(ReadAfter(r,
                      [&, c = c] {
                        ASSERT_EQ(::write(c, "abc", 3), 3);
                        ::close(c);
                      }),
            "abc");
  ExpectEof(r);
}

// A write that ended short (the peer stopped reading), then the peer went
// away: the next write fails at once instead of waiting for an edge.
TEST_P(LoopEdgesTest, WriteAfterShortWriteAndPeerCloseFails) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  AsyncFd w = Adopt(s[0], FdKind::kNet);
  struct WriteState {
    std::string data;
    absl::StatusOr<size_t> got = absl::UnknownError("not run");
    bool done = false;
  };
  auto first = std::make_shared<WriteState>();
  first->data.assign(8 << 20, 'x');  // far more than the socket buffers
  w.AsyncWrite(first->data, [first](absl::StatusOr<size_t> n) {
    first->got = std::move(n);
    first->done = true;
  });
  loop_->RunOnce(absl::ZeroDuration());  // wrote what fits, now armed
  EXPECT_FALSE(first->done);
  ::close(s[1]);
  testing::RunLoopUntil(
      *loop_, [&] { return first->done; }, kLimit);
  EXPECT_EQ(OsErrorCode(first->got.status()), EPIPE) << first->got.status();
  // The hang-up edge was consumed by the first write.
  auto second = std::make_shared<WriteState>();
  second->data = "y";
  if (!coroutine()) {
    w.AsyncWrite(second->data, [second](absl::StatusOr<size_t> n) {
      second->got = std::move(n);
      second->done = true;
    });
  } else {
    loop_->Spawn([](AsyncFd w, std::shared_ptr<WriteState> st) -> Task<void> {
      st->got = co_await w.Write(st->data);
      st->done = true;
    }(w, second));
  }
  testing::RunLoopUntil(
      *loop_, [&] { return second->done; }, kLimit);
  EXPECT_EQ(OsErrorCode(second->got.status()), EPIPE) << second->got.status();
  EXPECT_NE(second->got.status().message().find("write"), std::string::npos)
      << second->got.status();
}

// --- Message and packet boundaries -----------------------------------

TEST_P(LoopEdgesTest, SeqpacketMessagesQueuedBehindOneEdge) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s), 0);
  AsyncFd r = Adopt(s[0], FdKind::kNet);
  EXPECT_EQ(ReadAfter(r,
                      [&] {
                        ASSERT_EQ(::write(s[1], "one", 3), 3);
                        ASSERT_EQ(::write(s[1], "two", 3), 3);
                      }),
            "one");
  ExpectRead(r, "two");
  ::close(s[1]);
}

TEST_P(LoopEdgesTest, DatagramsQueuedBehindOneEdge) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, s), 0);
  AsyncFd r = Adopt(s[0], FdKind::kNet);
  EXPECT_EQ(ReadAfter(r,
                      [&] {
                        ASSERT_EQ(::write(s[1], "one", 3), 3);
                        ASSERT_EQ(::write(s[1], "two", 3), 3);
                      }),
            "one");
  ExpectRead(r, "two");
  ::close(s[1]);
}

// Packet mode: each write is one packet and a read returns at most one, so
// a short read says nothing about what is left. The reader cannot even see
// the mode (O_DIRECT shows only on the write end, and a writer can switch
// it on later with fcntl).
TEST_P(LoopEdgesTest, PacketModePipeQueuedBehindOneEdge) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  ASSERT_EQ(fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_DIRECT), 0);
  AsyncFd r = Adopt(p[0], FdKind::kPipe);
  EXPECT_EQ(ReadAfter(r,
                      [&] {
                        ASSERT_EQ(::write(p[1], "one", 3), 3);
                        ASSERT_EQ(::write(p[1], "two", 3), 3);
                      }),
            "one");
  ExpectRead(r, "two");
  ::close(p[1]);
}

// A stream read stops after a message that carried descriptors.
TEST_P(LoopEdgesTest, UnixStreamReadStopsAtControlData) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  AsyncFd r = Adopt(s[0], FdKind::kNet);
  EXPECT_EQ(ReadAfter(r,
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
                        cmsghdr* c = CMSG_FIRSTHDR(&m);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof(int));
                        memcpy(CMSG_DATA(c), &passed, sizeof(int));
                        ASSERT_EQ(::sendmsg(s[1], &m, 0), 1);
                        ::close(passed);
                        ASSERT_EQ(::write(s[1], "bc", 2), 2);
                      }),
            "a");
  ExpectRead(r, "bc");
  ::close(s[1]);
}

// A TCP read stops at the urgent mark (the urgent byte itself is taken out
// of the stream): the rest arrived in the same edge.
TEST_P(LoopEdgesTest, TcpReadStopsAtTheUrgentMark) {
  auto [c, s] = TcpPair();
  AsyncFd r = Adopt(s, FdKind::kNet);
  EXPECT_EQ(ReadAfter(r,
                      [&, c = c] {
                        ASSERT_EQ(::send(c, "ab", 2, 0), 2);
                        ASSERT_EQ(::send(c, "!", 1, MSG_OOB), 1);
                        ASSERT_EQ(::send(c, "de", 2, 0), 2);
                        // Loopback: all of it is queued at the receiver
                        // once send returned.
                      }),
            "ab");
  ExpectRead(r, "de");
  ::close(c);
}

}  // namespace
}  // namespace gopoll
