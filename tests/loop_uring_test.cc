// SPDX-License-Identifier: BSD-3-Clause
// The event loop on io_uring (poll/unix/uring_poller.h): backend choice and
// fallback (option, GOPOLL_LOOP_BACKEND, io_uring denied by a seccomp
// filter in a child process), and the pitfalls of completion rings, each a
// test: a cancel that loses the race delivers the operation's real result
// exactly once; data that arrives with a deadline is never lost; a
// completion queue that overflows (small ring, thousands of operations in
// flight) loses nothing and surfaces no -EBUSY; a full submission queue
// when cancels must be submitted does not hang; thousands of deadlines
// expiring at once; operations in flight when another thread takes over
// the loop.
// (The rest of the loop suite runs on epoll by default and, in the
// *_epoll targets, on epoll.)
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "poll/loop/loop.h"
#include "poll/unix/uring_poller.h"
#include "tests/loop_test_util.h"
#include "tests/posix_test_util.h"

namespace gopoll {
namespace {

using ::gopoll::testing::RunLoopUntil;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kScale = 4;  // sanitizers: a quarter of the operations
#else
constexpr int kScale = 1;
#endif

// The pitfall tests need the ring; on a kernel without io_uring the
// fallback tests below still run.
#define REQUIRE_IO_URING()                                        \
  do {                                                            \
    absl::Status av = IoUringLoopPoller::Available();             \
    if (!av.ok()) GTEST_SKIP() << "io_uring unavailable: " << av; \
  } while (0)

struct RawPipe {
  int r = -1;
  int w = -1;
};

RawPipe MakeRawPipe() {
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  return {p[0], p[1]};
}

LoopOptions Uring(unsigned entries = 0) {
  LoopOptions o;
  o.backend = LoopBackend::kIoUring;
  o.ring_entries = entries;
  return o;
}

TEST(LoopBackendTest, ChoiceAndOverride) {
  LoopOptions epoll;
  epoll.backend = LoopBackend::kEpoll;
  EXPECT_STREQ(Loop(epoll).backend_name(), "epoll");
  const bool uring = IoUringLoopPoller::Available().ok();
  EXPECT_STREQ(Loop(Uring()).backend_name(), uring ? "io_uring" : "epoll");
  // The environment variable changes the default only.
  const char* old = ::getenv("GOPOLL_LOOP_BACKEND");
  std::string saved = old != nullptr ? old : "";
  ::setenv("GOPOLL_LOOP_BACKEND", "epoll", 1);
  EXPECT_STREQ(Loop().backend_name(), "epoll");
  EXPECT_STREQ(Loop(Uring()).backend_name(), uring ? "io_uring" : "epoll");
  ::setenv("GOPOLL_LOOP_BACKEND", "io_uring", 1);
  EXPECT_STREQ(Loop().backend_name(), uring ? "io_uring" : "epoll");
  EXPECT_STREQ(Loop(epoll).backend_name(), "epoll");
  ::unsetenv("GOPOLL_LOOP_BACKEND");
  // io_uring by default where the kernel allows it.
  EXPECT_STREQ(Loop().backend_name(), uring ? "io_uring" : "epoll");
  if (old != nullptr) ::setenv("GOPOLL_LOOP_BACKEND", saved.c_str(), 1);
}

// --- io_uring denied by seccomp (run in a fresh child process) -----------

// The child: installs a filter that fails io_uring_setup with EPERM (as
// container runtimes' default profiles do), then expects a loop that asked
// for io_uring to run on epoll, with data, a deadline and Close working.
int SeccompChild() {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 10;
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    return 11;
  }
  if (::syscall(__NR_io_uring_setup, 4, nullptr) != -1 || errno != EPERM) {
    return 12;  // the filter does not deny it
  }
  Loop loop(Uring());
  if (std::strcmp(loop.backend_name(), "epoll") != 0) return 13;
  RawPipe p = MakeRawPipe();
  absl::StatusOr<AsyncFd> r = loop.Adopt(p.r, FdKind::kPipe);
  if (!r.ok()) return 14;
  if (::write(p.w, "hi", 2) != 2) return 15;
  char buf[4];
  absl::StatusOr<size_t> n = testing::ReadOnLoop(loop, *r, absl::MakeSpan(buf));
  if (!n.ok() || *n != 2 || std::memcmp(buf, "hi", 2) != 0) return 16;
  if (!r->SetReadDeadline(absl::Now() + absl::Milliseconds(20)).ok()) {
    return 17;
  }
  n = testing::ReadOnLoop(loop, *r, absl::MakeSpan(buf));
  if (!IsDeadlineExceeded(n.status())) return 18;
  ::close(p.w);
  return r->Close().ok() ? 0 : 19;
}

TEST(LoopBackendTest, IoUringDeniedBySeccompFallsBackToEpoll) {
  // A fresh process (exec): no threads, no cached probe from this one.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("GOPOLL_SECCOMP_CHILD", "1", 1);
    ::execl("/proc/self/exe", "loop_uring_test", nullptr);
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "child failed at step " << WEXITSTATUS(status);
}

// --- A ring that cannot be set up after the probe succeeded -------------

// The lowest descriptor number not open in this process.
int LowestFreeFd(int from) {
  for (int fd = from;; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) return fd;
  }
}

