// SPDX-License-Identifier: BSD-3-Clause
// Go's internal/poll, os and net semantics, checked on the POSIX backends
// (epoll by default, plan9_stub with --config=plan9_stub): deadlines, Close,
// EOF, sockets, regular files, bad input. Every test checks for leaked
// descriptors.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>  // must coexist with namespace gopoll
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "poll/fd.h"
#include "tests/posix_test_util.h"
#include "tests/timing_window.h"

namespace gopoll::testing {
namespace {

using std::string_view_literals::operator""sv;

using FdSemantics = FdLeakTest;

// --- Reads, writes, EOF ------------------------------------------------

TEST_F(FdSemantics, PipeReadWriteAndEof) {
  FdPair p = MakePipe();
  ASSERT_TRUE(p.r->pollable());
  auto n = p.w->Write("hello"sv);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 5u);
  char buf[16];
  auto r = p.r->Read(absl::MakeSpan(buf));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::string(buf, *r), "hello");
  ASSERT_TRUE(p.w->Close().ok());
  r = p.r->Read(absl::MakeSpan(buf));
  EXPECT_TRUE(IsEof(r.status())) << r.status();
}

TEST_F(FdSemantics, ZeroByteReadReturnsAtOnce) {
  FdPair p = MakePipe();
  auto r = p.r->Read(absl::Span<char>());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 0u);
}

TEST_F(FdSemantics, ShortReadReturnedAsIs) {
  FdPair p = MakePipe();
  ASSERT_TRUE(p.w->Write("abc"sv).ok());
  char buf[64];
  auto r = p.r->Read(absl::MakeSpan(buf));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 3u);
}

TEST_F(FdSemantics, BlockedReadWakesOnData) {
  FdPair p = MakePipe();
  const pid_t self = ThreadId();
  std::thread t([&] {
    EXPECT_TRUE(WaitUntilBlocked(self));  // the read waits
    ASSERT_TRUE(p.w->Write("x"sv).ok());
  });
  char c;
  auto r = p.r->Read(absl::MakeSpan(&c, 1));
  t.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(c, 'x');
}

TEST_F(FdSemantics, LargeWriteLoopsUntilAllWritten) {
  FdPair p = MakePipe();
  std::string data(1 << 20, 'z');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i % 251);
  std::string got;
  std::thread reader([&] {
    char buf[8192];
    for (;;) {
      auto r = p.r->Read(absl::MakeSpan(buf));
      if (!r.ok()) {
        EXPECT_TRUE(IsEof(r.status())) << r.status();
        return;
      }
      got.append(buf, *r);
    }
  });
  size_t written = 0;
  auto n = p.w->Write(data, &written);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, data.size());
  EXPECT_EQ(written, data.size());
  ASSERT_TRUE(p.w->Close().ok());
  reader.join();
  EXPECT_EQ(got, data);
}

TEST_F(FdSemantics, WriteVChunksBeyondIovMax) {
  FdPair s = MakeSocketPair();
  std::vector<std::string> parts;
  std::vector<absl::Span<const char>> bufs;
  for (int i = 0; i < 3000; ++i) parts.push_back(std::to_string(i) + ",");
  std::string want;
  for (const auto& part : parts) {
    bufs.emplace_back(part);
    want += part;
  }
  std::string got;
  std::thread reader([&] {
    char buf[4096];
    while (got.size() < want.size()) {
      auto r = s.w->Read(absl::MakeSpan(buf));
      if (!r.ok()) return;
      got.append(buf, *r);
    }
  });
  auto n = s.r->WriteV(bufs);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, want.size());
  reader.join();
  EXPECT_EQ(got, want);
}

TEST_F(FdSemantics, ReadVScatters) {
  FdPair p = MakePipe();
  ASSERT_TRUE(p.w->Write("abcdef"sv).ok());
  char a[2], b[4];
  absl::Span<char> bufs[] = {absl::MakeSpan(a), absl::MakeSpan(b)};
  auto n = p.r->ReadV(bufs);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 6u);
  EXPECT_EQ(std::string(a, 2), "ab");
  EXPECT_EQ(std::string(b, 4), "cdef");
}

// --- Deadlines (os.TestPipeReadTimeout, net timeout tests) --------------

