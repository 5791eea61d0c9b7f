// SPDX-License-Identifier: BSD-3-Clause
// Regular files on the io_uring loop (poll/unix/uring_poller.h, "ring-only"
// FDs): their loop reads and writes are ring operations, so deadlines and
// Close reach them; on the epoll loop they run on helper threads and a
// deadline cannot be set (IsNoDeadline, as in Go). A FUSE file whose reads
// the test holds (tests/slow_fuse.h) makes a read that really waits: a
// deadline ends it with IsDeadlineExceeded, never early, Close ends it
// with IsClosing, and a read that is answered delivers the file's bytes.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "poll/loop/loop.h"
#include "poll/unix/uring_poller.h"
#include "tests/loop_test_util.h"
#include "tests/posix_test_util.h"
#include "tests/slow_fuse.h"

namespace gopoll {
namespace {

using ::gopoll::testing::FdLeakTest;
using ::gopoll::testing::ReadOnLoop;
using ::gopoll::testing::RunLoopUntil;
using ::gopoll::testing::SlowFuse;

LoopOptions Backend(LoopBackend b) {
  LoopOptions o;
  o.backend = b;
  return o;
}

// The slow file, adopted by `loop`.
absl::StatusOr<AsyncFd> AdoptSlow(Loop& loop, const SlowFuse& fuse) {
  const int fd = ::open(fuse.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError("open of the FUSE file failed");
  return loop.Adopt(fd, FdKind::kFile);
}

// Runs `loop` (its turns submit the read) until the server has seen `n`
// reads, for at most 10 s.
void RunUntilSeen(Loop& loop, const SlowFuse& fuse, int n) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!fuse.WaitSeen(n, absl::Milliseconds(1)) && absl::Now() < give_up) {
    loop.RunOnce(absl::Milliseconds(1));
  }
}

class LoopUringFileTest : public FdLeakTest {
 protected:
  void SetUp() override {
    FdLeakTest::SetUp();
    absl::Status av = IoUringLoopPoller::Available();
    if (!av.ok()) GTEST_SKIP() << "io_uring unavailable: " << av;
  }

  int TempFile() {
    const char* tmp = ::getenv("TEST_TMPDIR");
    std::string path =
        std::string(tmp != nullptr ? tmp : "/tmp") + "/gopoll-file-XXXXXX";
    int fd = ::mkostemp(path.data(), O_CLOEXEC);
    EXPECT_GE(fd, 0);
    ::unlink(path.c_str());
    return fd;
  }

  // The slow file, or a skip where FUSE cannot be mounted (not root, no
  // /dev/fuse): the environment, not the library.
  std::unique_ptr<SlowFuse> MountSlow() {
    absl::StatusOr<std::unique_ptr<SlowFuse>> f = SlowFuse::Mount();
    if (!f.ok()) return nullptr;
    return std::move(*f);
  }
};

TEST_F(LoopUringFileTest, RegularFileOperationsRunOnTheRingWithDeadlines) {
  Loop loop(Backend(LoopBackend::kIoUring));
  ASSERT_STREQ(loop.backend_name(), "io_uring");
  absl::StatusOr<AsyncFd> f = loop.Adopt(TempFile(), FdKind::kFile);
  ASSERT_TRUE(f.ok()) << f.status();
  // Deadlines work on a ring file (Go and the epoll loop refuse them).
  ASSERT_TRUE(f->fd().SetDeadline(absl::Now() + absl::Hours(1)).ok());
  absl::StatusOr<size_t> w = absl::UnknownError("not run");
  bool done = false;
  f->AsyncWrite(std::string_view("hello, file"), [&](absl::StatusOr<size_t> n) {
    w = std::move(n);
    done = true;
  });
  RunLoopUntil(loop, [&] { return done; });
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(*w, 11u);
  ASSERT_TRUE(f->fd().Seek(0, SEEK_SET).ok());
  char buf[64];
  absl::StatusOr<size_t> r = ReadOnLoop(loop, *f, absl::MakeSpan(buf));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::string_view(buf, *r), "hello, file");
  EXPECT_TRUE(IsEof(ReadOnLoop(loop, *f, absl::MakeSpan(buf)).status()));
  // A past deadline fails the read before it starts.
  ASSERT_TRUE(f->fd().Seek(0, SEEK_SET).ok());
  ASSERT_TRUE(f->fd().SetReadDeadline(absl::Now() - absl::Seconds(1)).ok());
  EXPECT_TRUE(
      IsDeadlineExceeded(ReadOnLoop(loop, *f, absl::MakeSpan(buf)).status()));
  EXPECT_TRUE(f->Close().ok());
}