// io_uring works (the probe passed) but this loop's ring cannot be set up:
// here no descriptor number is left for it (a full descriptor table; the
// locked-memory limit shared by every ring of the user does the same). The
// loop falls back to epoll, and the failed poller closes nothing but what
// it opened: its ring never had a descriptor, so number 0 (what an unset
// ring names) belongs to somebody else and must stay open.
TEST(LoopBackendTest, RingSetupFailureClosesNoOtherDescriptor) {
  REQUIRE_IO_URING();
  // Descriptor 0 is one this test knows (under a test runner it may be
  // closed).
  int opened0 = -1;
  if (::fcntl(0, F_GETFD) == -1) {
    opened0 = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_EQ(opened0, 0);
  }
  struct stat st0;
  ASSERT_EQ(::fstat(0, &st0), 0);
  const int open_before = testing::CountOpenFds();

  // Exactly two free numbers below the limit: the poller's epoll instance
  // and eventfd take them, the ring gets EMFILE.
  const int free1 = LowestFreeFd(0);
  const int free2 = LowestFreeFd(free1 + 1);
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old_limit), 0);
  struct rlimit limit = old_limit;
  limit.rlim_cur = static_cast<rlim_t>(free2) + 1;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
  absl::Status why;
  std::unique_ptr<IoUringLoopPoller> ring = IoUringLoopPoller::Create(0, &why);
  // The same through a loop that asked for io_uring: epoll instead (the
  // failed ring's two descriptors are free again for it).
  std::optional<Loop> loop;
  loop.emplace(Uring());
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old_limit), 0);

  EXPECT_EQ(ring, nullptr);
  EXPECT_EQ(OsErrorCode(why), EMFILE) << why;
  EXPECT_STREQ(loop->backend_name(), "epoll");
  struct stat now0;
  ASSERT_EQ(::fstat(0, &now0), 0) << "descriptor 0 was closed";
  EXPECT_EQ(now0.st_dev, st0.st_dev) << "descriptor 0 was closed and reused";
  EXPECT_EQ(now0.st_ino, st0.st_ino) << "descriptor 0 was closed and reused";

  {  // The fallback loop works.
    RawPipe p = MakeRawPipe();
    absl::StatusOr<AsyncFd> r = loop->Adopt(p.r, FdKind::kPipe);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(::write(p.w, "hi", 2), 2);
    ::close(p.w);
    char buf[4];
    absl::StatusOr<size_t> n =
        testing::ReadOnLoop(*loop, *r, absl::MakeSpan(buf));
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(std::string(buf, *n), "hi");
    EXPECT_TRUE(r->Close().ok());
  }
  loop.reset();
  // A descriptor open for a moment elsewhere in the process (another
  // thread's) is given a second to go, as FdLeakTest does; a leaked one
  // stays.
  for (int i = 0; i < 100 && testing::CountOpenFds() != open_before; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(testing::CountOpenFds(), open_before) << testing::ListOpenFds();
  if (opened0 == 0) ::close(0);
}