TEST_F(FdSemantics, PipeReadTimeout) {
  FdPair p = MakePipe();
  ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Milliseconds(1))).ok());
  char c;
  auto r = p.r->Read(absl::MakeSpan(&c, 1));
  EXPECT_TRUE(IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(FdSemantics, PastDeadlineFailsAtOnceEvenWithDataReady) {
  FdPair p = MakePipe();
  ASSERT_TRUE(p.w->Write("data"sv).ok());
  ASSERT_TRUE(p.r->SetReadDeadline(absl::Now() - absl::Seconds(1)).ok());
  char buf[8];
  for (int i = 0; i < 3; ++i) {
    auto r = p.r->Read(absl::MakeSpan(buf));
    EXPECT_TRUE(IsDeadlineExceeded(r.status())) << r.status();
  }
  // Extending the deadline makes the FD usable again; no data was lost.
  ASSERT_TRUE(p.r->SetReadDeadline(absl::InfiniteFuture()).ok());
  auto r = p.r->Read(absl::MakeSpan(buf));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::string(buf, *r), "data");
}

TEST_F(FdSemantics, ZeroTimeClearsDeadline) {
  FdPair p = MakePipe();
  ASSERT_TRUE(p.r->SetReadDeadline(absl::Now() - absl::Seconds(1)).ok());
  ASSERT_TRUE(p.r->SetReadDeadline(absl::Time()).ok());
  ASSERT_TRUE(p.w->Write("k"sv).ok());
  char c;
  EXPECT_TRUE(p.r->Read(absl::MakeSpan(&c, 1)).ok());
}

TEST_F(FdSemantics, DeadlineExtendedAfterItPassed) {
  FdPair p = MakePipe();
  ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Milliseconds(5))).ok());
  char c;
  EXPECT_TRUE(IsDeadlineExceeded(p.r->Read(absl::MakeSpan(&c, 1)).status()));
  ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Hours(1))).ok());
  const pid_t self = ThreadId();
  std::thread t([&] {
    EXPECT_TRUE(WaitUntilBlocked(self));  // the read waits
    ASSERT_TRUE(p.w->Write("y"sv).ok());
  });
  auto r = p.r->Read(absl::MakeSpan(&c, 1));
  t.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(c, 'y');
}

TEST_F(FdSemantics, DeadlineShortenedWhileBlocked) {
  FdPair p = MakePipe();
  ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Hours(1))).ok());
  const pid_t self = ThreadId();
  std::thread t([&] {
    EXPECT_TRUE(WaitUntilBlocked(self));  // the read waits
    ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Milliseconds(10))).ok());
  });
  char c;
  auto r = p.r->Read(absl::MakeSpan(&c, 1));
  t.join();
  EXPECT_TRUE(IsDeadlineExceeded(r.status())) << r.status();
}

TEST_F(FdSemantics, DeadlineSetToPastWhileBlocked) {
  FdPair p = MakePipe();
  const pid_t self = ThreadId();
  std::thread t([&] {
    EXPECT_TRUE(WaitUntilBlocked(self));  // the read waits
    ASSERT_TRUE(p.r->SetReadDeadline(absl::InfinitePast()).ok());
  });
  char c;
  auto r = p.r->Read(absl::MakeSpan(&c, 1));
  t.join();
  EXPECT_TRUE(IsDeadlineExceeded(r.status())) << r.status();
}

// A deadline extended while the read is blocked: the first deadline passes
// and the read keeps waiting, for the data that comes after it. The
// extension must land before the first deadline (a deadline that fired
// first is a correct timeout, not this case), so the extension is made as
// soon as the reader blocks; a round whose extension came too late (a slow
// thread start on a busy machine) is not judged and runs again with a
// later first deadline (timing_window.h).
TEST_F(FdSemantics, DeadlineExtendedWhileBlockedKeepsWaiting) {
  WithWideningWindow(absl::Milliseconds(300), [&](TimingRound& round) {
    FdPair p = MakePipe();
    const absl::Time first = In(round.window());
    ASSERT_TRUE(p.r->SetReadDeadline(first).ok());
    std::atomic<pid_t> tid{0};
    absl::StatusOr<size_t> r = absl::UnknownError("not run");
    char c;
    std::thread reader([&] {
      tid = ThreadId();
      r = p.r->Read(absl::MakeSpan(&c, 1));
    });
    while (tid.load() == 0) absl::SleepFor(absl::Microseconds(100));
    const bool blocked = WaitUntilBlocked(tid.load());
    ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Hours(1))).ok());
    const bool in_time = blocked && absl::Now() < first;
    // Past the first deadline, then the data.
    absl::SleepFor(first - absl::Now() + absl::Milliseconds(50));
    ASSERT_TRUE(p.w->Write("z"sv).ok());
    reader.join();
    if (!in_time) {
      round.TooSlow(blocked ? "the extension came after the deadline"
                            : "the reader was not seen blocked");
      return;
    }
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(c, 'z');
  });
}

