// SPDX-License-Identifier: BSD-3-Clause
// Loops at real resource limits, each scenario in a child process (this
// binary again, with --loop_limits_child=MODE) whose RLIMIT_NOFILE or
// RLIMIT_MEMLOCK the parent lowered before exec:
//   - one_free_fd: with exactly 1, 2, 3... free descriptors a loop is
//     either not created (Loop::Create's Status; the constructor's loop
//     without a poller) or wakes for Post and Stop from another thread;
//   - memlock_many_loops: hundreds of loops, each with a pipe read in
//     flight, past the memlock limit (later loops fall back to epoll):
//     every read completes (a failed ring setup once closed descriptor 0,
//     another loop's pipe);
//   - memlock_thread_move: at the memlock limit a ring loop with a read in
//     flight is run by another thread and destroyed by a third (the ring
//     used to be replaced there, and its setup failure aborted).
// The child exits 0 if every check held; a hang ends in its alarm (a
// signal the parent reports).
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "poll/loop/loop.h"

namespace gopoll {
namespace {

#define CHILD_CHECK(cond)                                                   \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "child check failed at line %d: %s\n", __LINE__, \
                   #cond);                                                  \
      return 1;                                                             \
    }                                                                       \
  } while (0)

// Post and Stop from another thread end Run() (the alarm ends a hang).
bool Wakes(Loop& loop) {
  std::atomic<bool> posted{false};
  std::thread other([&] {
    absl::SleepFor(absl::Milliseconds(2));
    loop.Post([&] { posted = true; });
    absl::SleepFor(absl::Milliseconds(2));
    loop.Stop();
  });
  loop.Run();
  other.join();
  return posted.load();
}

int OneFreeFd() {
  // Fill the descriptor table, then free exactly `k` descriptors.
  std::vector<int> held;
  for (;;) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    held.push_back(fd);
  }
  CHILD_CHECK(errno == EMFILE);
  CHILD_CHECK(held.size() > 8);
  int made = 0, refused = 0;
  for (int k = 1; k <= 6; ++k) {
    for (int i = 0; i < k; ++i) {
      ::close(held.back());
      held.pop_back();
    }
    {
      absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create();
      if (loop.ok()) {
        ++made;
        std::fprintf(stderr, "%d free: a %s loop\n", k,
                     (*loop)->backend_name());
        CHILD_CHECK(Wakes(**loop));
      } else {
        ++refused;
        std::fprintf(stderr, "%d free: %s\n", k,
                     loop.status().ToString().c_str());
      }
    }
    {
      Loop loop;  // never a loop that cannot be woken
      CHILD_CHECK(Wakes(loop));
    }
    for (;;) {
      int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      held.push_back(fd);
    }
  }
  // One free descriptor is never enough for a loop with an OS poller.
  CHILD_CHECK(refused > 0 || !Loop().has_poller());
  CHILD_CHECK(made > 0);
  for (int fd : held) ::close(fd);
  return 0;
}

struct PendingRead {
  std::unique_ptr<Loop> loop;
  int w = -1;
  char buf[4] = {};
  std::atomic<bool> done{false};
  absl::StatusOr<size_t> got = absl::UnknownError("not run");
  absl::StatusOr<AsyncFd> r = absl::UnknownError("not adopted");
};

// Adopts a new pipe's read end and starts a read; one loop turn submits it.
bool StartRead(PendingRead& p) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  p.w = fds[1];
  p.r = p.loop->Adopt(fds[0], FdKind::kFile);
  if (!p.r.ok()) return false;
  p.r->AsyncRead(absl::MakeSpan(p.buf), [&p](absl::StatusOr<size_t> n) {
    p.got = std::move(n);
    p.done = true;
  });
  p.loop->RunOnce(absl::ZeroDuration());
  return true;
}

bool Finish(PendingRead& p) {
  if (::write(p.w, "x", 1) != 1) return false;
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!p.done && absl::Now() < give_up) {
    p.loop->RunOnce(absl::Milliseconds(10));
  }
  return p.done && p.got.ok() && *p.got == 1 && p.buf[0] == 'x';
}

int MemlockManyLoops() {
  ::close(0);  // the first pipe's read end becomes descriptor 0
  constexpr int kLoops = 300;
  std::vector<std::unique_ptr<PendingRead>> reads;
  int ring = 0, epoll = 0;
  for (int i = 0; i < kLoops; ++i) {
    auto p = std::make_unique<PendingRead>();
    absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create();
    CHILD_CHECK(loop.ok());
    p->loop = *std::move(loop);
    if (std::string(p->loop->backend_name()) == "io_uring") {
      ++ring;
    } else {
      ++epoll;  // (or "threads" without an OS poller)
    }
    CHILD_CHECK(StartRead(*p));
    reads.push_back(std::move(p));
  }
  std::fprintf(stderr, "%d io_uring loops, %d epoll loops\n", ring, epoll);
  // Rings were made until the memlock limit, then epoll loops.
  CHILD_CHECK(ring == 0 || epoll > 0);
  int failed = 0;
  for (auto& p : reads) {
    if (!Finish(*p)) ++failed;
  }
  std::fprintf(stderr, "%d reads did not complete\n", failed);
  CHILD_CHECK(failed == 0);
  for (auto& p : reads) {
    p->r = absl::UnknownError("closed");
    p->loop.reset();
    ::close(p->w);
  }
  return 0;
}