// --- Pitfalls ------------------------------------------------------------

class UringPitfallTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (RawPipe& p : raw_) {
      if (p.w >= 0) ::close(p.w);
    }
  }
  // `n` pipes whose read ends are adopted by `loop`.
  std::vector<AsyncFd> Readers(Loop& loop, int n) {
    std::vector<AsyncFd> out;
    for (int i = 0; i < n; ++i) {
      RawPipe p = MakeRawPipe();
      absl::StatusOr<AsyncFd> r = loop.Adopt(p.r, FdKind::kPipe);
      EXPECT_TRUE(r.ok()) << r.status();
      out.push_back(*r);
      raw_.push_back(p);
    }
    return out;
  }
  std::vector<RawPipe> raw_;
};

// Data written and a deadline expiring while a read is in flight, in three
// orders: data then deadline in one turn (the cancel finds the read
// completing: it loses), deadline first (the cancel wins; the data comes
// after), data collected by the kernel before the deadline. The read ends
// exactly once, with the data or with the deadline; in the second case the
// data is still in the pipe. No byte is ever lost or delivered twice.
TEST_F(UringPitfallTest, DataAndDeadlineAtOnceKeepsTheData) {
  REQUIRE_IO_URING();
  Loop loop(Uring());
  ASSERT_STREQ(loop.backend_name(), "io_uring");
  std::vector<AsyncFd> r = Readers(loop, 1);
  int got_data = 0, got_deadline = 0;
  const uint64_t lost_before = IoUringLoopPoller::cancels_lost.load();
  for (int round = 0; round < 300 / kScale; ++round) {
    ASSERT_TRUE(r[0].SetReadDeadline(absl::InfiniteFuture()).ok());
    char buf[8];
    int calls = 0;
    absl::StatusOr<size_t> res;
    r[0].AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
      ++calls;
      res = std::move(n);
    });
    loop.RunOnce(absl::ZeroDuration());  // submitted, waiting in the ring
    const absl::Time past = absl::Now() - absl::Seconds(1);
    switch (round % 3) {
      case 0:  // data and deadline in the same turn
        ASSERT_EQ(::write(raw_[0].w, "abc", 3), 3);
        ASSERT_TRUE(r[0].SetReadDeadline(past).ok());
        break;
      case 1:  // the deadline's cancel goes out first
        ASSERT_TRUE(r[0].SetReadDeadline(past).ok());
        loop.RunOnce(absl::ZeroDuration());  // the cancel is queued
        loop.RunOnce(absl::ZeroDuration());  // and submitted
        ASSERT_EQ(::write(raw_[0].w, "abc", 3), 3);
        break;
      case 2:  // the kernel completes the read before the deadline
        ASSERT_EQ(::write(raw_[0].w, "abc", 3), 3);
        loop.RunOnce(absl::ZeroDuration());
        ASSERT_TRUE(r[0].SetReadDeadline(past).ok());
        break;
    }
    RunLoopUntil(loop, [&] { return calls > 0; });
    for (int i = 0; i < 3; ++i) loop.RunOnce(absl::ZeroDuration());
    ASSERT_EQ(calls, 1);
    if (res.ok()) {
      ++got_data;
      ASSERT_EQ(std::string(buf, *res), "abc");
    } else {
      ++got_deadline;
      ASSERT_TRUE(IsDeadlineExceeded(res.status())) << res.status();
      char left[8];
      ASSERT_EQ(::read(r[0].fd().sysfd(), left, sizeof(left)), 3)
          << "the data must still be in the pipe";
      ASSERT_EQ(std::string(left, 3), "abc");
    }
  }
  EXPECT_GT(got_data, 0);
  EXPECT_GT(got_deadline, 0);
  // The lost race happened (a cancel found its read done or completing).
  EXPECT_GT(IoUringLoopPoller::cancels_lost.load(), lost_before);
  std::printf(
      "data %d, deadline %d, cancels lost %d\n", got_data, got_deadline,
      static_cast<int>(IoUringLoopPoller::cancels_lost.load() - lost_before));
}