TEST_F(FdSemantics, ReadAndWriteDeadlinesAreIndependent) {
  FdPair s = MakeSocketPair();
  ASSERT_TRUE(s.r->SetReadDeadline(absl::InfinitePast()).ok());
  // Writes are unaffected by the expired read deadline.
  ASSERT_TRUE(s.r->Write("w"sv).ok());
  char c;
  EXPECT_TRUE(IsDeadlineExceeded(s.r->Read(absl::MakeSpan(&c, 1)).status()));
  ASSERT_TRUE(s.r->SetReadDeadline(absl::InfiniteFuture()).ok());
  ASSERT_TRUE(s.r->SetWriteDeadline(absl::InfinitePast()).ok());
  EXPECT_TRUE(IsDeadlineExceeded(s.r->Write("w"sv).status()));
  ASSERT_TRUE(s.w->Write("r"sv).ok());
  auto r = s.r->Read(absl::MakeSpan(&c, 1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(c, 'r');
}

TEST_F(FdSemantics, SetDeadlineSetsBoth) {
  FdPair s = MakeSocketPair();
  ASSERT_TRUE(s.r->SetDeadline(absl::InfinitePast()).ok());
  char c;
  EXPECT_TRUE(IsDeadlineExceeded(s.r->Read(absl::MakeSpan(&c, 1)).status()));
  EXPECT_TRUE(IsDeadlineExceeded(s.r->Write("x"sv).status()));
}

TEST_F(FdSemantics, WriteDeadlineOnFullSocket) {
  FdPair s = MakeSocketPair();
  ASSERT_TRUE(s.r->SetWriteDeadline(In(absl::Milliseconds(20))).ok());
  std::string big(64 << 10, 'b');
  absl::Status st;
  size_t total = 0;
  for (int i = 0; i < 1000 && st.ok(); ++i) {
    size_t w = 0;
    st = s.r->Write(big, &w).status();
    total += w;
  }
  EXPECT_TRUE(IsDeadlineExceeded(st)) << st;
  EXPECT_GT(total, 0u);
}

TEST_F(FdSemantics, ManyReadersOneDeadline) {
  FdPair p = MakePipe();
  ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Milliseconds(30))).ok());
  std::atomic<int> timeouts{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&] {
      char c;
      auto r = p.r->Read(absl::MakeSpan(&c, 1));
      if (IsDeadlineExceeded(r.status())) ++timeouts;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(timeouts.load(), 8);
}

TEST_F(FdSemantics, RegularFileIsNotPollable) {
  char path[] = "/tmp/poll_fd_semantics_XXXXXX";
  int raw = mkstemp(path);
  ASSERT_GE(raw, 0);
  unlink(path);
  auto f = WrapFd(raw, FdKind::kFile);
  auto w = f->Write("0123456789"sv);
  ASSERT_TRUE(w.ok()) << w.status();
  auto st = f->SetReadDeadline(In(absl::Seconds(1)));
  if (!f->pollable()) {
    EXPECT_TRUE(IsNoDeadline(st)) << st;
  }
  char buf[4];
  auto r = f->Pread(absl::MakeSpan(buf), 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::string(buf, *r), "3456");
  auto off = f->Seek(0, SEEK_CUR);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, 10);  // Pread did not move the offset
  ASSERT_TRUE(f->Seek(8, SEEK_SET).ok());
  r = f->Read(absl::MakeSpan(buf));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::string(buf, *r), "89");
  EXPECT_TRUE(IsEof(f->Read(absl::MakeSpan(buf)).status()));
  auto fi = f->Fstat();
  ASSERT_TRUE(fi.ok());
  EXPECT_TRUE(fi->is_regular);
  EXPECT_EQ(fi->size, 10);
  ASSERT_TRUE(f->Pwrite("AB"sv, 0).ok());
  r = f->Pread(absl::MakeSpan(buf), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::string(buf, *r), "AB23");
  EXPECT_TRUE(f->Fsync().ok());
  EXPECT_TRUE(IsEof(f->Pread(absl::MakeSpan(buf), 100).status()));
}

// --- Close ---------------------------------------------------------------

