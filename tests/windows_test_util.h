// SPDX-License-Identifier: BSD-3-Clause
// tests/windows_test_util.h
//
// Helpers shared by the Windows test suites (run under Wine): status
// assertions, the process handle count for leak checks, a recorder of the
// IOCP backend's initIO() decisions, unique pipe names, and a runner that
// turns a hanging call into a failure.
#ifndef TESTS_WINDOWS_TEST_UTIL_H_
#define TESTS_WINDOWS_TEST_UTIL_H_

// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "poll/windows/iocp.h"

namespace gopoll::testing {

// Generous bound used only to detect hangs, never to assert speed.
inline constexpr absl::Duration kHang = absl::Seconds(20);

template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}
inline absl::Status StatusOf(const absl::Status& s) { return s; }

#define ASSERT_OK(e)                                  \
  do {                                                \
    absl::Status _s = ::gopoll::testing::StatusOf(e); \
    ASSERT_TRUE(_s.ok()) << _s;                       \
  } while (0)
// Between starting a thread and joining it (an ASSERT would return past
// the join and terminate the process).
#define EXPECT_OK(e)                                  \
  do {                                                \
    absl::Status _s = ::gopoll::testing::StatusOf(e); \
    EXPECT_TRUE(_s.ok()) << _s;                       \
  } while (0)

inline DWORD HandleCount() {
  DWORD n = 0;
  GetProcessHandleCount(GetCurrentProcess(), &n);
  return n;
}

// Fails the test unless the process is back to `before` open handles,
// allowing up to a second for helper threads that are still closing theirs
// (e.g. a mode query's duplicate handle).
inline void ExpectNoHandleLeak(DWORD before) {
  for (int i = 0; i < 100 && HandleCount() != before; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(HandleCount(), before) << "handle leak";
}

// Records initIO() decisions (install with SetInitIOHook).
struct BindLog {
  absl::Mutex mu;
  std::vector<std::pair<HANDLE, IoMode>> binds;
  std::vector<int64_t> bind_errors;
  void Record(HANDLE h, IoMode m, int64_t err) {
    absl::MutexLock l(&mu);
    binds.push_back({h, m});
    bind_errors.push_back(err);
  }
  int Count(HANDLE h) {
    absl::MutexLock l(&mu);
    int n = 0;
    for (auto& b : binds) n += b.first == h;
    return n;
  }
  // The latest decision: handle values are reused after CloseHandle.
  IoMode Mode(HANDLE h) {
    absl::MutexLock l(&mu);
    for (auto it = binds.rbegin(); it != binds.rend(); ++it) {
      if (it->first == h) return it->second;
    }
    return IoMode::kUndecided;
  }
};

// Writes `s` to `h` (overlapped or not) and waits until it is written;
// returns 0 or the Windows error.
inline DWORD WriteAndWait(HANDLE h, std::string_view s) {
  OVERLAPPED ov{};
  ov.hEvent = CreateEventA(nullptr, TRUE, FALSE, nullptr);
  DWORD n = 0;
  BOOL ok = WriteFile(h, s.data(), static_cast<DWORD>(s.size()), &n, &ov);
  if (!ok && GetLastError() == ERROR_IO_PENDING) {
    ok = GetOverlappedResult(h, &ov, &n, TRUE);
  }
  DWORD err = ok ? 0 : GetLastError();
  CloseHandle(ov.hEvent);
  return err;
}

// Runs `fn` on a thread of its own and waits for it. A call that hangs
// cannot be unblocked: after `limit` the test fails and the process ends
// (instead of waiting for the test runner's timeout).
template <typename Fn>
void RunOrDie(const char* what, Fn fn, absl::Duration limit = kHang) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread t([done, fn = std::move(fn)]() mutable {
    fn();
    done->store(true);
  });
  const absl::Time give_up = absl::Now() + limit;
  while (!done->load() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (!done->load()) {
    std::fprintf(stderr, "FAILED: %s did not return within %s (hang)\n", what,
                 absl::FormatDuration(limit).c_str());
    std::fflush(stderr);
    std::_Exit(1);
  }
  t.join();
}

// A pipe name no other test (or process) uses.
inline std::string PipeName(const std::string& what = "gopoll_test") {
  static std::atomic<int> n{0};
  return "\\\\.\\pipe\\" + what + "_" + std::to_string(GetCurrentProcessId()) +
         "_" + std::to_string(n++);
}

}  // namespace gopoll::testing

#endif  // TESTS_WINDOWS_TEST_UTIL_H_
