// SPDX-License-Identifier: BSD-3-Clause
// The interruptible-call strategy's own contract (plan9_stub's only one, the
// epoll backend's default for blocking callers): blocked calls interrupted
// by a signal, never a lost interrupt, never a stray signal, no lost bytes.
// Also how Init picks the strategy. (The shared semantics run in
// fd_semantics_test with the default, and fd_semantics_poller_test on epoll.)
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "poll/fd.h"
#include "poll/posix/interrupter.h"
#include "poll/posix/read_spin_budget.h"
#include "tests/posix_test_util.h"

namespace gopoll::testing {
namespace {

using posix::SyscallInterrupter;
using InterruptibleCall = FdLeakTest;

bool NonBlocking(const FD& fd) {
  return fcntl(static_cast<int>(fd.sysfd()), F_GETFL) & O_NONBLOCK;
}

TEST_F(InterruptibleCall, DefaultForBlockingCallersDescriptorsStayBlocking) {
  FdPair p = MakePipe();
  EXPECT_TRUE(p.r->pollable());  // deadlines work
  EXPECT_EQ(p.r->wait_strategy(), WaitStrategy::kInterruptibleCall);
  EXPECT_FALSE(NonBlocking(*p.r));
  // A descriptor handed over in non-blocking mode is switched back.
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  FD r(fds[0]), w(fds[1]);
  ASSERT_TRUE(r.Init(FdKind::kPipe, true).ok());
  ASSERT_TRUE(
      w.Init(FdKind::kPipe, true, WaitStrategy::kInterruptibleCall).ok());
  EXPECT_FALSE(NonBlocking(r));
  EXPECT_FALSE(NonBlocking(w));
}

TEST_F(InterruptibleCall, StrategyChoice) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  FD r(fds[0]), w(fds[1]);
#ifdef GOPOLL_PLAN9_STUB
  // No OS poller: asking for one is refused, and Init can be retried.
  absl::Status s = r.Init(FdKind::kPipe, true, WaitStrategy::kPoller);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << s;
  ASSERT_TRUE(r.Init(FdKind::kPipe, true).ok());
  EXPECT_EQ(r.wait_strategy(), WaitStrategy::kInterruptibleCall);
#else
  ASSERT_TRUE(r.Init(FdKind::kPipe, true, WaitStrategy::kPoller).ok());
  EXPECT_EQ(r.wait_strategy(), WaitStrategy::kPoller);
  EXPECT_TRUE(NonBlocking(r));
#endif
  ASSERT_TRUE(w.Init(FdKind::kPipe, true).ok());
  // Either way the pair works together, deadlines included.
  ASSERT_TRUE(r.SetReadDeadline(In(absl::Milliseconds(5))).ok());
  char c;
  EXPECT_TRUE(IsDeadlineExceeded(r.Read(absl::MakeSpan(&c, 1)).status()));
  ASSERT_TRUE(r.SetReadDeadline(absl::InfiniteFuture()).ok());
  ASSERT_TRUE(w.Write(std::string_view("x")).ok());
  auto n = r.Read(absl::MakeSpan(&c, 1));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(c, 'x');
  // Not pollable: no strategy, the handle is left as it is.
  int q[2];
  ASSERT_EQ(pipe2(q, O_CLOEXEC | O_NONBLOCK), 0);
  FD plain(q[0]);
  ASSERT_TRUE(plain.Init(FdKind::kPipe, false, WaitStrategy::kPoller).ok());
  EXPECT_FALSE(plain.pollable());
  EXPECT_EQ(plain.wait_strategy(), WaitStrategy::kAuto);
  EXPECT_TRUE(NonBlocking(plain));
  close(q[1]);
}

TEST_F(InterruptibleCall, RegularFilesAreNotPollable) {
  char path[] = "/tmp/gopoll_interruptibleXXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  FD f(fd);
  ASSERT_TRUE(f.Init(FdKind::kFile, true).ok());
  EXPECT_FALSE(f.pollable());
  EXPECT_EQ(f.wait_strategy(), WaitStrategy::kAuto);
  EXPECT_TRUE(IsNoDeadline(f.SetReadDeadline(In(absl::Seconds(1)))));
  ASSERT_TRUE(f.Write(std::string_view("abc")).ok());
  auto n = f.Pread(absl::MakeSpan(path, 3), 0);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string_view(path, 3), "abc");
}