// A Close racing a read whose data has arrived: whatever wins, the
// callback runs exactly once, with all the data or with IsClosing, and the
// descriptor is released only after the ring gave the read back.
TEST_F(UringPitfallTest, CancelLosingTheRaceDeliversTheResultOnce) {
  REQUIRE_IO_URING();
  Loop loop(Uring());
  int got_data = 0, got_closing = 0;
  const uint64_t lost_before = IoUringLoopPoller::cancels_lost.load();
  for (int round = 0; round < 300 / kScale; ++round) {
    std::vector<AsyncFd> r = Readers(loop, 1);
    char buf[8];
    int calls = 0;
    absl::StatusOr<size_t> res;
    r[0].AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
      ++calls;
      res = std::move(n);
    });
    loop.RunOnce(absl::ZeroDuration());
    // Data and Close in one turn (the cancel loses), Close alone (it
    // wins), data completed by the kernel before the Close.
    if (round % 3 != 1) {
      ASSERT_EQ(::write(raw_.back().w, "xyz", 3), 3);
    }
    if (round % 3 == 2) loop.RunOnce(absl::ZeroDuration());
    ASSERT_TRUE(r[0].Close().ok());
    RunLoopUntil(loop, [&] { return calls > 0; });
    for (int i = 0; i < 3; ++i) loop.RunOnce(absl::ZeroDuration());
    ASSERT_EQ(calls, 1);
    if (res.ok()) {
      ++got_data;
      ASSERT_EQ(std::string(buf, *res), "xyz");
    } else {
      ++got_closing;
      ASSERT_TRUE(IsClosing(res.status())) << res.status();
    }
    ::close(raw_.back().w);
    raw_.back().w = -1;
  }
  EXPECT_GT(got_data, 0);
  EXPECT_GT(got_closing, 0);
  EXPECT_GT(IoUringLoopPoller::cancels_lost.load(), lost_before);
  std::printf("data %d, closing %d\n", got_data, got_closing);
}

// A ring of 8 entries (16 completions) with thousands of reads in flight,
// all completing in one turn: the completion queue overflows, the kernel
// keeps the rest, and every read gets its own byte.
TEST_F(UringPitfallTest, CompletionQueueOverflowLosesNothing) {
  REQUIRE_IO_URING();
  Loop loop(Uring(8));
  const int n = 2000 / kScale;
  std::vector<AsyncFd> r = Readers(loop, n);
  std::vector<char> bufs(n);
  std::vector<int> calls(n, 0);
  int done = 0;
  for (int i = 0; i < n; ++i) {
    r[i].AsyncRead(absl::MakeSpan(&bufs[i], 1),
                   [&, i](absl::StatusOr<size_t> got) {
                     EXPECT_TRUE(got.ok() && *got == 1) << got.status();
                     ++calls[i];
                     ++done;
                   });
  }
  const uint64_t sq_before = IoUringLoopPoller::sq_full_flushes.load();
  const uint64_t cq_before = IoUringLoopPoller::cq_overflows.load();
  loop.RunOnce(absl::ZeroDuration());  // all submitted (8 at a time)
  for (int i = 0; i < n; ++i) {
    char c = static_cast<char>('a' + i % 26);
    ASSERT_EQ(::write(raw_[i].w, &c, 1), 1);
  }
  RunLoopUntil(loop, [&] { return done == n; });
  for (int i = 0; i < 3; ++i) loop.RunOnce(absl::ZeroDuration());
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(calls[i], 1) << i;
    ASSERT_EQ(bufs[i], static_cast<char>('a' + i % 26)) << i;
  }
  EXPECT_GT(IoUringLoopPoller::sq_full_flushes.load(), sq_before);
  EXPECT_GT(IoUringLoopPoller::cq_overflows.load(), cq_before)
      << "the test did not make the completion queue overflow";
}