TEST_F(FdSemantics, CloseUnblocksBlockedRead) {
  FdPair p = MakePipe();
  absl::Notification done;
  absl::Status got;
  std::atomic<pid_t> tid{0};
  std::thread t([&] {
    tid = ThreadId();
    char c;
    got = p.r->Read(absl::MakeSpan(&c, 1)).status();
    done.Notify();
  });
  while (tid.load() == 0) absl::SleepFor(absl::Microseconds(100));
  EXPECT_TRUE(WaitUntilBlocked(tid.load()));  // the read waits
  ASSERT_TRUE(p.r->Close().ok());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kHang));
  t.join();
  EXPECT_TRUE(IsClosing(got)) << got;
  EXPECT_FALSE(IsDeadlineExceeded(got));
}

TEST_F(FdSemantics, CloseWinsOverExpiredDeadline) {
  FdPair p = MakePipe();
  ASSERT_TRUE(p.r->SetReadDeadline(absl::InfinitePast()).ok());
  ASSERT_TRUE(p.r->Close().ok());
  char c;
  EXPECT_TRUE(IsClosing(p.r->Read(absl::MakeSpan(&c, 1)).status()));
}

TEST_F(FdSemantics, OperationsAfterCloseFail) {
  FdPair s = MakeSocketPair();
  ASSERT_TRUE(s.r->Close().ok());
  char c;
  EXPECT_TRUE(IsClosing(s.r->Read(absl::MakeSpan(&c, 1)).status()));
  EXPECT_TRUE(IsClosing(s.r->Write("x"sv).status()));
  EXPECT_TRUE(IsClosing(s.r->SetDeadline(In(absl::Seconds(1)))));
  EXPECT_TRUE(IsClosing(s.r->Close()));
  EXPECT_TRUE(IsClosing(s.r->Accept().status()));
  EXPECT_TRUE(IsClosing(s.r->RawControl([](Sysfd) {})));
  // Go's OpError texts: the operation, then the error; no payload text.
  auto st = s.r->Read(absl::MakeSpan(&c, 1)).status();
  EXPECT_EQ(st.message(), "read: use of closed network connection");
  EXPECT_EQ(st.ToString(),
            "FAILED_PRECONDITION: read: use of closed network connection");
  EXPECT_EQ(s.r->Write("x"sv).status().message(),
            "write: use of closed network connection");
  EXPECT_EQ(s.r->Accept().status().message(),
            "accept: use of closed network connection");
  EXPECT_EQ(s.r->Close().message(), "close: use of closed network connection");
  FdPair p = MakePipe();
  ASSERT_TRUE(p.r->Close().ok());
  EXPECT_EQ(p.r->Read(absl::MakeSpan(&c, 1)).status().message(),
            "read: use of closed file");
}

TEST_F(FdSemantics, TimeoutAndCloseWhileBlockedNameTheOperation) {
  FdPair s = MakeSocketPair();
  char c;
  ASSERT_TRUE(s.r->SetReadDeadline(In(absl::Milliseconds(20))).ok());
  absl::Status st = s.r->Read(absl::MakeSpan(&c, 1)).status();
  EXPECT_TRUE(IsDeadlineExceeded(st)) << st;
  EXPECT_EQ(st.ToString(), "DEADLINE_EXCEEDED: read: i/o timeout");
  // An expired deadline fails the next call at once, with the same text.
  st = s.r->ReadV({absl::MakeSpan(&c, 1)}).status();
  EXPECT_EQ(st.message(), "readv: i/o timeout");
  ASSERT_TRUE(s.r->SetReadDeadline(absl::InfiniteFuture()).ok());
  const pid_t self = ThreadId();
  std::thread closer([&] {
    EXPECT_TRUE(WaitUntilBlocked(self));  // the read waits
    EXPECT_TRUE(s.r->Close().ok());
  });
  st = s.r->Read(absl::MakeSpan(&c, 1)).status();
  closer.join();
  EXPECT_TRUE(IsClosing(st)) << st;
  EXPECT_EQ(st.message(), "read: use of closed network connection");
}

TEST_F(FdSemantics, DescriptorNotReleasedWhileOperationRuns) {
  FdPair p = MakePipe();
  const int num = static_cast<int>(p.r->sysfd());
  absl::Notification inside, close_started;
  std::atomic<bool> valid_during_close{false};
  std::thread op([&] {
    absl::Status s = p.r->RawControl([&](Sysfd fd) {
      inside.Notify();
      close_started.WaitForNotification();
      absl::SleepFor(absl::Milliseconds(20));
      valid_during_close = fcntl(static_cast<int>(fd), F_GETFD) != -1;
    });
    EXPECT_TRUE(s.ok()) << s;
  });
  inside.WaitForNotification();
  std::thread closer([&] {
    close_started.Notify();
    EXPECT_TRUE(p.r->Close().ok());
    // Close returned: the descriptor is gone (pollable FDs wait).
    EXPECT_EQ(fcntl(num, F_GETFD), -1);
  });
  op.join();
  closer.join();
  EXPECT_TRUE(valid_during_close.load());
}

