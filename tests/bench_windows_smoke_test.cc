// SPDX-License-Identifier: BSD-3-Clause
// Keeps the benchmark bodies of //bench:fd_vs_raw_windows compiling and
// correct: each runs a few rounds (rewinding at end of file) and its bytes
// are checked; each FD is in the I/O mode its benchmark claims to measure;
// no handle is left open. No duration is asserted.
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <cstdint>

#include "absl/time/clock.h"
#include "bench/windows_bodies.h"
#include "gtest/gtest.h"
#include "poll/fd.h"

namespace gopoll::bench {
namespace {

DWORD HandleCount() {
  DWORD n = 0;
  GetProcessHandleCount(GetCurrentProcess(), &n);
  return n;
}

class BenchWindowsSmoke : public ::testing::Test {
 protected:
  void SetUp() override {
    // A first reader creates the process-wide port and its thread, which
    // live for the whole process: not a leak.
    WinFileReader warm(WinFileReader::kBlock, WinFileReader::Mode::kOverlapped);
    handles_ = HandleCount();
  }
  void TearDown() override {
    // The helper thread of a mode query may still be closing its duplicate.
    for (int i = 0; i < 100 && HandleCount() != handles_; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    EXPECT_EQ(HandleCount(), handles_) << "handle leak";
  }
  DWORD handles_ = 0;
};

TEST_F(BenchWindowsSmoke, SyncReadsSeeThePattern) {
  // 16 blocks: 40 reads rewind twice.
  WinFileReader r(16 * WinFileReader::kBlock, WinFileReader::Mode::kSync);
  EXPECT_EQ(r.fd_mode(), IoMode::kSync);
  EXPECT_EQ(r.ReadRaw(40), 40 * 4096);
  EXPECT_EQ(r.ReadFd(40), 40 * 4096);
  EXPECT_EQ(r.mismatches(), 0);
}

TEST_F(BenchWindowsSmoke, OverlappedReadsSeeThePattern) {
  WinFileReader r(16 * WinFileReader::kBlock, WinFileReader::Mode::kOverlapped);
  EXPECT_EQ(r.fd_mode(), IoMode::kPort);  // bound lazily by the first read
  EXPECT_EQ(r.ReadRaw(40), 40 * 4096);
  EXPECT_EQ(r.ReadRawIocp(40), 40 * 4096);
  EXPECT_EQ(r.ReadFd(40), 40 * 4096);
  EXPECT_EQ(r.mismatches(), 0);
}

}  // namespace
}  // namespace gopoll::bench