TEST_F(InterruptibleCall, BlockedReadInterruptedByDeadlineAndClose) {
  uint64_t stray = SyscallInterrupter::StraySignals();
  FdPair p = MakePipe();
  ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Milliseconds(20))).ok());
  char c;
  EXPECT_TRUE(IsDeadlineExceeded(p.r->Read(absl::MakeSpan(&c, 1)).status()));
  ASSERT_TRUE(p.r->SetReadDeadline(absl::InfiniteFuture()).ok());
  absl::Status got;
  absl::Notification done;
  std::atomic<pid_t> tid{0};
  std::thread t([&] {
    tid = ThreadId();
    got = p.r->Read(absl::MakeSpan(&c, 1)).status();
    done.Notify();
  });
  // Close while the read is blocked (by its state, not after a sleep).
  while (tid.load() == 0) absl::SleepFor(absl::Microseconds(100));
  EXPECT_TRUE(WaitUntilBlocked(tid.load()));
  ASSERT_TRUE(p.r->Close().ok());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kHang));
  t.join();
  EXPECT_TRUE(IsClosing(got)) << got;
  EXPECT_EQ(SyscallInterrupter::StraySignals(), stray);
}

TEST_F(InterruptibleCall, InterruptedWriteKeepsBytesWritten) {
  // A blocking write into a full pipe is interrupted by its deadline; the
  // bytes it did write are reported and arrive, none twice.
  // The deadline is set once the pipe is full, so the write has started
  // whatever the machine's load (a deadline set before could pass first).
  FdPair p = MakePipe();
  std::string big(1 << 20, 'w');
  size_t written = 0;
  absl::Status st;
  std::thread writer([&] { st = p.w->Write(big, &written).status(); });
  const int r = static_cast<int>(p.r->sysfd());
  const int capacity = fcntl(r, F_GETPIPE_SZ);
  ASSERT_GT(capacity, 0);
  const absl::Time give_up = In(kHang);
  int queued = 0;
  while ((ioctl(r, FIONREAD, &queued) != 0 || queued < capacity) &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_TRUE(p.w->SetWriteDeadline(In(absl::Milliseconds(5))).ok());
  writer.join();
  EXPECT_TRUE(IsDeadlineExceeded(st)) << st;
  EXPECT_GT(written, 0u);
  EXPECT_LT(written, big.size());
  ASSERT_TRUE(p.w->Close().ok());
  size_t got = 0;
  char buf[65536];
  for (;;) {
    auto r = p.r->Read(absl::MakeSpan(buf));
    if (!r.ok()) {
      EXPECT_TRUE(IsEof(r.status())) << r.status();
      break;
    }
    got += *r;
  }
  EXPECT_EQ(got, written);
}

// RawRead's f makes a blocking read on the blocking descriptor: a deadline
// and Close must still end it (f sees EINTR), and Close must not hang. The
// deadline and Close come once f is blocked in its read (f announces its
// start; the thread's state shows the read blocked), not after a sleep: on
// a busy machine a sleep could end before RawRead started, which then
// fails without calling f, correctly but untested.
TEST_F(InterruptibleCall, RawReadWithBlockingCallInsideIsInterrupted) {
  for (bool close : {false, true}) {
    SCOPED_TRACE(close ? "close" : "deadline");
    FdPair p = MakePipe();
    int err = 0;
    absl::Status st;
    absl::Notification done;
    std::atomic<pid_t> tid{0};
    absl::Notification in_f;
    std::thread t([&] {
      tid = ThreadId();
      st = p.r->RawRead([&](Sysfd fd) {
        in_f.Notify();
        char c;
        if (::read(static_cast<int>(fd), &c, 1) < 0) err = errno;
        return true;
      });
      done.Notify();
    });
    if (!in_f.WaitForNotificationWithTimeout(kHang)) {
      ADD_FAILURE() << "RawRead never called f: " << p.r->Close();
      t.join();
      continue;
    }
    EXPECT_TRUE(WaitUntilBlocked(tid.load()));
    if (close) {
      ASSERT_TRUE(p.r->Close().ok());
    } else {
      ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Milliseconds(5))).ok());
    }
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(kHang));
    t.join();
    EXPECT_TRUE(st.ok()) << st;  // f finished; what it saw is the result
    EXPECT_EQ(err, EINTR);
  }
}