// --- Sockets -------------------------------------------------------------

std::unique_ptr<FD> Listen(int family, SockAddr* addr) {
  int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(s, 0);
  if (family == AF_INET) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    addr->Set(&a, len);
  } else {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    // Abstract socket: no file to clean up.
    std::string name = "poll_test_" + std::to_string(getpid()) + "_" +
                       std::to_string(reinterpret_cast<uintptr_t>(addr));
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    socklen_t len = offsetof(sockaddr_un, sun_path) + 1 + name.size();
    EXPECT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), len), 0);
    addr->Set(&a, len);
  }
  EXPECT_EQ(listen(s, 16), 0);
  return WrapFd(s, FdKind::kNet);
}

void AcceptConnectEcho(int family) {
  SockAddr addr;
  auto ln = Listen(family, &addr);
  auto cl = WrapFd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), FdKind::kNet);
  std::thread server([&] {
    auto a = ln->Accept();
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_GT(a->peer.len, 0u);
    int fl = fcntl(static_cast<int>(a->sysfd), F_GETFD);
    EXPECT_TRUE(fl & FD_CLOEXEC);
    auto c = WrapFd(static_cast<int>(a->sysfd), FdKind::kNet);
    char buf[64];
    for (;;) {
      auto r = c->Read(absl::MakeSpan(buf));
      if (!r.ok()) {
        EXPECT_TRUE(IsEof(r.status())) << r.status();
        break;
      }
      ASSERT_TRUE(c->Write(absl::MakeConstSpan(buf, *r)).ok());
    }
  });
  ASSERT_TRUE(cl->Connect(addr).ok());
  ASSERT_TRUE(cl->Write("ping"sv).ok());
  char buf[4];
  size_t got = 0;
  while (got < 4) {
    auto r = cl->Read(absl::MakeSpan(buf + got, 4 - got));
    ASSERT_TRUE(r.ok()) << r.status();
    got += *r;
  }
  EXPECT_EQ(std::string(buf, 4), "ping");
  ASSERT_TRUE(cl->Shutdown(SHUT_WR).ok());
  EXPECT_TRUE(IsEof(cl->Read(absl::MakeSpan(buf)).status()));
  server.join();
}

TEST_F(FdSemantics, TcpLoopbackAcceptConnectEcho) {
  AcceptConnectEcho(AF_INET);
}
TEST_F(FdSemantics, UnixAcceptConnectEcho) { AcceptConnectEcho(AF_UNIX); }

TEST_F(FdSemantics, AcceptDeadlineAndClose) {
  SockAddr addr;
  auto ln = Listen(AF_INET, &addr);
  ASSERT_TRUE(ln->SetReadDeadline(In(absl::Milliseconds(10))).ok());
  EXPECT_TRUE(IsDeadlineExceeded(ln->Accept().status()));
  ASSERT_TRUE(ln->SetReadDeadline(absl::InfiniteFuture()).ok());
  absl::Status got;
  std::atomic<pid_t> tid{0};
  std::thread t([&] {
    tid = ThreadId();
    got = ln->Accept().status();
  });
  while (tid.load() == 0) absl::SleepFor(absl::Microseconds(100));
  EXPECT_TRUE(WaitUntilBlocked(tid.load()));  // the accept waits
  ASSERT_TRUE(ln->Close().ok());
  t.join();
  EXPECT_TRUE(IsClosing(got)) << got;
}

TEST_F(FdSemantics, ConnectRefused) {
  SockAddr addr;
  {
    auto ln = Listen(AF_INET, &addr);  // take a free port, then close it
  }
  auto cl =
      WrapFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), FdKind::kNet);
  absl::Status s = cl->Connect(addr);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(OsErrorCode(s), ECONNREFUSED) << s;
}

TEST_F(FdSemantics, ResetIsAnErrorNotEof) {
  SockAddr addr;
  auto ln = Listen(AF_INET, &addr);
  auto cl =
      WrapFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), FdKind::kNet);
  ASSERT_TRUE(cl->Connect(addr).ok());
  auto a = ln->Accept();
  ASSERT_TRUE(a.ok());
  auto srv = WrapFd(static_cast<int>(a->sysfd), FdKind::kNet);
  ASSERT_TRUE(srv->RawControl([](Sysfd fd) {
                   linger l{1, 0};  // close sends RST
                   setsockopt(static_cast<int>(fd), SOL_SOCKET, SO_LINGER, &l,
                              sizeof(l));
                 })
                  .ok());
  ASSERT_TRUE(srv->Close().ok());
  char c;
  auto r = cl->Read(absl::MakeSpan(&c, 1));
  EXPECT_FALSE(IsEof(r.status())) << r.status();
  EXPECT_EQ(OsErrorCode(r.status()), ECONNRESET) << r.status();
}

