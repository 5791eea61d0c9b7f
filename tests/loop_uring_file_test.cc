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

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "poll/loop/loop.h"
#include "poll/loop/task.h"
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

// --- The ring's thread model (poll/loop/loop.h): a loop run on one thread
// and destroyed on another. The loop's thread stays alive (a worker that
// would run other loops) until the test ends.

// A regular file of kFileSize known bytes in TEST_TMPDIR.
constexpr size_t kFileSize = 64;
char FileByte(size_t i) { return static_cast<char>('A' + i % 26); }

std::string MakeFile() {
  const char* tmp = ::getenv("TEST_TMPDIR");
  std::string path =
      std::string(tmp != nullptr ? tmp : "/tmp") + "/ring_thread_model_XXXXXX";
  const int fd = ::mkstemp(path.data());
  std::string data;
  for (size_t i = 0; i < kFileSize; ++i) data.push_back(FileByte(i));
  EXPECT_EQ(::write(fd, data.data(), data.size()),
            static_cast<ssize_t>(data.size()));
  ::close(fd);
  return path;
}

// Runs `fn` on a new thread that then stays alive until the returned
// guard is destroyed.
class ParkedThread {
 public:
  template <typename Fn>
  explicit ParkedThread(Fn fn)
      : t_([this, fn] {
          fn();
          ran_.Notify();
          release_.WaitForNotification();
        }) {
    ran_.WaitForNotification();
  }
  ~ParkedThread() {
    release_.Notify();
    t_.join();
  }

 private:
  absl::Notification ran_, release_;
  std::thread t_;
};

class RingThreadModelTest : public FdLeakTest,
                            public ::testing::WithParamInterface<LoopBackend> {
 protected:
  void SetUp() override {
    FdLeakTest::SetUp();
    if (GetParam() == LoopBackend::kIoUring &&
        !IoUringLoopPoller::Available().ok()) {
      GTEST_SKIP() << "io_uring unavailable";
    }
  }
};

// Bytes a kernel read are delivered, or the file position did not move:
// ~Loop on another thread, with a file read the kernel has done (or is
// doing) when the loop is destroyed.
TEST_P(RingThreadModelTest, DestroyOnAnotherThreadDeliversAFileReadOrKeepsIt) {
  const std::string path = MakeFile();
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE(round);
    char buf[kFileSize];
    std::atomic<bool> done{false};
    absl::StatusOr<size_t> got = absl::UnknownError("not run");
    auto loop = std::make_unique<Loop>(Backend(GetParam()));
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    absl::StatusOr<AsyncFd> f = loop->Adopt(fd, FdKind::kFile);
    ASSERT_TRUE(f.ok()) << f.status();
    {
      ParkedThread runner([&] {
        f->AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
          got = std::move(n);
          done = true;
        });
        // The first turn starts the read (an SQE), the second submits it
        // (the completion comes later: nobody has reaped it yet when the
        // loop is destroyed, unless the round was slow).
        loop->RunOnce(absl::ZeroDuration());
        loop->RunOnce(absl::ZeroDuration());
      });
      absl::SleepFor(absl::Milliseconds(round % 3 * 5));
      loop.reset();  // on this thread, while the runner lives
    }
    // On epoll the read runs on a helper thread, which delivers when done.
    const absl::Time give_up = absl::Now() + absl::Seconds(20);
    while (!done && absl::Now() < give_up)
      absl::SleepFor(absl::Milliseconds(1));
    ASSERT_TRUE(done);
    const off_t pos = ::lseek(fd, 0, SEEK_CUR);
    if (got.ok()) {
      EXPECT_EQ(pos, static_cast<off_t>(*got));
      for (size_t i = 0; i < *got; ++i) ASSERT_EQ(buf[i], FileByte(i)) << i;
    } else {
      EXPECT_TRUE(absl::IsCancelled(got.status())) << got.status();
      EXPECT_EQ(pos, 0) << "the kernel read bytes that were dropped";
    }
    EXPECT_TRUE(f->Close().ok());
  }
  ::unlink(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Backends, RingThreadModelTest,
                         ::testing::Values(LoopBackend::kIoUring,
                                           LoopBackend::kEpoll),
                         [](const ::testing::TestParamInfo<LoopBackend>& i) {
                           return i.param == LoopBackend::kIoUring ? "io_uring"
                                                                   : "epoll";
                         });