TEST_F(LoopUringFileTest, TheEpollLoopRefusesFileDeadlines) {
  Loop loop(Backend(LoopBackend::kEpoll));
  absl::StatusOr<AsyncFd> f = loop.Adopt(TempFile(), FdKind::kFile);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(IsNoDeadline(f->fd().SetReadDeadline(absl::Now())));
  EXPECT_TRUE(f->Close().ok());
}

TEST_F(LoopUringFileTest, ADeadlineEndsAWaitingFileRead) {
  std::unique_ptr<SlowFuse> fuse = MountSlow();
  if (fuse == nullptr) GTEST_SKIP() << "FUSE cannot be mounted here";
  // Declared before the loop: a callback the loop still runs when it is
  // destroyed (a failed test) finds them alive.
  absl::StatusOr<size_t> got = absl::UnknownError("not run");
  bool done = false;
  Loop loop(Backend(LoopBackend::kIoUring));
  absl::StatusOr<AsyncFd> f = AdoptSlow(loop, *fuse);
  ASSERT_TRUE(f.ok()) << f.status();
  const absl::Time deadline = absl::Now() + absl::Milliseconds(100);
  ASSERT_TRUE(f->fd().SetReadDeadline(deadline).ok());
  char buf[100];
  absl::StatusOr<size_t> r = ReadOnLoop(loop, *f, absl::MakeSpan(buf));
  const absl::Time returned = absl::Now();
  EXPECT_TRUE(IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_GE(returned, deadline);
  EXPECT_GE(fuse->reads_seen(), 1);   // the read reached the file system
  EXPECT_GE(fuse->interrupted(), 1);  // and the cancel interrupted it there
  // The file still works: a served read gets its bytes.
  ASSERT_TRUE(f->fd().SetReadDeadline(absl::InfiniteFuture()).ok());
  f->AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
    got = std::move(n);
    done = true;
  });
  RunUntilSeen(loop, *fuse, fuse->reads_seen() + 1);
  ASSERT_EQ(fuse->reads_held(), 1);
  fuse->Serve();
  RunLoopUntil(loop, [&] { return done; });
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(*got, sizeof(buf));
  for (size_t i = 0; i < *got; ++i) {
    ASSERT_EQ(buf[i], SlowFuse::Byte(i)) << i;
  }
  EXPECT_TRUE(f->Close().ok());
}

TEST_F(LoopUringFileTest, CloseEndsAWaitingFileRead) {
  std::unique_ptr<SlowFuse> fuse = MountSlow();
  if (fuse == nullptr) GTEST_SKIP() << "FUSE cannot be mounted here";
  absl::StatusOr<size_t> got = absl::UnknownError("not run");
  bool done = false;
  char buf[100];
  Loop loop(Backend(LoopBackend::kIoUring));
  absl::StatusOr<AsyncFd> f = AdoptSlow(loop, *fuse);
  ASSERT_TRUE(f.ok()) << f.status();
  f->AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
    got = std::move(n);
    done = true;
  });
  RunUntilSeen(loop, *fuse, 1);
  ASSERT_EQ(fuse->reads_held(), 1);
  EXPECT_TRUE(f->Close().ok());
  RunLoopUntil(loop, [&] { return done; });
  EXPECT_TRUE(IsClosing(got.status())) << got.status();
  EXPECT_GE(fuse->interrupted(), 1);
}

// A regular file's read and write share its position, which the ring does
// not lock: the loop runs them one at a time (the second is busy).
TEST_F(LoopUringFileTest, AFilesReadAndWriteRunOneAtATime) {
  std::unique_ptr<SlowFuse> fuse = MountSlow();
  if (fuse == nullptr) GTEST_SKIP() << "FUSE cannot be mounted here";
  absl::StatusOr<size_t> got = absl::UnknownError("not run");
  absl::StatusOr<size_t> wrote = absl::UnknownError("not run");
  bool done = false, write_done = false;
  char buf[10];
  Loop loop(Backend(LoopBackend::kIoUring));
  absl::StatusOr<AsyncFd> f = AdoptSlow(loop, *fuse);
  ASSERT_TRUE(f.ok()) << f.status();
  f->AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
    got = std::move(n);
    done = true;
  });
  RunUntilSeen(loop, *fuse, 1);
  f->AsyncWrite(std::string_view("x"), [&](absl::StatusOr<size_t> n) {
    wrote = std::move(n);
    write_done = true;
  });
  RunLoopUntil(loop, [&] { return write_done; });
  EXPECT_TRUE(IsBusy(wrote.status())) << wrote.status();
  fuse->Serve();
  RunLoopUntil(loop, [&] { return done; });
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(std::string_view(buf, *got), "abcdefghij");
  EXPECT_TRUE(f->Close().ok());
}

}  // namespace
}  // namespace gopoll
