// SPDX-License-Identifier: BSD-3-Clause
// A pipe handle shared with a child process (the issue's "do not change the
// modes of the standard handles or of handles that can be shared unless the
// caller opts in"). The test binary re-runs itself with `--child <handle>`;
// the child inherits one end of an overlapped named pipe, which the parent
// has wrapped in an FD, and does its own overlapped I/O on it the plain way
// (OVERLAPPED without an event, waiting on the file handle). Checked: the
// bytes both ways, that neither process hangs, that the parent's FD left the
// shared file object alone (not bound to the FD's port, no skip-on-success
// modes, so the child's completions reach no port and signal the handle),
// that a standard handle is left alone too, and that the opt-in
// (AllowSharedHandleModeChanges) does bind and set the modes.
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "poll/fd.h"
#include "poll/internal/fd_access.h"
#include "poll/windows/iocp.h"
#include "poll/windows/shared_handles.h"
#include "tests/windows_test_util.h"

namespace gopoll {
namespace {

using std::string_view_literals::operator""sv;

// --- The child ------------------------------------------------------------

// Exit codes of the child: 0 = all went well.
enum ChildExit : int {
  kChildOk = 0,
  kChildBadArgs = 10,
  kChildWriteFailed = 11,
  kChildWriteHung = 12,  // the handle was never signalled
  kChildReadFailed = 13,
  kChildReadHung = 14,
  kChildWrongBytes = 15,
};

// Waits (at most 10 s) for an overlapped call on `h` that had no event: the
// handle itself is signalled when it completes (unless someone set
// FILE_SKIP_SET_EVENT_ON_HANDLE on the file object).
int FinishOnHandle(HANDLE h, OVERLAPPED* ov, BOOL ok, DWORD* n, int failed,
                   int hung) {
  if (!ok && GetLastError() != ERROR_IO_PENDING) return failed;
  if (WaitForSingleObject(h, 10000) != WAIT_OBJECT_0) {
    CancelIoEx(h, ov);
    GetOverlappedResult(h, ov, n, TRUE);
    return hung;
  }
  return GetOverlappedResult(h, ov, n, FALSE) ? kChildOk : failed;
}

int ChildMain(const char* handle_arg) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(handle_arg, &end, 10);
  if (end == handle_arg || *end != '\0') return kChildBadArgs;
  HANDLE h = reinterpret_cast<HANDLE>(static_cast<uintptr_t>(v));
  // Write a message, then read the parent's answer.
  OVERLAPPED ov{};
  DWORD n = 0;
  constexpr std::string_view kHello = "from-child";
  BOOL ok = WriteFile(h, kHello.data(), kHello.size(), &n, &ov);
  int r = FinishOnHandle(h, &ov, ok, &n, kChildWriteFailed, kChildWriteHung);
  if (r != kChildOk) return r;
  if (n != kHello.size()) return kChildWrongBytes;
  char buf[64];
  ov = OVERLAPPED{};
  ok = ReadFile(h, buf, sizeof(buf), &n, &ov);
  r = FinishOnHandle(h, &ov, ok, &n, kChildReadFailed, kChildReadHung);
  if (r != kChildOk) return r;
  if (std::string_view(buf, n) != "to-child") return kChildWrongBytes;
  CloseHandle(h);
  return kChildOk;
}

// --- The parent -----------------------------------------------------------

using testing::HandleCount;

Sysfd S(HANDLE h) { return reinterpret_cast<Sysfd>(h); }

struct Decision {
  HANDLE h;
  IoMode mode;
};

class FdWindowsChild : public ::testing::Test {
 protected:
  void SetUp() override {
    Iocp::Port();  // the port lives for the whole process
    SetInitIOHook([this](HANDLE h, IoMode m, const absl::Status&) {
      absl::MutexLock l(&mu_);
      decisions_.push_back({h, m});
    });
    handles_ = HandleCount();
  }
  void TearDown() override {
    SetInitIOHook(nullptr);
    testing::ExpectNoHandleLeak(handles_);
  }
  IoMode ModeOf(HANDLE h) {
    absl::MutexLock l(&mu_);
    for (auto it = decisions_.rbegin(); it != decisions_.rend(); ++it) {
      if (it->h == h) return it->mode;
    }
    return IoMode::kUndecided;
  }

