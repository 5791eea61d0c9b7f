// SPDX-License-Identifier: BSD-3-Clause
// AsyncFd's operations beyond Read/Write/Accept/Connect, on real OS objects
// (the conformance suite runs them on every form and transport): UDP
// SendTo/RecvFrom over IPv4 and IPv6 with the sender's address, descriptor
// passing with WriteMsg/ReadMsg (SCM_RIGHTS), Pread/Pwrite on a file (the
// file position never moves), a gather write larger than the socket buffer,
// and WaitReadable/WaitWritable driving the caller's own non-blocking calls
// (one pending wait per direction). Both forms; both Linux loop backends.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <coroutine>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "poll/loop/loop.h"
#include "poll/loop/task.h"
#include "tests/loop_test_util.h"
#include "tests/posix_test_util.h"

namespace gopoll {
namespace {

using ::gopoll::testing::FdLeakTest;

class LoopOpsTest : public FdLeakTest {
 protected:
  void SetUp() override {
    FdLeakTest::SetUp();
    loop_ = std::make_unique<Loop>();
  }
  void TearDown() override {
    loop_.reset();
    FdLeakTest::TearDown();
  }
  template <typename Pred>
  void RunUntil(Pred done) {
    testing::RunLoopUntil(*loop_, done);
  }
  AsyncFd Adopt(int fd, FdKind kind) {
    absl::StatusOr<AsyncFd> a = loop_->Adopt(fd, kind);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? *a : AsyncFd();
  }
  // A UDP socket bound to the loopback address of `family`, any port.
  AsyncFd Udp(int family, SockAddr* addr) {
    int s = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(s, 0);
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&ss);
      in->sin_family = AF_INET;
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*in);
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      in6->sin6_family = AF_INET6;
      in6->sin6_addr = in6addr_loopback;
      len = sizeof(*in6);
    }
    EXPECT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&ss), len), 0);
    len = sizeof(addr->storage);
    EXPECT_EQ(::getsockname(s, addr->get(), &len), 0);
    addr->len = len;
    return Adopt(s, FdKind::kNet);
  }
  std::unique_ptr<Loop> loop_;
};

bool SameAddr(const SockAddr& a, const SockAddr& b) {
  return a.len == b.len && std::memcmp(a.storage, b.storage, a.len) == 0;
}

Task<void> UdpRoundTrip(AsyncFd a, SockAddr b_addr, AsyncFd b, SockAddr a_addr,
                        bool* ok) {
  absl::StatusOr<size_t> w =
      co_await a.SendTo(std::string_view("ping"), b_addr, 0);
  EXPECT_TRUE(w.ok()) << w.status();
  char buf[16];
  absl::StatusOr<RecvFromResult> r =
      co_await b.RecvFrom(absl::MakeSpan(buf), 0);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) co_return;
  EXPECT_EQ(std::string(buf, r->n), "ping");
  EXPECT_TRUE(SameAddr(r->from, a_addr));
  // Echo back to where it came from; a 2-byte buffer truncates.
  w = co_await b.SendTo(std::string_view("pong"), r->from, 0);
  EXPECT_TRUE(w.ok()) << w.status();
  r = co_await a.RecvFrom(absl::MakeSpan(buf, 2), 0);
  EXPECT_TRUE(r.ok()) << r.status();
  if (r.ok()) {
    EXPECT_EQ(std::string(buf, r->n), "po");
  }
  *ok = true;
}

TEST_F(LoopOpsTest, UdpSendToRecvFromIPv4AndIPv6) {
  for (int family : {AF_INET, AF_INET6}) {
    SockAddr aa, ba;
    AsyncFd a = Udp(family, &aa);
    AsyncFd b = Udp(family, &ba);
    bool ok = false;
    loop_->Spawn(UdpRoundTrip(a, ba, b, aa, &ok));
    RunUntil([&] { return ok; });

    // Callback form; the address is copied by the call.
    bool done = false;
    {
      SockAddr to = ba;
      a.AsyncSendTo(std::string_view("cb"), to, 0,
                    [](absl::StatusOr<size_t> n) { EXPECT_TRUE(n.ok()); });
      to = SockAddr();  // the op must not read the caller's copy any more
    }
    char buf[8];
    b.AsyncRecvFrom(absl::MakeSpan(buf), 0,
                    [&](absl::StatusOr<RecvFromResult> r) {
                      ASSERT_TRUE(r.ok()) << r.status();
                      EXPECT_EQ(std::string(buf, r->n), "cb");
                      EXPECT_TRUE(SameAddr(r->from, aa));
                      done = true;
                    });
    RunUntil([&] { return done; });
    ASSERT_TRUE(a.Close().ok());
    ASSERT_TRUE(b.Close().ok());
  }
}