// O_NONBLOCK belongs to the open file description: another descriptor (or
// process) sharing it may set it. The FD then sees EAGAIN, which must mean
// "wait" (deadlines and Close included), never an error.
TEST_F(InterruptibleCall, DescriptionMadeNonBlockingBySomeoneElse) {
  FdPair p = MakePipe();
  const int r = static_cast<int>(p.r->sysfd());
  ASSERT_EQ(fcntl(r, F_SETFL, fcntl(r, F_GETFL) | O_NONBLOCK), 0);
  ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Milliseconds(10))).ok());
  char c;
  auto n = p.r->Read(absl::MakeSpan(&c, 1));
  EXPECT_TRUE(IsDeadlineExceeded(n.status())) << n.status();
  ASSERT_TRUE(p.r->SetReadDeadline(absl::InfiniteFuture()).ok());
  // The data comes once this thread waits for it.
  const pid_t self = ThreadId();
  std::thread writer([&] {
    EXPECT_TRUE(WaitUntilBlocked(self));
    ASSERT_TRUE(p.w->Write(std::string_view("z")).ok());
  });
  n = p.r->Read(absl::MakeSpan(&c, 1));
  writer.join();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(c, 'z');
  // A call that asks not to block (MSG_DONTWAIT) waits the same way.
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  FD a(s[0]), b(s[1]);
  ASSERT_TRUE(a.Init(FdKind::kNet, true).ok());
  ASSERT_TRUE(b.Init(FdKind::kNet, true).ok());
  std::thread sender([&] {
    EXPECT_TRUE(WaitUntilBlocked(self));
    ASSERT_TRUE(b.Write(std::string_view("m")).ok());
  });
  auto got = a.RecvFrom(absl::MakeSpan(&c, 1), MSG_DONTWAIT);
  sender.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->n, 1u);
  EXPECT_EQ(c, 'm');
}

// Binds a Unix socket to a fresh abstract address the kernel picks (no
// name shared with parallel runs, nothing left in the file system).
bool AutoBind(int fd, sockaddr_un* addr, socklen_t* len) {
  sa_family_t family = AF_UNIX;
  if (bind(fd, reinterpret_cast<sockaddr*>(&family), sizeof(family)) != 0) {
    return false;
  }
  *len = sizeof(*addr);
  return getsockname(fd, reinterpret_cast<sockaddr*>(addr), len) == 0;
}