  absl::Mutex mu_;
  std::vector<Decision> decisions_;
  DWORD handles_ = 0;
};

// An overlapped byte pipe: `shared` (the server end, inheritable) and the
// parent's own `peer` (the client end, not inheritable).
struct SharedPipe {
  HANDLE shared = INVALID_HANDLE_VALUE;
  HANDLE peer = INVALID_HANDLE_VALUE;
};

SharedPipe MakeSharedPipe() {
  static int n = 0;
  std::string name = "\\\\.\\pipe\\gopoll_child_" +
                     std::to_string(GetCurrentProcessId()) + "_" +
                     std::to_string(n++);
  SECURITY_ATTRIBUTES sa{sizeof(sa), nullptr, TRUE};
  SharedPipe p;
  p.shared = CreateNamedPipeA(
      name.c_str(),
      PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
      PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 4096, 4096, 0, &sa);
  EXPECT_NE(p.shared, INVALID_HANDLE_VALUE) << GetLastError();
  p.peer = CreateFileA(name.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                       OPEN_EXISTING, FILE_FLAG_OVERLAPPED, nullptr);
  EXPECT_NE(p.peer, INVALID_HANDLE_VALUE) << GetLastError();
  return p;
}

// Raw overlapped I/O on the parent's peer end, at most `timeout`.
std::string PeerRead(HANDLE h, DWORD timeout_ms = 10000) {
  char buf[64];
  OVERLAPPED ov{};
  ov.hEvent = CreateEventA(nullptr, TRUE, FALSE, nullptr);
  DWORD n = 0;
  BOOL ok = ReadFile(h, buf, sizeof(buf), &n, &ov);
  if (!ok && GetLastError() == ERROR_IO_PENDING) {
    if (WaitForSingleObject(ov.hEvent, timeout_ms) != WAIT_OBJECT_0) {
      CancelIoEx(h, &ov);
    }
    ok = GetOverlappedResult(h, &ov, &n, TRUE);
  }
  CloseHandle(ov.hEvent);
  if (!ok) return "<error " + std::to_string(GetLastError()) + ">";
  return std::string(buf, n);
}

void PeerWrite(HANDLE h, std::string_view s) {
  EXPECT_EQ(testing::WriteAndWait(h, s), 0u);
}

// Starts this binary with `--child <handle>`, inheriting `h`.
bool StartChild(HANDLE h, PROCESS_INFORMATION* pi) {
  wchar_t exe[MAX_PATH];
  DWORD len = GetModuleFileNameW(nullptr, exe, MAX_PATH);
  if (len == 0 || len == MAX_PATH) return false;
  std::wstring cmd = L"\"" + std::wstring(exe) + L"\" --child " +
                     std::to_wstring(reinterpret_cast<uintptr_t>(h));
  STARTUPINFOW si{};
  si.cb = sizeof(si);
  return CreateProcessW(exe, cmd.data(), nullptr, nullptr, /*inherit=*/TRUE, 0,
                        nullptr, nullptr, &si, pi);
}

TEST_F(FdWindowsChild, SharedPipeEndIsLeftAloneAndWorksInBothProcesses) {
  SharedPipe p = MakeSharedPipe();
  DWORD flags = 0;
  ASSERT_TRUE(GetHandleInformation(p.shared, &flags));
  ASSERT_NE(flags & HANDLE_FLAG_INHERIT, 0u);
  {
    FD f(S(p.shared));
    ASSERT_TRUE(f.Init(FdKind::kPipe, /*pollable=*/true).ok());
    // Parent I/O through the FD before the child exists.
    ASSERT_TRUE(f.Write("hello"sv).ok());
    EXPECT_EQ(PeerRead(p.peer), "hello");
    // The shared file object was neither bound to our port nor given
    // skip-on-success modes: event mode.
    EXPECT_EQ(ModeOf(p.shared), IoMode::kEvent);
    EXPECT_FALSE(gopoll::internal::FdAccess::backend(f).skip_sync_notify);

    PROCESS_INFORMATION pi{};
    ASSERT_TRUE(StartChild(p.shared, &pi)) << GetLastError();
    EXPECT_EQ(PeerRead(p.peer), "from-child");
    PeerWrite(p.peer, "to-child");
    DWORD waited = WaitForSingleObject(pi.hProcess, 20000);
    if (waited != WAIT_OBJECT_0) TerminateProcess(pi.hProcess, 99);
    EXPECT_EQ(waited, WAIT_OBJECT_0) << "the child hung";
    DWORD code = 0;
    GetExitCodeProcess(pi.hProcess, &code);
    EXPECT_EQ(code, 0u) << "child exit code (see ChildExit)";
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);

    // The FD still works after the child's I/O, both ways, including a
    // read that has to wait.
    PeerWrite(p.peer, "after-child");
    char buf[32];
    auto n = f.Read(absl::MakeSpan(buf));
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(std::string(buf, *n), "after-child");
    ASSERT_TRUE(f.Write("bye"sv).ok());
    EXPECT_EQ(PeerRead(p.peer), "bye");
    std::string got;
    absl::Status st;
    std::thread t([&] {
      auto m = f.Read(absl::MakeSpan(buf));
      st = m.status();
      if (m.ok()) got.assign(buf, *m);
    });
    absl::SleepFor(absl::Milliseconds(50));
    PeerWrite(p.peer, "late");
    t.join();
    EXPECT_TRUE(st.ok()) << st;
    EXPECT_EQ(got, "late");
  }
  CloseHandle(p.peer);
}