// Control data passing descriptor `fd` with SCM_RIGHTS.
void PutRights(char (&ctl)[CMSG_SPACE(sizeof(int))], int fd) {
  cmsghdr* cm = reinterpret_cast<cmsghdr*>(ctl);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &fd, sizeof(int));
}

TEST_F(FdSemantics, ReadMsgWithControlData) {
  FdPair s = MakeSocketPair();
  // Pass a descriptor with SCM_RIGHTS.
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  PutRights(ctl, p[0]);
  auto w =
      s.w->WriteMsg("m"sv, absl::MakeConstSpan(ctl, sizeof(ctl)), nullptr, 0);
  ASSERT_TRUE(w.ok()) << w.status();
  close(p[0]);
  alignas(cmsghdr) char rctl[CMSG_SPACE(sizeof(int))] = {};
  char buf[4];
  auto m =
      s.r->ReadMsg(absl::MakeSpan(buf), absl::MakeSpan(rctl, sizeof(rctl)), 0);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->n, 1u);
  EXPECT_EQ(buf[0], 'm');
  ASSERT_GT(m->oobn, 0u);
  int passed;
  std::memcpy(&passed, CMSG_DATA(reinterpret_cast<cmsghdr*>(rctl)),
              sizeof(int));
  EXPECT_TRUE(fcntl(passed, F_GETFD) & FD_CLOEXEC);
  close(passed);
  close(p[1]);
}

// A seqpacket message with descriptors but no bytes is a message, not EOF:
// its descriptors must reach the caller (and not leak). EOF comes after.
TEST_F(FdSemantics, ReadMsgZeroBytesWithDescriptorsIsNotEof) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  auto r = WrapFd(sv[0], FdKind::kNet);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  PutRights(ctl, p[0]);
  msghdr h{};
  h.msg_control = ctl;
  h.msg_controllen = sizeof(ctl);
  ASSERT_EQ(sendmsg(sv[1], &h, 0), 0) << errno;
  close(p[0]);
  alignas(cmsghdr) char rctl[CMSG_SPACE(sizeof(int))] = {};
  char buf[4];
  auto m =
      r->ReadMsg(absl::MakeSpan(buf), absl::MakeSpan(rctl, sizeof(rctl)), 0);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->n, 0u);
  ASSERT_GT(m->oobn, 0u);
  int passed = -1;
  std::memcpy(&passed, CMSG_DATA(reinterpret_cast<cmsghdr*>(rctl)),
              sizeof(int));
  EXPECT_EQ(fcntl(passed, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  close(passed);
  close(p[1]);
  close(sv[1]);
  m = r->ReadMsg(absl::MakeSpan(buf), absl::MakeSpan(rctl, sizeof(rctl)), 0);
  EXPECT_TRUE(IsEof(m.status())) << m.status();
}

TEST_F(FdSemantics, DatagramRecvFromSendToAndZeroLengthIsNotEof) {
  auto mk = [] {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    return s;
  };
  auto a = WrapFd(mk(), FdKind::kNet);
  auto b = WrapFd(mk(), FdKind::kNet);
  EXPECT_FALSE(a->zero_read_is_eof());
  SockAddr baddr;
  socklen_t len = sizeof(baddr.storage);
  getsockname(static_cast<int>(b->sysfd()), baddr.get(), &len);
  baddr.len = len;
  ASSERT_TRUE(a->SendTo("dgram"sv, baddr, 0).ok());
  ASSERT_TRUE(a->SendTo(absl::string_view(), baddr, 0).ok());
  char buf[16];
  auto r = b->RecvFrom(absl::MakeSpan(buf), 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::string(buf, r->n), "dgram");
  EXPECT_GT(r->from.len, 0u);
  r = b->RecvFrom(absl::MakeSpan(buf), 0);
  ASSERT_TRUE(r.ok()) << r.status();  // an empty datagram, not EOF
  EXPECT_EQ(r->n, 0u);
  ASSERT_TRUE(b->SetReadDeadline(In(absl::Milliseconds(5))).ok());
  EXPECT_TRUE(IsDeadlineExceeded(b->RecvFrom(absl::MakeSpan(buf), 0).status()));
}

TEST_F(FdSemantics, RawReadWaitsForReadiness) {
  FdPair p = MakePipe();
  const pid_t self = ThreadId();
  std::thread t([&] {
    EXPECT_TRUE(WaitUntilBlocked(self));  // RawRead waits
    ASSERT_TRUE(p.w->Write("q"sv).ok());
  });
  int calls = 0;
  char c = 0;
  absl::Status s = p.r->RawRead([&](Sysfd fd) {
    ++calls;
    return read(static_cast<int>(fd), &c, 1) == 1;
  });
  t.join();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c, 'q');
  EXPECT_GE(calls, 1);
}