TEST_F(LoopOpsTest, RecvFromDeadlineWhileWaiting) {
  SockAddr aa;
  AsyncFd a = Udp(AF_INET, &aa);
  ASSERT_TRUE(a.SetReadDeadline(absl::Now() + absl::Milliseconds(20)).ok());
  absl::Status st;
  bool done = false;
  char buf[4];
  a.AsyncRecvFrom(absl::MakeSpan(buf), 0,
                  [&](absl::StatusOr<RecvFromResult> r) {
                    st = r.status();
                    done = true;
                  });
  RunUntil([&] { return done; });
  EXPECT_TRUE(IsDeadlineExceeded(st)) << st;
  EXPECT_EQ(st.message(), "recvfrom: i/o timeout");
  ASSERT_TRUE(a.Close().ok());
}

// Control data carrying one descriptor (SCM_RIGHTS), for WriteMsg.
class RightsOob {
 public:
  explicit RightsOob(int fd) {
    cmsghdr* c = reinterpret_cast<cmsghdr*>(buf_);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  absl::Span<const char> span() const { return absl::MakeConstSpan(buf_); }

 private:
  alignas(cmsghdr) char buf_[CMSG_SPACE(sizeof(int))] = {};
};

// Descriptor passing: a pipe's write end travels over a unix socket.
TEST_F(LoopOpsTest, WriteMsgReadMsgPassDescriptors) {
  int s[2], p[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  AsyncFd a = Adopt(s[0], FdKind::kNet);
  AsyncFd b = Adopt(s[1], FdKind::kNet);
  RightsOob out_oob(p[1]);
  bool sent = false;
  b.AsyncWriteMsg(std::string_view("fd"), out_oob.span(), nullptr, 0,
                  [&](absl::StatusOr<size_t> n) {
                    EXPECT_TRUE(n.ok()) << n.status();
                    sent = true;
                  });
  RunUntil([&] { return sent; });
  ::close(p[1]);

  alignas(cmsghdr) char in_oob[CMSG_SPACE(sizeof(int))];
  char buf[8];
  int got = -1;
  bool done = false;
  loop_->Spawn([](AsyncFd a, absl::Span<char> buf, absl::Span<char> oob,
                  int* got, bool* done) -> Task<void> {
    absl::StatusOr<MsgResult> m = co_await a.ReadMsg(buf, oob, 0);
    EXPECT_TRUE(m.ok()) << m.status();
    if (m.ok()) {
      EXPECT_EQ(std::string(buf.data(), m->n), "fd");
      msghdr h{};
      h.msg_control = oob.data();
      h.msg_controllen = m->oobn;
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      EXPECT_NE(c, nullptr);
      if (c != nullptr && c->cmsg_type == SCM_RIGHTS) {
        std::memcpy(got, CMSG_DATA(c), sizeof(int));
      }
    }
    *done = true;
  }(a, absl::MakeSpan(buf), absl::MakeSpan(in_oob), &got, &done));
  RunUntil([&] { return done; });
  ASSERT_GE(got, 0);
  EXPECT_EQ(fcntl(got, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ASSERT_EQ(::write(got, "z", 1), 1);
  char z = 0;
  ASSERT_EQ(::read(p[0], &z, 1), 1);
  EXPECT_EQ(z, 'z');
  ::close(got);
  ::close(p[0]);
  ASSERT_TRUE(a.Close().ok());
  ASSERT_TRUE(b.Close().ok());
}

// A ReadMsg with no data buffer still gets the control data (a seqpacket
// message is truncated to nothing; its SCM_RIGHTS arrive), also where the
// loop runs the call on a helper thread (plan9_stub).
TEST_F(LoopOpsTest, ReadMsgWithoutADataBufferGetsTheControlData) {
  int s[2], p[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s), 0);
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  AsyncFd a = Adopt(s[0], FdKind::kNet);
  AsyncFd b = Adopt(s[1], FdKind::kNet);
  RightsOob out_oob(p[1]);
  absl::StatusOr<size_t> w =
      b.fd().WriteMsg(std::string_view("x"), out_oob.span(), nullptr, 0);
  ASSERT_TRUE(w.ok()) << w.status();
  ::close(p[1]);

  alignas(cmsghdr) char in_oob[CMSG_SPACE(sizeof(int))] = {};
  absl::StatusOr<MsgResult> m = absl::UnknownError("not run");
  bool done = false;
  a.AsyncReadMsg(absl::Span<char>(), absl::MakeSpan(in_oob), 0,
                 [&](absl::StatusOr<MsgResult> r) {
                   m = std::move(r);
                   done = true;
                 });
  RunUntil([&] { return done; });
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->n, 0u);
  EXPECT_NE(m->flags & MSG_TRUNC, 0);
  ASSERT_GT(m->oobn, 0u);
  msghdr h{};
  h.msg_control = in_oob;
  h.msg_controllen = m->oobn;
  cmsghdr* in = CMSG_FIRSTHDR(&h);
  ASSERT_NE(in, nullptr);
  ASSERT_EQ(in->cmsg_type, SCM_RIGHTS);
  int got = -1;
  std::memcpy(&got, CMSG_DATA(in), sizeof(int));
  ASSERT_GE(got, 0);
  ASSERT_EQ(::write(got, "z", 1), 1);
  char z = 0;
  ASSERT_EQ(::read(p[0], &z, 1), 1);
  EXPECT_EQ(z, 'z');
  ::close(got);
  ::close(p[0]);
  ASSERT_TRUE(a.Close().ok());
  ASSERT_TRUE(b.Close().ok());
}

TEST_F(LoopOpsTest, PreadPwriteNeverMoveThePosition) {
  char path[] = "/tmp/gopoll_loop_ops_XXXXXX";
  int f = mkstemp(path);
  ASSERT_GE(f, 0);
  ::unlink(path);
  AsyncFd file = Adopt(f, FdKind::kFile);
  bool done = false;
  file.AsyncPwrite(std::string_view("hello"), 10,
                   [&](absl::StatusOr<size_t> n) {
                     ASSERT_TRUE(n.ok()) << n.status();
                     EXPECT_EQ(*n, 5u);
                     done = true;
                   });
  RunUntil([&] { return done; });
  EXPECT_EQ(::lseek(f, 0, SEEK_CUR), 0);
  char buf[8] = {};
  done = false;
  loop_->Spawn(
      [](AsyncFd file, absl::Span<char> buf, bool* done) -> Task<void> {
        absl::StatusOr<size_t> n = co_await file.Pread(buf, 11);
        EXPECT_TRUE(n.ok()) << n.status();
        if (n.ok()) {
          EXPECT_EQ(std::string(buf.data(), *n), "ello");
        }
        // Past the end: EOF, as FD::Pread.
        n = co_await file.Pread(buf, 100);
        EXPECT_TRUE(IsEof(n.status())) << n.status();
        // A negative offset: the FD method's own check.
        n = co_await file.Pread(buf, -1);
        EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
        *done = true;
      }(file, absl::MakeSpan(buf), &done));
  RunUntil([&] { return done; });
  EXPECT_EQ(::lseek(f, 0, SEEK_CUR), 0);
  ASSERT_TRUE(file.Close().ok());
}

// A gather write much larger than the socket buffer: written completely
// (one op, many wakes), and read back intact.
TEST_F(LoopOpsTest, WriteVLargerThanTheSocketBuffer) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  AsyncFd a = Adopt(s[0], FdKind::kNet);
  AsyncFd b = Adopt(s[1], FdKind::kNet);
  std::string h(100, 'h'), body(3 << 20, 'b'), tail(7, 't');
  for (size_t i = 0; i < body.size(); i += 4096) body[i] = char('a' + i % 26);
  const std::string want = h + body + tail;
  bool written = false;
  const absl::Span<const char> bufs[] = {h, body, tail};
  b.AsyncWriteV(bufs, [&](absl::StatusOr<size_t> n) {
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, want.size());
    written = true;
  });
  std::string got;
  std::vector<char> buf(64 * 1024);
  bool reading = false;
  std::function<void()> next = [&] {
    reading = true;
    char* half = buf.data() + buf.size() / 2;
    const absl::Span<char> in[] = {absl::MakeSpan(buf.data(), buf.size() / 2),
                                   absl::MakeSpan(half, buf.size() / 2)};
    a.AsyncReadV(in, [&](absl::StatusOr<size_t> n) {
      reading = false;
      ASSERT_TRUE(n.ok()) << n.status();
      got.append(buf.data(), *n);
    });
  };
  RunUntil([&] {
    if (!reading && got.size() < want.size()) next();
    return written && got.size() >= want.size();
  });
  EXPECT_TRUE(got == want);
  ASSERT_TRUE(a.Close().ok());
  ASSERT_TRUE(b.Close().ok());
}