// A coroutine's file read, abandoned when ~Loop on another thread destroys
// the coroutine: bytes the kernel read are kept for the FD's next read.
// (io_uring: the epoll loop runs file reads on helper threads, whose
// abandoned reads are not kept; see CHANGELOG.md.)
TEST_F(LoopUringFileTest, AnAbandonedFileReadKeepsItsBytesOnAnyThread) {
  const std::string path = MakeFile();
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE(round);
    static char buf[kFileSize];
    std::string taken;  // what the coroutine got, if it was resumed
    auto loop = std::make_unique<Loop>(Backend(LoopBackend::kIoUring));
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    absl::StatusOr<AsyncFd> f = loop->Adopt(fd, FdKind::kFile);
    ASSERT_TRUE(f.ok()) << f.status();
    {
      ParkedThread runner([&] {
        loop->Spawn([](AsyncFd file, std::string* taken) -> Task<void> {
          // Resumed only if the read completed while the runner ran the
          // loop (a slow round): then the coroutine has the bytes.
          absl::StatusOr<size_t> n =
              co_await file.Read(absl::MakeSpan(buf, 16));
          if (n.ok()) taken->assign(buf, *n);
        }(*f, &taken));
        loop->RunOnce(absl::ZeroDuration());  // the task starts its read
        loop->RunOnce(absl::ZeroDuration());  // which is submitted
      });
      absl::SleepFor(absl::Milliseconds(round % 3 * 5));
      loop.reset();
    }
    // Whatever the abandoned read got comes first, then the rest: the
    // file from its start, nothing lost.
    std::string all = taken;
    char chunk[kFileSize];
    for (;;) {
      absl::StatusOr<size_t> n = f->fd().Read(absl::MakeSpan(chunk));
      if (!n.ok() || *n == 0) break;
      all.append(chunk, *n);
    }
    std::string want;
    for (size_t i = 0; i < kFileSize; ++i) want.push_back(FileByte(i));
    EXPECT_EQ(all, want);
    EXPECT_TRUE(f->Close().ok());
  }
  ::unlink(path.c_str());
}

// A read the kernel cannot interrupt (a FUSE server that ignores
// FUSE_INTERRUPT, standing for an NFS hard mount): ~Loop on another thread
// waits for it, as on the loop's own thread; the callback gets the bytes,
// and the kernel never writes into the buffer after it was reported done.
TEST_F(LoopUringFileTest, DestroyOnAnotherThreadWaitsForAnUninterruptibleRead) {
  std::unique_ptr<SlowFuse> fuse = MountSlow();
  if (fuse == nullptr) GTEST_SKIP() << "FUSE cannot be mounted here";
  static char buf[64];
  std::atomic<bool> done{false}, served{false}, done_before_served{false};
  absl::StatusOr<size_t> got = absl::UnknownError("not run");
  auto loop = std::make_unique<Loop>(Backend(LoopBackend::kIoUring));
  absl::StatusOr<AsyncFd> f = AdoptSlow(*loop, *fuse);
  ASSERT_TRUE(f.ok()) << f.status();
  fuse->IgnoreInterrupts(true);
  {
    ParkedThread runner([&] {
      f->AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
        got = std::move(n);
        done_before_served = !served.load();
        done = true;
        if (got.ok()) {
          for (size_t i = 0; i < *got; ++i) {
            if (buf[i] != SlowFuse::Byte(i)) got = absl::DataLossError("bytes");
          }
        }
        std::memset(buf, 0, sizeof(buf));  // "returned": the kernel is done
      });
      RunUntilSeen(*loop, *fuse, 1);
    });
    ASSERT_EQ(fuse->reads_held(), 1);
    std::thread destroyer([&] { loop.reset(); });
    // ~Loop cancels (ignored by the server) and must wait; served later.
    absl::SleepFor(absl::Milliseconds(50));
    served = true;
    fuse->Serve();
    destroyer.join();
  }
  ASSERT_TRUE(done);
  EXPECT_FALSE(done_before_served) << "reported done while the kernel read";
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, sizeof(buf));
  absl::SleepFor(absl::Milliseconds(20));
  for (char c : buf) ASSERT_EQ(c, 0) << "the kernel wrote into a done buffer";
  EXPECT_GE(fuse->ignored_interrupts(), 1);
  EXPECT_TRUE(f->Close().ok());
}

// A thread that submitted a ring read and then exits: the kernel cancels
// its work (the FUSE read is interrupted, -EINTR/-ECANCELED that nobody
// asked for); the loop, run on another thread later, submits it again and
// the read gets its bytes.
TEST_F(LoopUringFileTest, ASubmitterThatExitsDoesNotEndItsRead) {
  std::unique_ptr<SlowFuse> fuse = MountSlow();
  if (fuse == nullptr) GTEST_SKIP() << "FUSE cannot be mounted here";
  char buf[10];
  bool done = false;
  absl::StatusOr<size_t> got = absl::UnknownError("not run");
  Loop loop(Backend(LoopBackend::kIoUring));
  absl::StatusOr<AsyncFd> f = AdoptSlow(loop, *fuse);
  ASSERT_TRUE(f.ok()) << f.status();
  std::thread([&] {
    f->AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
      got = std::move(n);
      done = true;
    });
    RunUntilSeen(loop, *fuse, 1);
  }).join();
  // The exit interrupted the held read; the loop submits it again.
  RunUntilSeen(loop, *fuse, 2);
  EXPECT_FALSE(done);
  fuse->Serve();
  RunLoopUntil(loop, [&] { return done; });
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(std::string_view(buf, *got), "abcdefghij");
  EXPECT_TRUE(f->Close().ok());
}

}  // namespace
}  // namespace gopoll