// A ring of 4 entries, 200 reads in flight, and all their deadlines
// expiring in one turn: 200 cancels through a queue of 4 (flushed when
// full, never dropped): every read ends with IsDeadlineExceeded.
TEST_F(UringPitfallTest, FullSubmissionQueueWhenCancelsMustGoOut) {
  REQUIRE_IO_URING();
  Loop loop(Uring(4));
  const int n = 200;
  std::vector<AsyncFd> r = Readers(loop, n);
  std::vector<char> bufs(n);
  int done = 0;
  for (int i = 0; i < n; ++i) {
    r[i].AsyncRead(absl::MakeSpan(&bufs[i], 1), [&](absl::StatusOr<size_t> g) {
      EXPECT_TRUE(IsDeadlineExceeded(g.status())) << g.status();
      ++done;
    });
  }
  loop.RunOnce(absl::ZeroDuration());
  const uint64_t sq_before = IoUringLoopPoller::sq_full_flushes.load();
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(r[i].SetReadDeadline(absl::Now() - absl::Seconds(1)).ok());
  }
  RunLoopUntil(loop, [&] { return done == n; });
  EXPECT_EQ(done, n);
  EXPECT_GT(IoUringLoopPoller::sq_full_flushes.load(), sq_before);
}

// Thousands of reads in flight with one deadline: all end once, with
// IsDeadlineExceeded, close to the deadline.
TEST_F(UringPitfallTest, ThousandsOfDeadlinesExpiringAtOnce) {
  REQUIRE_IO_URING();
  Loop loop(Uring());
  const int n = 3000 / kScale;
  std::vector<AsyncFd> r = Readers(loop, n);
  std::vector<char> bufs(n);
  std::vector<int> calls(n, 0);
  int done = 0;
  const absl::Time deadline = absl::Now() + absl::Milliseconds(100);
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(r[i].SetReadDeadline(deadline).ok());
    r[i].AsyncRead(absl::MakeSpan(&bufs[i], 1),
                   [&, i](absl::StatusOr<size_t> g) {
                     EXPECT_TRUE(IsDeadlineExceeded(g.status())) << g.status();
                     ++calls[i];
                     ++done;
                   });
  }
  RunLoopUntil(loop, [&] { return done == n; });
  EXPECT_GE(absl::Now(), deadline);
  for (int i = 0; i < 3; ++i) loop.RunOnce(absl::ZeroDuration());
  for (int i = 0; i < n; ++i) ASSERT_EQ(calls[i], 1) << i;
}

// Reads in flight when another thread runs the loop (the ring's issuer
// cannot change: the loop moves to a new ring and submits them again):
// they still get their data, once.
// A descriptor of an io_uring loop is registered dormant with the ring's
// epoll (for blocking callers); epoll still reports hang-ups and errors for
// it. A pipe's write end whose reader is gone gets a lone EPOLLERR: taken as
// readiness it marked the FD "error only", and the blocking calls of the FD
// then failed with "not pollable" without trying the system call (found by
// the fuzzer: a read of the write end gave "read: not pollable" instead of
// EBADF). Each call reports its own result.
TEST_F(UringPitfallTest, ADormantDescriptorsHangUpIsNotAnError) {
  REQUIRE_IO_URING();
  Loop loop(Uring());
  ASSERT_STREQ(loop.backend_name(), "io_uring");
  RawPipe p = MakeRawPipe();
  absl::StatusOr<AsyncFd> w = loop.Adopt(p.w, FdKind::kPipe);
  ASSERT_TRUE(w.ok()) << w.status();
  ::close(p.r);  // the reader is gone: EPOLLERR on the write end
  for (int i = 0; i < 5; ++i) loop.RunOnce(absl::Milliseconds(5));
  absl::Status read_status, write_status;
  std::thread t([&] {
    char buf[4];
    read_status = w->fd().Read(absl::MakeSpan(buf)).status();
    write_status = w->fd().Write(absl::string_view("x")).status();
  });
  t.join();
  EXPECT_FALSE(IsNotPollable(read_status)) << read_status;
  EXPECT_EQ(OsErrorCode(read_status), EBADF) << read_status;
  EXPECT_EQ(OsErrorCode(write_status), EPIPE) << write_status;
  ASSERT_TRUE(w->Close().ok());
}