int MemlockThreadMove() {
  // Rings until the memlock limit makes a loop fall back to epoll.
  std::vector<std::unique_ptr<Loop>> loops;
  for (int i = 0; i < 400; ++i) {
    absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create();
    CHILD_CHECK(loop.ok());
    const bool fell_back = std::string((*loop)->backend_name()) == "epoll";
    loops.push_back(*std::move(loop));
    if (fell_back) break;
  }
  std::fprintf(stderr, "%zu loops, the first on %s, the last on %s\n",
               loops.size(), loops.front()->backend_name(),
               loops.back()->backend_name());
  // The first loop (a ring if io_uring is available): a read submitted on
  // this thread, run on a second thread, completed on a third.
  auto moved = std::make_unique<PendingRead>();
  moved->loop = std::move(loops.front());
  CHILD_CHECK(StartRead(*moved));
  bool ok = false;
  std::thread([&] { moved->loop->RunOnce(absl::Milliseconds(1)); }).join();
  std::thread([&] { ok = Finish(*moved); }).join();
  CHILD_CHECK(ok);
  // Another: a read in flight, the loop destroyed by another thread (a
  // loop with an OS poller: without one the read runs on a helper thread,
  // which finishes it when it returns, see loop.h).
  if (loops.size() > 2 && loops[1]->has_poller()) {
    auto doomed = std::make_unique<PendingRead>();
    doomed->loop = std::move(loops[1]);
    CHILD_CHECK(StartRead(*doomed));
    std::thread([&] { doomed->loop.reset(); }).join();
    CHILD_CHECK(doomed->done);
    CHILD_CHECK(absl::IsCancelled(doomed->got.status()));
    doomed->r = absl::UnknownError("closed");
    ::close(doomed->w);
  }
  moved->r = absl::UnknownError("closed");
  moved->loop.reset();
  ::close(moved->w);
  return 0;
}

int RunChild(const std::string& mode) {
  ::alarm(60);  // a hang ends in SIGALRM, which the parent reports
  if (mode == "one_free_fd") return OneFreeFd();
  if (mode == "memlock_many_loops") return MemlockManyLoops();
  if (mode == "memlock_thread_move") return MemlockThreadMove();
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}

// Runs this binary as the child `mode` with `resource` lowered to `limit`.
void RunInChild(const char* mode, int resource, rlim_t limit) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Root with CAP_IPC_LOCK is not charged for rings (the memlock limit
    // would not bite): the child runs without it (its bounding set loses
    // it, so exec does not grant it; where the drop is not permitted the
    // capability is normally absent already, e.g. in Bazel's sandbox).
    ::prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0);
    rlimit rl{limit, limit};
    if (::setrlimit(resource, &rl) != 0) _exit(100);
    const std::string arg = std::string("--loop_limits_child=") + mode;
    char* const argv[] = {const_cast<char*>("loop_limits_test"),
                          const_cast<char*>(arg.c_str()), nullptr};
    ::execv("/proc/self/exe", argv);
    _exit(101);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status)) {
    ADD_FAILURE() << mode << ": the child died of signal " << WTERMSIG(status)
                  << (WTERMSIG(status) == SIGALRM ? " (a hang)" : "");
    return;
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << mode << " (see the child's stderr)";
}

TEST(LoopLimitsTest, ALoopWithFewFreeDescriptorsWakesOrIsNotCreated) {
  RunInChild("one_free_fd", RLIMIT_NOFILE, 64);
}

TEST(LoopLimitsTest, HundredsOfLoopsPastTheMemlockLimitAllComplete) {
  RunInChild("memlock_many_loops", RLIMIT_MEMLOCK, 512 * 1024);
}

TEST(LoopLimitsTest, ARingLoopMovesThreadsAtTheMemlockLimit) {
  RunInChild("memlock_thread_move", RLIMIT_MEMLOCK, 512 * 1024);
}

}  // namespace
}  // namespace gopoll

int main(int argc, char** argv) {
  constexpr char kChild[] = "--loop_limits_child=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], kChild, sizeof(kChild) - 1) == 0) {
      return gopoll::RunChild(argv[i] + sizeof(kChild) - 1);
    }
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