TEST_F(FdSemantics, DupGivesIndependentDescriptor) {
  FdPair p = MakePipe();
  auto d = p.w->Dup();
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_NE(*d, p.w->sysfd());
  ASSERT_EQ(write(static_cast<int>(*d), "d", 1), 1);
  close(static_cast<int>(*d));
  char c;
  ASSERT_TRUE(p.r->Read(absl::MakeSpan(&c, 1)).ok());
  EXPECT_EQ(c, 'd');
}

// --- Bad input -----------------------------------------------------------

TEST_F(FdSemantics, BadInputGivesClearErrors) {
  FdPair p = MakePipe();
  EXPECT_EQ(p.r->Read(absl::Span<char>(nullptr, 5)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.w->Write(absl::Span<const char>(nullptr, 5)).status().code(),
            absl::StatusCode::kInvalidArgument);
  char buf[4];
  EXPECT_EQ(p.r->Pread(absl::MakeSpan(buf), -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.w->Pwrite("x"sv, -7).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<absl::Span<char>> many(kMaxIov + 1, absl::MakeSpan(buf));
  EXPECT_EQ(p.r->ReadV(many).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.r->Accept().status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.r->Seek(0, 7).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Seek on a pipe is an OS error (ESPIPE), reported with the call's name.
  auto s = p.r->Seek(0, SEEK_SET).status();
  EXPECT_EQ(OsErrorCode(s), ESPIPE) << s;
  EXPECT_NE(s.message().find("lseek"), absl::string_view::npos) << s;
  // The FD still works after all that.
  ASSERT_TRUE(p.w->Write("ok"sv).ok());
  EXPECT_TRUE(p.r->Read(absl::MakeSpan(buf)).ok());
}

TEST_F(FdSemantics, InvalidDescriptors) {
  {
    FD bad(kInvalidSysfd);
    EXPECT_EQ(bad.Init(FdKind::kFile, true).code(),
              absl::StatusCode::kInvalidArgument);
  }
  // A closed descriptor number: Init reports EBADF.
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  close(p[0]);
  close(p[1]);
  FD stale(p[0]);
  absl::Status s = stale.Init(FdKind::kPipe, true);
  EXPECT_EQ(OsErrorCode(s), EBADF) << s;
  // kNet on something that is not a socket.
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  close(p[1]);
  FD notsock(p[0]);
  s = notsock.Init(FdKind::kNet, true);
  EXPECT_EQ(OsErrorCode(s), ENOTSOCK) << s;
}

// Init is all or nothing, and runs once: a second Init fails the same way
// on every strategy and leaves the FD as it was (its kind, its errors).
TEST_F(FdSemantics, SecondInitFailsAndChangesNothing) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  std::unique_ptr<FD> r = WrapFd(p[0], FdKind::kPipe);
  std::unique_ptr<FD> w = WrapFd(p[1], FdKind::kPipe);
  for (FdKind kind : {FdKind::kNet, FdKind::kPipe}) {
    absl::Status again = r->Init(kind, true, kTestWaitStrategy);
    EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  }
  EXPECT_EQ(r->kind(), FdKind::kPipe);
  ASSERT_TRUE(w->Write("ok"sv).ok());
  char buf[4];
  auto n = r->Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "ok");
  ASSERT_TRUE(r->Close().ok());
  // A closed pipe still says "file", not "network connection".
  absl::Status closed = r->Read(absl::MakeSpan(buf)).status();
  EXPECT_TRUE(IsClosing(closed)) << closed;
  EXPECT_NE(closed.message().find("file"), std::string::npos) << closed;
  EXPECT_TRUE(IsClosing(r->Init(FdKind::kPipe, true, kTestWaitStrategy)));
}

TEST_F(FdSemantics, FailedInitLeavesTheFdUninitialised) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  FD r(p[0]);
  const FdKind before = r.kind();
  // A pipe is not a socket: kNet fails, and nothing of it sticks.
  absl::Status s = r.Init(FdKind::kNet, true, kTestWaitStrategy);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(r.kind(), before);
  // The FD can still be initialised for what it is.
  ASSERT_TRUE(r.Init(FdKind::kPipe, true, kTestWaitStrategy).ok());
  EXPECT_EQ(r.kind(), FdKind::kPipe);
  ::close(p[1]);
  char c;
  EXPECT_TRUE(IsEof(r.Read(absl::MakeSpan(&c, 1)).status()));
}

// --- Stress (close racing reads, deadlines racing data) -------------------

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kStressRounds = 20000;
#else
constexpr int kStressRounds = 100000;
#endif

TEST_F(FdSemantics, StressDeadlineRacingData) {
  FdPair p = MakePipe();
  std::atomic<bool> stop{false};
  std::atomic<long> sent{0};
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    unsigned seed = 1;
    while (!stop.load()) {
      if (p.w->Write("d"sv).ok()) ++sent;
      if (rand_r(&seed) % 4 == 0) std::this_thread::yield();
    }
    writer_done = true;
  });
  long received = 0, timeouts = 0;
  unsigned seed = 2;
  char buf[64];
  for (int i = 0; i < kStressRounds; ++i) {
    ASSERT_TRUE(
        p.r->SetReadDeadline(In(absl::Microseconds(rand_r(&seed) % 50))).ok());
    auto r = p.r->Read(absl::MakeSpan(buf));
    if (r.ok()) {
      received += static_cast<long>(*r);
    } else {
      ASSERT_TRUE(IsDeadlineExceeded(r.status())) << r.status();
      ++timeouts;
    }
  }
  stop = true;
  // Keep reading until the writer, possibly blocked on a full pipe, exits.
  while (!writer_done.load()) {
    ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Milliseconds(1))).ok());
    auto r = p.r->Read(absl::MakeSpan(buf));
    if (r.ok()) received += static_cast<long>(*r);
  }
  writer.join();
  ASSERT_TRUE(p.r->SetReadDeadline(absl::InfiniteFuture()).ok());
  ASSERT_TRUE(p.w->Close().ok());
  for (;;) {
    auto r = p.r->Read(absl::MakeSpan(buf));
    if (!r.ok()) {
      ASSERT_TRUE(IsEof(r.status())) << r.status();
      break;
    }
    received += static_cast<long>(*r);
  }
  EXPECT_EQ(received, sent.load());  // no byte lost or duplicated
  RecordProperty("timeouts", static_cast<int>(timeouts));
}