// The opt-in: the same inheritable handle is bound lazily with
// skip-on-success, like an unshared one.
TEST_F(FdWindowsChild, OptInBindsAnInheritableHandle) {
  SharedPipe p = MakeSharedPipe();
  {
    FD f(S(p.shared));
    ASSERT_TRUE(f.Init(FdKind::kPipe, /*pollable=*/true).ok());
    ASSERT_TRUE(AllowSharedHandleModeChanges(f).ok());
    ASSERT_TRUE(f.Write("hello"sv).ok());
    EXPECT_EQ(PeerRead(p.peer), "hello");
    EXPECT_EQ(ModeOf(p.shared), IoMode::kPort);
    EXPECT_TRUE(gopoll::internal::FdAccess::backend(f).skip_sync_notify);
    // Too late once the mode is decided.
    EXPECT_EQ(AllowSharedHandleModeChanges(f).code(),
              absl::StatusCode::kFailedPrecondition);
    PeerWrite(p.peer, "back");
    char buf[8];
    auto n = f.Read(absl::MakeSpan(buf));
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(std::string(buf, *n), "back");
  }
  CloseHandle(p.peer);
}

// A standard handle that is not inheritable is left alone too.
TEST_F(FdWindowsChild, StandardHandleIsLeftAlone) {
  SharedPipe p = MakeSharedPipe();
  ASSERT_TRUE(SetHandleInformation(p.shared, HANDLE_FLAG_INHERIT, 0));
  HANDLE old_in = GetStdHandle(STD_INPUT_HANDLE);
  ASSERT_TRUE(SetStdHandle(STD_INPUT_HANDLE, p.shared));
  {
    FD f(S(p.shared));
    ASSERT_TRUE(f.Init(FdKind::kPipe, /*pollable=*/true).ok());
    PeerWrite(p.peer, "stdin");
    char buf[8];
    auto n = f.Read(absl::MakeSpan(buf));
    SetStdHandle(STD_INPUT_HANDLE, old_in);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(std::string(buf, *n), "stdin");
    EXPECT_EQ(ModeOf(p.shared), IoMode::kEvent);
    EXPECT_FALSE(gopoll::internal::FdAccess::backend(f).skip_sync_notify);
  }
  SetStdHandle(STD_INPUT_HANDLE, old_in);
  CloseHandle(p.peer);
}

}  // namespace
}  // namespace gopoll

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--child") {
    return gopoll::ChildMain(argv[2]);
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