// What an embedded non-blocking library does: wait, then its own call.
TEST_F(LoopOpsTest, WaitReadableThenOwnNonBlockingCall) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  AsyncFd a = Adopt(s[0], FdKind::kNet);
  AsyncFd b = Adopt(s[1], FdKind::kNet);
  absl::Status first, second = absl::UnknownError("not run");
  bool done = false;
  a.AsyncWaitReadable([&](absl::Status st) {
    first = st;
    done = true;
  });
  // One pending wait per direction, like a read.
  a.AsyncWaitReadable([&](absl::Status st) { second = st; });
  loop_->RunOnce(absl::Milliseconds(10));
  // (Loops without a poller run the wait on a helper thread, where the
  // second waits for the first instead.)
  if (loop_->has_poller()) {
    EXPECT_TRUE(IsBusy(second)) << second;
  }
  EXPECT_FALSE(done);
  ASSERT_EQ(::write(s[1], "abc", 3), 3);
  RunUntil([&] { return done; });
  ASSERT_TRUE(first.ok()) << first;
  char buf[8];
  ssize_t n = ::recv(a.fd().sysfd(), buf, sizeof(buf), MSG_DONTWAIT);
  EXPECT_EQ(n, 3);
  // Nothing left: the caller's call would block; wait again, then the peer
  // hangs up: the wait ends so that the caller's call sees EOF.
  done = false;
  loop_->Spawn([](AsyncFd a, absl::Status* st, bool* done) -> Task<void> {
    *st = co_await a.WaitReadable();
    *done = true;
  }(a, &first, &done));
  loop_->RunOnce(absl::Milliseconds(10));
  EXPECT_FALSE(done);
  ASSERT_TRUE(b.Close().ok());
  RunUntil([&] { return done; });
  ASSERT_TRUE(first.ok()) << first;
  EXPECT_EQ(::recv(a.fd().sysfd(), buf, sizeof(buf), MSG_DONTWAIT), 0);
  // Writability: a fresh socket has room.
  absl::Status w = absl::UnknownError("not run");
  a.AsyncWaitWritable([&](absl::Status st) { w = st; });
  RunUntil([&] { return w.code() != absl::StatusCode::kUnknown; });
  EXPECT_TRUE(w.ok()) << w;
  ASSERT_TRUE(a.Close().ok());
}

