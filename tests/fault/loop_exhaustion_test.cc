// SPDX-License-Identifier: BSD-3-Clause
// Resource exhaustion around loop creation, with the fault-injection layer
// (poll/testing/fault_injection.h) failing the calls that make a loop's
// pollers: io_uring_setup, epoll_create1 and eventfd (EMFILE, ENOMEM,
// EINVAL), and the loop's waits (epoll_wait, io_uring_enter). Promised by
// poll/loop/loop.h: a ring that cannot be set up falls back to epoll
// (backend_name() tells); a loop whose epoll instance or eventfd cannot be
// opened is not created by Loop::Create (the constructors make a loop
// without an OS poller instead), so every loop wakes for Post and Stop; a
// failed wait is retried, never fatal; a failed ring setup touches no
// descriptor of the application (it once closed descriptor 0). Runs on both
// loop backends (tests/loop_backends.bzl).
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "poll/loop/loop.h"
#include "poll/testing/fault_injection.h"
#include "poll/unix/epoll_poller.h"
#include "poll/unix/uring_poller.h"
#include "tests/loop_test_util.h"
#include "tests/posix_test_util.h"

namespace gopoll {
namespace {

namespace ft = ::gopoll::testing;
using ::gopoll::testing::FdLeakTest;
using ::gopoll::testing::ReadOnLoop;

// The backend this target runs (GOPOLL_LOOP_BACKEND), asked for explicitly
// where a test needs a ring.
bool RingTarget() {
  const char* env = ::getenv("GOPOLL_LOOP_BACKEND");
  return (env == nullptr || std::string(env) != "epoll") &&
         IoUringLoopPoller::Available().ok();
}

// A loop works: a pipe read on it gets the bytes written from another
// thread, and Post and Stop from another thread end Run().
void ExpectWorks(Loop& loop) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  absl::StatusOr<AsyncFd> r = loop.Adopt(p[0], FdKind::kFile);
  ASSERT_TRUE(r.ok()) << r.status();
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(5));
    ASSERT_EQ(::write(p[1], "xy", 2), 2);
  });
  char buf[4];
  absl::StatusOr<size_t> n = ReadOnLoop(loop, *r, absl::MakeSpan(buf));
  writer.join();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "xy");
  ::close(p[1]);
  std::atomic<bool> posted{false};
  std::thread other([&] {
    absl::SleepFor(absl::Milliseconds(5));
    loop.Post([&] { posted = true; });
    absl::SleepFor(absl::Milliseconds(5));
    loop.Stop();
  });
  loop.Run();  // hangs (the test's timeout) if the loop cannot be woken
  other.join();
  EXPECT_TRUE(posted.load());
}

class LoopExhaustionTest : public FdLeakTest {
 protected:
  void TearDown() override {
    ft::ClearRules();
    FdLeakTest::TearDown();
  }
};

TEST_F(LoopExhaustionTest, RingSetupFailureFallsBackToEpoll) {
  if (!RingTarget()) GTEST_SKIP() << "io_uring target only";
  for (int err : {EMFILE, ENFILE, ENOMEM, EINVAL}) {
    SCOPED_TRACE(std::strerror(err));
    ft::ScopedFaults faults;
    faults.Add({.calls = ft::kIoUringSetup, .err = err});
    LoopOptions o;
    o.backend = LoopBackend::kIoUring;
    absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create(o);
    ASSERT_TRUE(loop.ok()) << loop.status();
    EXPECT_STREQ((*loop)->backend_name(), "epoll");
    ft::ClearRules();
    ExpectWorks(**loop);
  }
}

