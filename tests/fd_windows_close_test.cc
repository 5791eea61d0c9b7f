// SPDX-License-Identifier: BSD-3-Clause
// Close's guarantees on the IOCP backend (under Wine), whatever mode lazy
// binding picked for the handle: Close waits for the last reference (also
// of a handle that was never bound, whose Close itself decides kSync), it
// ends a Read blocked on a synchronous pipe (Go's TestClosedPipeRaceRead),
// and a SetDeadline racing Close reports OK or IsClosing, never
// IsNoDeadline.
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <atomic>
#include <string>
#include <string_view>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "poll/fd.h"
#include "poll/windows/iocp.h"
#include "tests/windows_test_util.h"

namespace gopoll {
namespace {

using testing::HandleCount;
using testing::kHang;
using testing::PipeName;

Sysfd S(HANDLE h) { return reinterpret_cast<Sysfd>(h); }

class FdWindowsClose : public ::testing::Test {
 protected:
  void SetUp() override {
    Iocp::Port();  // the port lives for the whole process
    handles_ = HandleCount();
  }
  void TearDown() override { testing::ExpectNoHandleLeak(handles_); }
  DWORD handles_ = 0;
};

HANDLE FirstInstance(const std::string& name) {
  return CreateNamedPipeA(
      name.c_str(),
      PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
      PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 4096, 4096, 0,
      nullptr);
}

// A pipe that no operation ever bound: Close's own initIO() decides kSync
// for it (the FD is closing). Close must still wait until the RawControl
// that holds a reference has returned and the handle is closed: then the
// pipe name can be created again as a first instance.
TEST_F(FdWindowsClose, CloseOfANeverBoundPipeWaitsForTheLastReference) {
  const std::string name = PipeName("gopoll_close_test");
  HANDLE server = FirstInstance(name);
  ASSERT_NE(server, INVALID_HANDLE_VALUE) << GetLastError();
  FD fd(S(server));
  ASSERT_TRUE(fd.Init(FdKind::kPipe, true).ok());
  absl::Notification in_f;
  std::atomic<bool> close_returned{false};
  std::atomic<bool> returned_while_held{false};
  std::thread holder([&] {
    EXPECT_TRUE(fd.RawControl([&](Sysfd) {
                    in_f.Notify();
                    // Hold the reference until Close has marked the FD
                    // closing (a state), then a while longer: Close must
                    // not return meanwhile.
                    const absl::Time give_up = absl::Now() + kHang;
                    while (!IsClosing(fd.SetReadDeadline(absl::Time())) &&
                           absl::Now() < give_up) {
                      absl::SleepFor(absl::Milliseconds(1));
                    }
                    const absl::Time until =
                        absl::Now() + absl::Milliseconds(200);
                    while (absl::Now() < until) {
                      if (close_returned.load()) returned_while_held = true;
                      absl::SleepFor(absl::Milliseconds(1));
                    }
                  }).ok());
  });
  in_f.WaitForNotification();
  EXPECT_TRUE(fd.Close().ok());
  close_returned = true;
  // The handle is closed when Close returns: the name is free again.
  HANDLE again = FirstInstance(name);
  const DWORD err = again == INVALID_HANDLE_VALUE ? GetLastError() : 0;
  holder.join();
  EXPECT_FALSE(returned_while_held.load())
      << "Close returned while a RawControl still held the handle";
  EXPECT_NE(again, INVALID_HANDLE_VALUE)
      << "the pipe was still open after Close returned: error " << err;
  if (again != INVALID_HANDLE_VALUE) CloseHandle(again);
}

// Go's TestClosedPipeRaceRead: a Read of a synchronous pipe (CreatePipe)
// blocks in ReadFile; Close must end it (CancelIoEx), the Read reports
// IsClosing, not data that arrives later. Close races the start of the
// Read at various points, also just before ReadFile is entered (Close
// cancels until the call has left).
TEST_F(FdWindowsClose, CloseEndsAReadBlockedOnASynchronousPipe) {
  for (int round = 0; round < 40; ++round) {
    HANDLE r = nullptr, w = nullptr;
    ASSERT_TRUE(CreatePipe(&r, &w, nullptr, 0));
    FD fd(S(r));
    ASSERT_TRUE(fd.Init(FdKind::kPipe, true).ok());
    absl::Status got;
    absl::Notification read_done;
    std::thread reader([&] {
      char c;
      got = fd.Read(absl::MakeSpan(&c, 1)).status();
      read_done.Notify();
    });
    if (round % 4 == 3) {
      absl::SleepFor(absl::Milliseconds(round % 20));
    } else {
      for (int i = 0; i < round * 50; ++i) std::this_thread::yield();
    }
    const absl::Status closed = fd.Close();
    const bool ended = read_done.WaitForNotificationWithTimeout(kHang);
    if (!ended) {
      DWORD n = 0;
      WriteFile(w, "x", 1, &n, nullptr);  // unblock it to finish the test
    }
    reader.join();
    CloseHandle(w);
    ASSERT_TRUE(ended) << "round " << round
                       << ": Close left the Read blocked in ReadFile";
    EXPECT_TRUE(closed.ok()) << closed;
    ASSERT_TRUE(IsClosing(got)) << "round " << round << ": " << got;
  }
}

// The narrow case of the test above: the Read has passed its closing check
// but not yet entered ReadFile when Close cancels. A single CancelIoEx
// finds nothing to cancel and the ReadFile then blocks; Close cancels
// again until the call has left. Close starts right after the reader
// announced itself, a little later in each round.
TEST_F(FdWindowsClose, CloseCancelsAReadThatEntersReadFileAfterIt) {
  constexpr int kRounds = 300;
  FD* current = nullptr;  // published by `go`
  std::atomic<int> go{-1};
  std::atomic<int> started{-1};
  std::atomic<int> finished{-1};
  std::atomic<bool> quit{false};
  absl::Status result;
  std::thread reader([&] {
    for (int round = 0; round < kRounds; ++round) {
      while (go.load() != round) {
        if (quit.load()) return;
        std::this_thread::yield();
      }
      started.store(round);
      char c;
      result = current->Read(absl::MakeSpan(&c, 1)).status();
      finished.store(round);
    }
  });
  // A Read that Close left blocked in ReadFile (and so a Close waiting for
  // it) would hang the test: after 5 s the watchdog writes a byte to end
  // it, and counts the round.
  std::atomic<HANDLE> closing_w{nullptr};
  std::atomic<int> stuck{0};
  std::atomic<bool> stop{false};
  std::thread watchdog([&] {
    HANDLE seen = nullptr;
    absl::Time since;
    while (!stop.load()) {
      absl::SleepFor(absl::Milliseconds(10));
      HANDLE w = closing_w.load();
      if (w != seen) {
        seen = w;
        since = absl::Now();
      } else if (w != nullptr && absl::Now() - since > absl::Seconds(5)) {
        DWORD n = 0;
        WriteFile(w, "x", 1, &n, nullptr);
        ++stuck;
        since = absl::Now();
      }
    }
  });
  int bad = 0;
  std::string first_bad;
  for (int round = 0; round < kRounds && stuck.load() < 3; ++round) {
    HANDLE r = nullptr, w = nullptr;
    EXPECT_TRUE(CreatePipe(&r, &w, nullptr, 0));
    {
      FD fd(S(r));
      EXPECT_TRUE(fd.Init(FdKind::kPipe, true).ok());
      // Decide the mode first (kSync), so the Read goes straight on.
      EXPECT_TRUE(IsNoDeadline(fd.SetReadDeadline(absl::InfiniteFuture())));
      current = &fd;
      go.store(round);
      while (started.load() != round) {
      }
      std::atomic<int> spin{0};
      while (spin.fetch_add(1) < (round % 64) * 4) {
      }
      closing_w.store(w);
      EXPECT_TRUE(fd.Close().ok());
      while (finished.load() != round) std::this_thread::yield();
      closing_w.store(nullptr);
    }
    CloseHandle(w);
    if (!IsClosing(result)) {
      if (++bad == 1) first_bad = result.ToString();
    }
  }
  stop.store(true);
  watchdog.join();
  quit.store(true);  // if the rounds stopped early
  reader.join();
  EXPECT_EQ(stuck.load(), 0) << "Reads left blocked in ReadFile by Close";
  EXPECT_EQ(bad, 0) << bad
                    << " Reads were not ended by Close; first: " << first_bad;
}

// A SetDeadline that took its reference before Close marked the FD
// closing, and ran initIO() after Close had (or Close's initIO() had)
// decided kSync, the mode of a closing handle, reported IsNoDeadline.
// Either OK or IsClosing is right. The window is a few instructions wide:
// Close starts right after the setter announced itself, a little later in
// each round, over many rounds.
TEST_F(FdWindowsClose, SetDeadlineRacingCloseIsOkOrClosing) {
  constexpr int kRounds = 1000;
  FD* current = nullptr;  // published by `go`
  std::atomic<int> go{-1};
  std::atomic<int> started{-1};
  std::atomic<int> finished{-1};
  absl::Status result;
  std::thread setter([&] {
    for (int round = 0; round < kRounds; ++round) {
      while (go.load() != round) std::this_thread::yield();
      started.store(round);
      result = current->SetReadDeadline(absl::Now() + absl::Hours(1));
      finished.store(round);
    }
  });
  int bad = 0;
  std::string first_bad;
  for (int round = 0; round < kRounds; ++round) {
    const std::string name = PipeName("gopoll_deadline_race");
    HANDLE server = FirstInstance(name);
    ASSERT_NE(server, INVALID_HANDLE_VALUE) << GetLastError();
    {
      FD fd(S(server));
      ASSERT_TRUE(fd.Init(FdKind::kPipe, true).ok());
      current = &fd;
      go.store(round);
      while (started.load() != round) {
      }
      std::atomic<int> spin{0};
      while (spin.fetch_add(1) < round % 32) {
      }
      EXPECT_TRUE(fd.Close().ok());
      while (finished.load() != round) std::this_thread::yield();
    }
    if (!result.ok() && !IsClosing(result)) {
      if (++bad == 1) first_bad = result.ToString();
    }
  }
  setter.join();
  EXPECT_EQ(bad, 0) << bad << " of " << kRounds
                    << " rounds failed; first: " << first_bad;
}

}  // namespace
}  // namespace gopoll