// Readiness that the call does not honour: poll reports an unconnected
// Unix datagram socket writable although the receiver's queue is full. A
// MSG_DONTWAIT send must neither fail with EAGAIN nor spin: it backs off
// until its deadline, and goes through once the receiver drains.
TEST_F(InterruptibleCall, SendToFullDatagramPeerWaitsForDeadlineThenSends) {
  int rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(rx, 0);
  sockaddr_un addr{};
  socklen_t len = 0;
  ASSERT_TRUE(AutoBind(rx, &addr, &len));
  SockAddr to;
  ASSERT_TRUE(to.Set(&addr, len));
  FD tx(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(tx.Init(FdKind::kNet, true).ok());
  // Fill the receiver's queue.
  const int raw_tx = static_cast<int>(tx.sysfd());
  int queued = 0;
  while (sendto(raw_tx, "x", 1, MSG_DONTWAIT,
                reinterpret_cast<sockaddr*>(&addr), len) == 1) {
    ++queued;
  }
  ASSERT_EQ(errno, EAGAIN);
  ASSERT_GT(queued, 0);
  ASSERT_TRUE(tx.SetWriteDeadline(In(absl::Milliseconds(50))).ok());
  auto n = tx.SendTo(std::string_view("y"), to, MSG_DONTWAIT);
  EXPECT_TRUE(IsDeadlineExceeded(n.status())) << n.status();
  ASSERT_TRUE(tx.SetWriteDeadline(absl::InfiniteFuture()).ok());
  const pid_t self = ThreadId();
  std::thread drain([&] {
    EXPECT_TRUE(WaitUntilBlocked(self));  // the send backs off
    char c;
    for (int i = 0; i < queued; ++i) ASSERT_EQ(recv(rx, &c, 1, 0), 1);
  });
  n = tx.SendTo(std::string_view("z"), to, MSG_DONTWAIT);
  drain.join();
  ASSERT_TRUE(n.ok()) << n.status();
  char c = 0;
  ASSERT_EQ(recv(rx, &c, 1, 0), 1);
  EXPECT_EQ(c, 'z');
  close(rx);
}

// EAGAIN from connect (a Unix listener's full backlog, on a description
// made non-blocking by someone else) is an error, as on the poller
// strategy and in Go, not a wait.
TEST_F(InterruptibleCall, ConnectEagainIsAnError) {
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(l, 0);
  sockaddr_un addr{};
  socklen_t len = 0;
  ASSERT_TRUE(AutoBind(l, &addr, &len));
  ASSERT_EQ(listen(l, 0), 0);
  std::vector<int> clients;
  for (;;) {  // fill the backlog
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_GE(c, 0);
    if (connect(c, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      ASSERT_EQ(errno, EAGAIN);
      close(c);
      break;
    }
    clients.push_back(c);
    ASSERT_LT(clients.size(), 64u);
  }
  FD fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(fd.Init(FdKind::kNet, true).ok());
  const int raw = static_cast<int>(fd.sysfd());
  ASSERT_EQ(fcntl(raw, F_SETFL, fcntl(raw, F_GETFL) | O_NONBLOCK), 0);
  SockAddr to;
  ASSERT_TRUE(to.Set(&addr, len));
  absl::Status st = fd.Connect(to);
  EXPECT_EQ(OsErrorCode(st), EAGAIN) << st;
  for (int c : clients) close(c);
  close(l);
}

TEST(ReadSpinBudget, SetAndClamp) {
  const absl::Duration before = ReadSpinBudget();
  SetReadSpinBudget(absl::Microseconds(5));
  EXPECT_EQ(ReadSpinBudget(), absl::Microseconds(5));
  SetReadSpinBudget(-absl::Seconds(1));
  EXPECT_EQ(ReadSpinBudget(), absl::ZeroDuration());
  SetReadSpinBudget(before);
}

// A thread whose reads keep waiting spins before it blocks (read_spin.h:
// after a first waiting read and four that block, the next four spin). The
// budget is far longer than kHang, so a spin that ran it out while ignoring
// the deadline or Close would hang the test. (A spin also ends when one of
// its yields runs another thread, which happens often enough on a VM that
// this test does not prove the check exists; it proves the results.)
TEST_F(InterruptibleCall, SpinningReadSeesDeadlineAndClose) {
  const absl::Duration before = ReadSpinBudget();
  SetReadSpinBudget(absl::Seconds(120));
  for (bool close : {false, true}) {
    SCOPED_TRACE(close ? "close" : "deadline");
    FdPair p = MakePipe();
    absl::Status last;
    std::atomic<int> replies{0};
    std::thread reader([&] {  // a fresh thread: fresh spin state
      char c;
      for (;;) {
        auto n = p.r->Read(absl::MakeSpan(&c, 1));
        if (!n.ok()) {
          last = n.status();
          return;
        }
        ++replies;
      }
    });
    // Five replies that each keep the reader waiting a millisecond (on a
    // busy machine it may not wait: then it only reads).
    for (int i = 0; i < 5; ++i) {
      absl::SleepFor(absl::Milliseconds(1));
      ASSERT_TRUE(p.w->Write(std::string_view("r")).ok());
    }
    // The deadline and Close come once the reader has taken all five (not
    // after a fixed pause, which a busy machine can outlast: a deadline
    // past before the reader took the bytes fails those reads, correctly).
    const absl::Time give_up = In(kHang);
    while (replies.load() < 5 && absl::Now() < give_up) {
      absl::SleepFor(absl::Microseconds(200));
    }
    if (replies.load() != 5) {
      ADD_FAILURE() << "the reader took " << replies.load() << " of 5 bytes";
      ASSERT_TRUE(p.r->Close().ok());
      reader.join();
      break;
    }
    // The reader is now waiting (spinning, where two CPUs allow) for a
    // sixth byte that never comes.
    absl::SleepFor(absl::Milliseconds(30));
    if (close) {
      ASSERT_TRUE(p.r->Close().ok());
    } else {
      ASSERT_TRUE(p.r->SetReadDeadline(In(absl::Milliseconds(10))).ok());
    }
    reader.join();
    EXPECT_EQ(replies.load(), 5);
    EXPECT_TRUE(close ? IsClosing(last) : IsDeadlineExceeded(last)) << last;
  }
  SetReadSpinBudget(before);
}

// Deadlines so short that they often fire just before the thread enters
// read(): the re-sent signal must still interrupt it (a lost interrupt
// would hang this test), and no signal may arrive outside an operation.
TEST_F(InterruptibleCall, StressNoLostInterruptNoStraySignal) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr int kRounds = 5000;
#else
  constexpr int kRounds = 20000;
#endif
  uint64_t stray = SyscallInterrupter::StraySignals();
  FdPair p = MakePipe();
  char c;
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(
        p.r->SetReadDeadline(In(absl::Nanoseconds((i * 7919) % 30000))).ok());
    auto r = p.r->Read(absl::MakeSpan(&c, 1));
    ASSERT_TRUE(IsDeadlineExceeded(r.status())) << r.status();
  }
  EXPECT_EQ(SyscallInterrupter::StraySignals(), stray);
}

}  // namespace
}  // namespace gopoll::testing