TEST_F(LoopExhaustionTest, AFailedRingSetupClosesNoDescriptorOfTheCaller) {
  // Descriptor 0 is made a pipe the test owns; a ring that was never set
  // up once ran io_uring_queue_exit on a zeroed ring (ring_fd 0).
  const int saved0 = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
  ASSERT_GE(saved0, 0);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ASSERT_EQ(::dup2(p[0], 0), 0);
  struct stat before;
  ASSERT_EQ(::fstat(0, &before), 0);
  for (int err : {EMFILE, ENOMEM, EINVAL}) {
    ft::ScopedFaults faults;
    faults.Add({.calls = ft::kIoUringSetup, .err = err});
    LoopOptions o;
    o.backend = LoopBackend::kIoUring;
    { Loop loop(o); }
    { absl::StatusOr<std::unique_ptr<Loop>> l = Loop::Create(o); }
  }
  struct stat after;
  ASSERT_EQ(::fstat(0, &after), 0) << "descriptor 0 was closed";
  EXPECT_EQ(after.st_ino, before.st_ino) << "descriptor 0 was replaced";
  ASSERT_EQ(::write(p[1], "z", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(0, &c, 1), 1);
  ASSERT_EQ(::dup2(saved0, 0), 0);
  ::close(saved0);
  ::close(p[0]);
  ::close(p[1]);
}

TEST_F(LoopExhaustionTest, EpollOrEventfdFailureIsAStatusNotADeafLoop) {
  for (uint32_t call : {ft::kEpollCreate, ft::kEventfd}) {
    for (int err : {EMFILE, ENFILE, ENOMEM}) {
      SCOPED_TRACE(absl::StrCat(ft::CallName(call), " ", std::strerror(err)));
      ft::ScopedFaults faults;
      faults.Add({.calls = call, .err = err});
      absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create();
      ASSERT_FALSE(loop.ok()) << (*loop)->backend_name();
      EXPECT_EQ(OsErrorCode(loop.status()), err) << loop.status();
      // The constructor cannot report: a loop without an OS poller, which
      // still wakes for Post and Stop and runs operations.
      Loop fallback;
      EXPECT_STREQ(fallback.backend_name(), "threads");
      ft::ClearRules();
      ExpectWorks(fallback);
    }
  }
}

TEST_F(LoopExhaustionTest, RingEntriesAboveTheKernelLimitAreInvalid) {
  LoopOptions o;
  o.ring_entries = 32769;
  absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create(o);
  ASSERT_FALSE(loop.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(loop.status())) << loop.status();
  o.ring_entries = 32768;  // the limit itself is fine
  loop = Loop::Create(o);
  ASSERT_TRUE(loop.ok()) << loop.status();
  ExpectWorks(**loop);
}

TEST_F(LoopExhaustionTest, FailedWaitsAreRetriedNotFatal) {
  absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create();
  ASSERT_TRUE(loop.ok()) << loop.status();
  const bool ring = std::string((*loop)->backend_name()) == "io_uring";
  const uint64_t before = ring ? IoUringLoopPoller::wait_failures.load()
                               : EpollPoller::wait_failures.load();
  // EAGAIN too: the kernel short of memory for now (a pause, not a spin).
  for (int err : {ENOMEM, EBADF, EFAULT, EAGAIN}) {
    SCOPED_TRACE(std::strerror(err));
    ft::ScopedFaults faults;
    const int id =
        faults.Add({.calls = ring ? ft::kIoUringEnter : ft::kEpollWait,
                    .err = err,
                    .times = 3});
    // Idle turns: each waits, and the first three waits fail.
    for (int i = 0; i < 5; ++i) (*loop)->RunOnce(absl::Milliseconds(1));
    EXPECT_EQ(ft::Fired(id), 3);
    std::atomic<bool> posted{false};
    std::thread other([&] {
      absl::SleepFor(absl::Milliseconds(5));
      (*loop)->Post([&] { posted = true; });
    });
    ft::RunLoopUntil(**loop, [&] { return posted.load(); });
    other.join();
  }
  const uint64_t after = ring ? IoUringLoopPoller::wait_failures.load()
                              : EpollPoller::wait_failures.load();
  EXPECT_GE(after - before, 12u);
  ft::ClearRules();
  ExpectWorks(**loop);
}

}  // namespace
}  // namespace gopoll
