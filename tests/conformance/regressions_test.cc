// SPDX-License-Identifier: BSD-3-Clause
// Regression cases the conformance suite found that need more than the
// harness's forms: loops destroyed and created on one thread.
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/internal/fd_access.h"
#include "poll/loop/loop.h"
#include "tests/conformance/harness.h"

namespace gopoll::conformance {
namespace {

// FD::Close on the thread of an FD's own loop does not wait for the FD's
// pending operations (only that thread can finish them). The loop was
// recognised by its poller's address: a thread that had run a loop since
// destroyed took a new loop, whose poller got the same address, for its
// own, and Close there returned with the handle still held by a pending
// operation of the new loop (run by another thread). Pollers are now told
// apart by a unique id. (The address is reused by glibc's allocator at
// once; under ASan's quarantine it is not, and the case only checks the
// contract.)
TEST(Regressions, CloseOnAThreadOfADestroyedLoopWaitsForAnotherLoopsOp) {
  std::unique_ptr<Loop> b;
  absl::StatusOr<AsyncFd> r;
  Sysfd other = kInvalidSysfd;
  for (int attempt = 0; attempt < 20; ++attempt) {
    const internal::Poller* old_poller = nullptr;
    {
      Loop a;
      a.RunOnce(absl::ZeroDuration());  // this thread ran loop a
      absl::StatusOr<RawPair> raw = MakeRawPair(Transports().front());
      ASSERT_TRUE(raw.ok()) << raw.status();
      absl::StatusOr<AsyncFd> probe = a.Adopt(raw->a, raw->kind);
      ASSERT_TRUE(probe.ok()) << probe.status();
      old_poller = gopoll::internal::FdAccess::poll_desc(probe->fd()).poller();
      CloseRaw(raw->b);
    }
    b = std::make_unique<Loop>();
    absl::StatusOr<RawPair> raw = MakeRawPair(Transports().front());
    ASSERT_TRUE(raw.ok()) << raw.status();
    r = b->Adopt(raw->a, raw->kind);
    ASSERT_TRUE(r.ok()) << r.status();
    other = raw->b;
    if (old_poller == nullptr ||
        gopoll::internal::FdAccess::poll_desc(r->fd()).poller() == old_poller ||
        attempt == 19) {
      break;  // reused (or no poller at all: plan9_stub; or never reused)
    }
    r = AsyncFd();
    b.reset();
    CloseRaw(other);
  }
  // Another thread runs loop b (Run: the loop runs until the read ended, so
  // Close waits for it): it starts the read, then pauses inside a
  // callback, so that the read is pending when this thread closes the FD.
  absl::Notification armed;
  std::thread runner([&] {
    char buf[1];
    r->AsyncRead(absl::MakeSpan(buf), [&](absl::StatusOr<size_t> n) {
      EXPECT_TRUE(IsClosing(n.status())) << n.status();
      b->Stop();
    });
    b->Post([&] {
      armed.Notify();
      // Long enough for a Close that wrongly returns at once to be seen.
      absl::SleepFor(absl::Milliseconds(200));
    });
    b->Run();
  });
  armed.WaitForNotification();
  const Sysfd sysfd = r->fd().sysfd();
  ASSERT_TRUE(r->Close().ok());
  // Close returned: the pending read is over and the handle released.
  EXPECT_EQ(r->fd().sysfd(), kInvalidSysfd)
      << "Close returned while the handle " << sysfd << " was in use";
  runner.join();
  r = AsyncFd();
  b.reset();
  CloseRaw(other);
}

}  // namespace
}  // namespace gopoll::conformance