Task<void> WaitReadableInto(AsyncFd fd, absl::Status* st) {
  *st = co_await fd.WaitReadable();
}

// A coroutine destroyed while its wait is pending (on io_uring: a poll in
// flight, cancelled) releases the FD at once: the next wait is not busy.
TEST_F(LoopOpsTest, DestroyedCoroutineReleasesItsWait) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  AsyncFd a = Adopt(s[0], FdKind::kNet);
  AsyncFd b = Adopt(s[1], FdKind::kNet);
  absl::Status st = absl::UnknownError("not run");
  std::coroutine_handle<> h = WaitReadableInto(a, &st).Release();
  loop_->Post([h] { h.resume(); });
  loop_->RunOnce(absl::Milliseconds(10));
  EXPECT_EQ(st.code(), absl::StatusCode::kUnknown) << "still waiting";
  h.destroy();
  ASSERT_EQ(::write(s[1], "x", 1), 1);
  absl::Status again = absl::UnknownError("not run");
  a.AsyncWaitReadable([&](absl::Status r) { again = r; });
  RunUntil([&] { return again.code() != absl::StatusCode::kUnknown; });
  EXPECT_TRUE(again.ok()) << again;
  EXPECT_EQ(st.code(), absl::StatusCode::kUnknown) << "never resumed";
  ASSERT_TRUE(a.Close().ok());
  ASSERT_TRUE(b.Close().ok());
}

}  // namespace
}  // namespace gopoll