TEST_F(FdSemantics, StressCloseRacingBlockedRead) {
  // One long-lived reader thread; each round hands it a fresh pipe, then
  // closes the read end at a random moment, sometimes after writing a byte.
  struct Round {
    FdPair p;
    absl::Notification go, done;
    absl::Status status;
    size_t n = 0;
  };
  std::atomic<Round*> cur{nullptr};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      Round* r = cur.load();
      if (r == nullptr) {
        std::this_thread::yield();
        continue;
      }
      cur = nullptr;
      r->go.WaitForNotification();
      char c;
      auto res = r->p.r->Read(absl::MakeSpan(&c, 1));
      r->status = res.status();
      r->n = res.ok() ? *res : 0;
      r->done.Notify();
    }
  });
  unsigned seed = 3;
  int rounds = kStressRounds / 10;
  long got_data = 0, got_closing = 0;
  for (int i = 0; i < rounds; ++i) {
    Round r;
    r.p = MakePipe();
    bool write_first = rand_r(&seed) % 2;
    cur = &r;
    r.go.Notify();
    if (write_first) {
      ASSERT_TRUE(r.p.w->Write("b"sv).ok());
    }
    for (unsigned spin = rand_r(&seed) % 200; spin > 0; --spin) {
      std::atomic_signal_fence(std::memory_order_seq_cst);
    }
    ASSERT_TRUE(r.p.r->Close().ok());
    ASSERT_TRUE(r.done.WaitForNotificationWithTimeout(kHang));
    if (r.status.ok()) {
      ASSERT_TRUE(write_first);  // data only if some was written
      ASSERT_EQ(r.n, 1u);
      ++got_data;
    } else {
      ASSERT_TRUE(IsClosing(r.status)) << r.status;
      ++got_closing;
    }
  }
  stop = true;
  reader.join();
  EXPECT_EQ(got_data + got_closing, rounds);
}

}  // namespace
}  // namespace gopoll::testing