// A read in flight when its loop is destroyed: the loop cancels it, but if
// the kernel completed it first its bytes are delivered (found by the
// fuzzer: ~Loop reported CancelledError and the bytes were gone from the
// stream). Either the callback has the data, or it is cancelled and the
// data is still in the pipe: never lost.
TEST_F(UringPitfallTest, DataReadBeforeTheLoopIsDestroyedIsNotLost) {
  REQUIRE_IO_URING();
  for (int round = 0; round < 50 / kScale; ++round) {
    int calls = 0;
    absl::StatusOr<size_t> res;
    char buf[8];
    std::vector<AsyncFd> r;
    {
      Loop loop(Uring());
      r = Readers(loop, 1);
      r[0].AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
        ++calls;
        res = std::move(n);
      });
      loop.RunOnce(absl::ZeroDuration());  // submitted, waiting in the ring
      ASSERT_EQ(::write(raw_.back().w, "abc", 3), 3);
      if (round % 2 == 1) absl::SleepFor(absl::Milliseconds(2));
    }  // ~Loop cancels the read
    ASSERT_EQ(calls, 1);
    if (res.ok()) {
      ASSERT_EQ(*res, 3u);
      EXPECT_EQ(absl::string_view(buf, 3), "abc");
    } else {
      EXPECT_TRUE(absl::IsCancelled(res.status())) << res.status();
      char left[8];
      ASSERT_TRUE(
          r[0].SetReadDeadline(absl::Now() + absl::Milliseconds(500)).ok());
      absl::StatusOr<size_t> n = r[0].fd().Read(absl::MakeSpan(left));
      ASSERT_TRUE(n.ok()) << "the bytes were lost: " << n.status();
      EXPECT_EQ(absl::string_view(left, *n), "abc");
    }
    ASSERT_TRUE(r[0].Close().ok());
  }
}

TEST_F(UringPitfallTest, ReadsInFlightSurviveANewLoopThread) {
  REQUIRE_IO_URING();
  Loop loop(Uring());
  const int n = 50;
  std::vector<AsyncFd> r = Readers(loop, n);
  std::vector<char> bufs(n);
  std::vector<int> calls(n, 0);
  int done = 0;
  for (int i = 0; i < n; ++i) {
    r[i].AsyncRead(absl::MakeSpan(&bufs[i], 1),
                   [&, i](absl::StatusOr<size_t> g) {
                     EXPECT_TRUE(g.ok()) << g.status();
                     ++calls[i];
                     ++done;
                   });
  }
  loop.RunOnce(absl::ZeroDuration());  // in flight on this thread's ring
  // Half the data before the switch, half after.
  for (int i = 0; i < n / 2; ++i) ASSERT_EQ(::write(raw_[i].w, "q", 1), 1);
  std::thread other([&] {
    for (int i = n / 2; i < n; ++i) ASSERT_EQ(::write(raw_[i].w, "q", 1), 1);
    RunLoopUntil(loop, [&] { return done == n; });
    for (int i = 0; i < 3; ++i) loop.RunOnce(absl::ZeroDuration());
  });
  other.join();
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(calls[i], 1) << i;
    EXPECT_EQ(bufs[i], 'q') << i;
  }
}

}  // namespace
}  // namespace gopoll

int main(int argc, char** argv) {
  if (const char* c = ::getenv("GOPOLL_SECCOMP_CHILD"); c && *c == '1') {
    return gopoll::SeccompChild();
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
