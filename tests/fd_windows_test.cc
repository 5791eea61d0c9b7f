// SPDX-License-Identifier: BSD-3-Clause
// The IOCP backend under Wine: lazy binding, foreign ports, deadlines and
// Close on pipes, EOF, file offsets for overlapped and synchronous handles
// (the behaviour of Go's fd_windows_test.go and os pipe tests).
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "poll/fd.h"
#include "poll/internal/fd_access.h"
#include "poll/windows/iocp.h"
#include "tests/windows_test_util.h"

namespace gopoll {
namespace {

using std::string_view_literals::operator""sv;
using testing::BindLog;
using testing::HandleCount;
using testing::kHang;
using testing::PipeName;
using testing::StatusOf;

class FdWindows : public ::testing::Test {
 protected:
  void SetUp() override {
    Iocp::Port();  // the port lives for the whole process
    SetInitIOHook([this](HANDLE h, IoMode m, const absl::Status& bind) {
      log_.Record(h, m, OsErrorCode(bind));
    });
    handles_ = HandleCount();
  }
  void TearDown() override {
    SetInitIOHook(nullptr);
    testing::ExpectNoHandleLeak(handles_);
  }
  BindLog log_;
  DWORD handles_ = 0;
};

// An overlapped named pipe: server end and client end.
struct Pipe {
  HANDLE server = INVALID_HANDLE_VALUE;
  HANDLE client = INVALID_HANDLE_VALUE;
};

Pipe MakePipe(bool message = false, bool client_overlapped = true) {
  std::string name = PipeName();
  Pipe p;
  DWORD type = message ? PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE
                       : PIPE_TYPE_BYTE | PIPE_READMODE_BYTE;
  p.server = CreateNamedPipeA(
      name.c_str(),
      PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
      type | PIPE_WAIT, 1, 4096, 4096, 0, nullptr);
  EXPECT_NE(p.server, INVALID_HANDLE_VALUE) << GetLastError();
  p.client = CreateFileA(name.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                         OPEN_EXISTING,
                         client_overlapped ? FILE_FLAG_OVERLAPPED : 0, nullptr);
  EXPECT_NE(p.client, INVALID_HANDLE_VALUE) << GetLastError();
  return p;
}

Sysfd S(HANDLE h) { return reinterpret_cast<Sysfd>(h); }

// A 1-byte Read of an FD on a thread of its own (joined at the latest by
// the destructor, so the read must end by then).
class PendingRead {
 public:
  explicit PendingRead(FD& f)
      : t_([this, &f] {
          char c;
          got_ = f.Read(absl::MakeSpan(&c, 1)).status();
          done_.Notify();
        }) {}
  ~PendingRead() {
    if (t_.joinable()) t_.join();
  }
  bool WaitFor(absl::Duration d) {
    return done_.WaitForNotificationWithTimeout(d);
  }
  // Joins the thread: the read's status.
  absl::Status Result() {
    t_.join();
    return got_;
  }

 private:
  absl::Status got_;
  absl::Notification done_;
  std::thread t_;
};

// Both ends of a fresh overlapped byte pipe, each wrapped in a pollable FD.
struct PipeFds {
  Pipe p = MakePipe();
  FD r{S(p.server)};
  FD w{S(p.client)};
  absl::Status Init() {
    absl::Status s = r.Init(FdKind::kPipe, true);
    return s.ok() ? w.Init(FdKind::kPipe, true) : s;
  }
};

TEST_F(FdWindows, InitDoesNotBindFirstOperationDoes) {
  Pipe p = MakePipe();
  {
    FD server(S(p.server));
    ASSERT_OK(server.Init(FdKind::kPipe, true));
    EXPECT_EQ(log_.Count(p.server), 0);  // lazy: nothing bound yet
    ASSERT_OK(server.Write("hi"sv));
    EXPECT_EQ(log_.Count(p.server), 1);
    EXPECT_EQ(log_.Mode(p.server), IoMode::kPort);
    ASSERT_OK(server.Write("!"sv));
    EXPECT_EQ(log_.Count(p.server), 1);  // once
    // The handle now belongs to our port: a second port is refused.
    HANDLE other = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
    EXPECT_EQ(CreateIoCompletionPort(p.server, other, 0, 0), nullptr);
    CloseHandle(other);
  }
  FD client(S(p.client));
  ASSERT_OK(client.Init(FdKind::kPipe, true));
  EXPECT_EQ(log_.Count(p.client), 0);
  ASSERT_OK(client.SetReadDeadline(absl::InfiniteFuture()));
  EXPECT_EQ(log_.Count(p.client), 1);  // a deadline call binds too
  char buf[8];
  auto n = client.Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "hi!");
}

// The interruptible blocking call is a POSIX strategy: asking for it on
// Windows is refused without touching the handle; kPoller is the default.
TEST_F(FdWindows, WaitStrategies) {
  Pipe p = MakePipe();
  FD server(S(p.server));
  absl::Status s =
      server.Init(FdKind::kPipe, true, WaitStrategy::kInterruptibleCall);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << s;
  EXPECT_EQ(log_.Count(p.server), 0);
  ASSERT_OK(server.Init(FdKind::kPipe, true, WaitStrategy::kPoller));
  ASSERT_OK(server.Write("ok"sv));
  EXPECT_EQ(server.wait_strategy(), WaitStrategy::kPoller);
  FD client(S(p.client));
  ASSERT_OK(client.Init(FdKind::kPipe, true));
  char buf[4];
  auto n = client.Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "ok");
}

TEST_F(FdWindows, CloseBeforeAnyIoNeverBinds) {
  Pipe p = MakePipe();
  {
    FD server(S(p.server));
    ASSERT_OK(server.Init(FdKind::kPipe, true));
    ASSERT_OK(server.Close());
    EXPECT_EQ(log_.Mode(p.server), IoMode::kSync);  // decided, not bound
    EXPECT_TRUE(IsClosing(server.Write("x"sv).status()));
  }
  CloseHandle(p.client);
}

// Go's TestPipeExternalIOCP: the caller binds the handle to its own port;
// our FD still writes, and no packet reaches the caller's port.
// Go #75949/#76391: querying a synchronous handle's mode may wait behind a
// synchronous read pending on the same file object. initIO() must not hang
// there: the query runs on a helper thread, and one that does not answer at
// once means "synchronous", which is right for such a handle anyway.
TEST_F(FdWindows, ModeQueryNeverBlocksBehindAPendingSyncRead) {
  HANDLE r = nullptr, w = nullptr;
  ASSERT_TRUE(CreatePipe(&r, &w, nullptr, 0));  // synchronous handles
  std::thread reader([r] {
    char c;
    DWORD n = 0;
    ReadFile(r, &c, 1, &n, nullptr);  // blocks until the write below
  });
  // Also when an assertion below returns early: end the read, join.
  auto finish = absl::MakeCleanup([&] {
    DWORD n = 0;
    WriteFile(w, "x", 1, &n, nullptr);
    reader.join();
    CloseHandle(r);
    CloseHandle(w);
  });
  absl::SleepFor(absl::Milliseconds(50));  // let the read block
  HANDLE dup = nullptr;
  ASSERT_TRUE(DuplicateHandle(GetCurrentProcess(), r, GetCurrentProcess(), &dup,
                              0, FALSE, DUPLICATE_SAME_ACCESS));
  {
    FD fd(S(dup));
    ASSERT_OK(fd.Init(FdKind::kPipe, true));
    // Runs initIO(): must return (a synchronous handle has no deadlines).
    absl::Status st = fd.SetReadDeadline(absl::Now() + absl::Seconds(1));
    EXPECT_TRUE(IsNoDeadline(st)) << st;
    EXPECT_EQ(log_.Mode(dup), IoMode::kSync);
  }
}

TEST_F(FdWindows, PipeExternalIOCP) {
  Pipe p = MakePipe(/*message=*/true);
  HANDLE theirs = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
  ASSERT_EQ(CreateIoCompletionPort(p.server, theirs, 42, 0), theirs);
  {
    FD server(S(p.server));
    ASSERT_OK(server.Init(FdKind::kPipe, true));
    auto n = server.Write("hello"sv);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 5u);
    EXPECT_EQ(log_.Mode(p.server), IoMode::kEvent);
    {
      absl::MutexLock l(&log_.mu);
      ASSERT_EQ(log_.bind_errors.size(), 1u);
      EXPECT_EQ(log_.bind_errors[0], ERROR_INVALID_PARAMETER);
    }
    char buf[16];
    DWORD got = 0;
    OVERLAPPED ov{};
    ov.hEvent = CreateEventA(nullptr, TRUE, FALSE, nullptr);
    BOOL ok = ReadFile(p.client, buf, sizeof(buf), &got, &ov);
    if (!ok && GetLastError() == ERROR_IO_PENDING) {
      ok = GetOverlappedResult(p.client, &ov, &got, TRUE);
    }
    CloseHandle(ov.hEvent);
    ASSERT_TRUE(ok) << GetLastError();
    EXPECT_EQ(std::string(buf, got), "hello");
    DWORD bytes;
    ULONG_PTR key;
    OVERLAPPED* pov = nullptr;
    EXPECT_FALSE(GetQueuedCompletionStatus(theirs, &bytes, &key, &pov, 0));
    EXPECT_EQ(pov, nullptr) << "a completion packet reached the foreign port";
  }
  CloseHandle(theirs);
  CloseHandle(p.client);
}

// Go's TestPipeReadTimeout on Windows, then the FD is usable again.
TEST_F(FdWindows, PipeReadTimeout) {
  PipeFds fds;
  ASSERT_OK(fds.Init());
  FD& r = fds.r;
  FD& w = fds.w;
  ASSERT_OK(r.SetReadDeadline(absl::Now() + absl::Milliseconds(1)));
  char buf[8];
  auto n = r.Read(absl::MakeSpan(buf));
  EXPECT_TRUE(IsDeadlineExceeded(n.status())) << n.status();
  ASSERT_OK(r.SetReadDeadline(absl::Now() + absl::Seconds(10)));
  ASSERT_OK(w.Write("after"sv));
  n = r.Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "after");
}

// A deadline that fires while a read is pending and is extended before
// the reader looks: the read goes on, and the new deadline must still end
// it (the reader has to publish itself again after the first wake).
TEST_F(FdWindows, DeadlineFiresThenExtendedWhilePending) {
  PipeFds fds;
  ASSERT_OK(fds.Init());
  FD& r = fds.r;
  FD& w = fds.w;
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(round);
    ASSERT_OK(r.SetReadDeadline(absl::InfiniteFuture()));
    PendingRead read(r);
    absl::SleepFor(absl::Milliseconds(10));  // the read pends
    ASSERT_OK(r.SetReadDeadline(absl::Now() - absl::Seconds(1)));
    ASSERT_OK(r.SetReadDeadline(absl::Now() + absl::Milliseconds(30)));
    const bool ended = read.WaitFor(absl::Seconds(5));
    // If the second deadline was lost, only data ends the read now.
    if (!ended) ASSERT_OK(w.Write("x"sv));
    const absl::Status got = read.Result();
    ASSERT_TRUE(ended) << "the extended deadline never ended the read";
    EXPECT_TRUE(IsDeadlineExceeded(got)) << got;
  }
}

TEST_F(FdWindows, PipeCanceledByClose) {
  PipeFds fds;
  ASSERT_OK(fds.Init());
  PendingRead read(fds.r);
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_OK(fds.r.Close());
  ASSERT_TRUE(read.WaitFor(kHang));
  const absl::Status got = read.Result();
  EXPECT_TRUE(IsClosing(got)) << got;
}

// Threads blocked on the process-wide port dequeue its packets themselves
// (leader/followers): whichever thread leads must hand each packet to its
// owner, and pass the leadership on when its own read ends, also when that
// read ends by a deadline. Half of the readers first wait on a pipe that
// never gets data until a 1 ms deadline cancels them.
TEST_F(FdWindows, BlockedThreadsShareThePort) {
  constexpr int kThreads = 6;
  constexpr uint32_t kRounds = 150;
  std::vector<Pipe> data(kThreads), silent(kThreads);
  std::vector<std::unique_ptr<FD>> r, w, s;
  for (int i = 0; i < kThreads; ++i) {
    data[i] = MakePipe();
    silent[i] = MakePipe();
    r.push_back(std::make_unique<FD>(S(data[i].server)));
    w.push_back(std::make_unique<FD>(S(data[i].client)));
    s.push_back(std::make_unique<FD>(S(silent[i].server)));
    ASSERT_OK(r[i]->Init(FdKind::kPipe, true));
    ASSERT_OK(w[i]->Init(FdKind::kPipe, true));
    ASSERT_OK(s[i]->Init(FdKind::kPipe, true));
  }
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < kThreads; ++i) {
    readers.emplace_back([&, i] {
      for (uint32_t round = 0; round < kRounds; ++round) {
        if (i % 2 == 1) {
          char c;
          if (!s[i]->SetReadDeadline(absl::Now() + absl::Milliseconds(1))
                   .ok() ||
              !IsDeadlineExceeded(s[i]->Read(absl::MakeSpan(&c, 1)).status())) {
            ++wrong;
          }
        }
        uint32_t v = 0;
        size_t got = 0;
        while (got < sizeof(v)) {
          auto n = r[i]->Read(absl::MakeSpan(reinterpret_cast<char*>(&v) + got,
                                             sizeof(v) - got));
          if (!n.ok()) {
            ++wrong;
            return;
          }
          got += *n;
        }
        if (v != round) ++wrong;
      }
    });
  }
  for (uint32_t round = 0; round < kRounds; ++round) {
    for (int k = 0; k < kThreads; ++k) {
      int i = static_cast<int>((k * 5 + round) % kThreads);  // a new order
      ASSERT_OK(w[i]->Write(
          std::string_view(reinterpret_cast<const char*>(&round), 4)));
    }
    if (round % 3 == 0) absl::SleepFor(absl::Microseconds(300));
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_OK(r[i]->Close());
    ASSERT_OK(w[i]->Close());
    ASSERT_OK(s[i]->Close());
    CloseHandle(silent[i].client);
  }
}

TEST_F(FdWindows, BrokenPipeIsEof) {
  Pipe p = MakePipe();
  FD r(S(p.server));
  ASSERT_OK(r.Init(FdKind::kPipe, true));
  {
    FD w(S(p.client));
    ASSERT_OK(w.Init(FdKind::kPipe, true));
    ASSERT_OK(w.Write("last"sv));
  }  // the writer closes
  char buf[8];
  auto n = r.Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "last");
  n = r.Read(absl::MakeSpan(buf));
  EXPECT_TRUE(IsEof(n.status())) << n.status();
}

// Writes one message to a message-mode pipe end (overlapped or not) and
// waits until it is written.
void WriteMessage(HANDLE h, std::string_view msg) {
  ASSERT_EQ(testing::WriteAndWait(h, msg), 0u);
}

// Reads with a buffer of `cap` bytes; the bytes as a string.
std::string ReadSome(FD& f, size_t cap) {
  std::string buf(cap, '\0');
  auto n = f.Read(absl::MakeSpan(buf));
  EXPECT_TRUE(n.ok()) << n.status();
  if (!n.ok()) return "<" + n.status().ToString() + ">";
  buf.resize(*n);
  return buf;
}

// A message longer than the read buffer: ReadFile fails with ERROR_MORE_DATA
// after filling the buffer (a warning status, STATUS_BUFFER_OVERFLOW), and
// the rest of that message is what the next ReadFile gets. Go's Read returns
// the bytes read together with ERROR_MORE_DATA (execIO: "More data
// available. Return back the size of received data."). A StatusOr cannot
// carry both: FD::Read returns the bytes (nothing is lost) and records the
// truncation in backend().read_truncated (ReadMsg's MSG_TRUNC). The next
// message never merges with the rest of the previous one. Every IoMode:
// kPort (completed at once, no packet; and pending, through the port),
// kEvent (the caller's port) and kSync (a synchronous client handle).
TEST_F(FdWindows, MessagePipeMoreData) {
  for (IoMode want : {IoMode::kPort, IoMode::kEvent, IoMode::kSync}) {
    SCOPED_TRACE(::testing::Message() << "mode " << static_cast<int>(want));
    Pipe p = MakePipe(/*message=*/true,
                      /*client_overlapped=*/want != IoMode::kSync);
    HANDLE reader = p.server, writer = p.client;
    HANDLE theirs = nullptr;
    if (want == IoMode::kEvent) {
      theirs = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
      ASSERT_EQ(CreateIoCompletionPort(reader, theirs, 7, 0), theirs);
    }
    if (want == IoMode::kSync) {
      // The client end reads; CreateFile opens it in byte read mode.
      std::swap(reader, writer);
      DWORD mode = PIPE_READMODE_MESSAGE;
      ASSERT_TRUE(SetNamedPipeHandleState(reader, &mode, nullptr, nullptr))
          << GetLastError();
    }
    {
      FD r(S(reader));
      ASSERT_OK(r.Init(FdKind::kPipe, true));
      WriteMessage(writer, "0123456789");
      WriteMessage(writer, "ab");
      EXPECT_EQ(ReadSome(r, 4), "0123");
      EXPECT_EQ(log_.Mode(reader), want);
      EXPECT_TRUE(gopoll::internal::FdAccess::backend(r).read_truncated);
      EXPECT_EQ(ReadSome(r, 4), "4567");
      EXPECT_TRUE(gopoll::internal::FdAccess::backend(r).read_truncated);
      EXPECT_EQ(ReadSome(r, 16), "89");  // the end of the first message only
      EXPECT_FALSE(gopoll::internal::FdAccess::backend(r).read_truncated);
      EXPECT_EQ(ReadSome(r, 16), "ab");
      // A read that waits for its message (kPort: completes through the
      // port with the warning status; kEvent: through its event).
      std::string got;
      std::thread t([&] { got = ReadSome(r, 5); });
      absl::SleepFor(absl::Milliseconds(50));
      WriteMessage(writer, "hello world");
      t.join();
      EXPECT_EQ(got, "hello");
      EXPECT_TRUE(gopoll::internal::FdAccess::backend(r).read_truncated);
      EXPECT_EQ(ReadSome(r, 64), " world");
      // The writer closes: end of stream.
      CloseHandle(writer);
      char c;
      EXPECT_TRUE(IsEof(r.Read(absl::MakeSpan(&c, 1)).status()));
    }
    if (theirs != nullptr) {
      DWORD bytes;
      ULONG_PTR key;
      OVERLAPPED* pov = nullptr;
      EXPECT_FALSE(GetQueuedCompletionStatus(theirs, &bytes, &key, &pov, 0));
      EXPECT_EQ(pov, nullptr) << "a packet reached the foreign port";
      CloseHandle(theirs);
    }
  }
}

std::string TempPath() {
  char dir[MAX_PATH], path[MAX_PATH];
  GetTempPathA(MAX_PATH, dir);
  GetTempFileNameA(dir, "gp", 0, path);
  return path;
}

// Offsets after mixed Write/Read/Pread/Seek for every combination of
// overlapped/synchronous handle and pollable/non-pollable Init.
TEST_F(FdWindows, FileOffsetsForEveryHandleKind) {
  for (bool overlapped : {true, false}) {
    for (bool pollable : {true, false}) {
      SCOPED_TRACE(::testing::Message()
                   << "overlapped=" << overlapped << " pollable=" << pollable);
      std::string path = TempPath();
      HANDLE h = CreateFileA(
          path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, CREATE_ALWAYS,
          FILE_FLAG_DELETE_ON_CLOSE | (overlapped ? FILE_FLAG_OVERLAPPED : 0),
          nullptr);
      ASSERT_NE(h, INVALID_HANDLE_VALUE) << GetLastError();
      FD f(S(h));
      ASSERT_OK(f.Init(FdKind::kFile, pollable));
      absl::Status ws = StatusOf(f.Write("0123456789"sv));
      IoMode mode = log_.Mode(h);
      ASSERT_TRUE(ws.ok()) << ws << " in mode " << static_cast<int>(mode);
      EXPECT_EQ(mode, !overlapped ? IoMode::kSync
                      : pollable  ? IoMode::kPort
                                  : IoMode::kEvent);
      auto off = f.Seek(0, 1);
      ASSERT_TRUE(off.ok()) << off.status();
      EXPECT_EQ(*off, 10);
      char buf[4];
      auto n = f.Pread(absl::MakeSpan(buf), 2);
      ASSERT_TRUE(n.ok()) << n.status();
      EXPECT_EQ(std::string(buf, *n), "2345");
      off = f.Seek(0, 1);
      ASSERT_OK(off);
      EXPECT_EQ(*off, 10);  // Pread does not move the offset
      ASSERT_OK(f.Seek(7, 0));
      n = f.Read(absl::MakeSpan(buf));
      ASSERT_TRUE(n.ok()) << n.status();
      EXPECT_EQ(std::string(buf, *n), "789");
      EXPECT_TRUE(IsEof(f.Read(absl::MakeSpan(buf)).status()));
      ASSERT_OK(f.Seek(-4, 2));
      n = f.Read(absl::MakeSpan(buf));
      ASSERT_OK(n);
      EXPECT_EQ(std::string(buf, *n), "6789");
      auto fi = f.Fstat();
      ASSERT_TRUE(fi.ok()) << fi.status();
      EXPECT_EQ(fi->size, 10);
      EXPECT_TRUE(fi->is_regular);
      absl::Status dl = f.SetReadDeadline(absl::Now() + absl::Seconds(1));
      if (mode == IoMode::kSync) {
        EXPECT_TRUE(IsNoDeadline(dl)) << dl;
      } else {
        EXPECT_TRUE(dl.ok()) << dl;
      }
    }
  }
}

// Seek errors carry the OS code, as Go's do, for every handle kind: a
// negative result is ERROR_NEGATIVE_SEEK (131), a bad whence
// ERROR_INVALID_PARAMETER (87), and the offset is left where it was.
TEST_F(FdWindows, SeekErrorsCarryTheOsCode) {
  for (bool overlapped : {true, false}) {
    for (bool pollable : {true, false}) {
      SCOPED_TRACE(::testing::Message()
                   << "overlapped=" << overlapped << " pollable=" << pollable);
      std::string path = TempPath();
      HANDLE h = CreateFileA(
          path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, CREATE_ALWAYS,
          FILE_FLAG_DELETE_ON_CLOSE | (overlapped ? FILE_FLAG_OVERLAPPED : 0),
          nullptr);
      ASSERT_NE(h, INVALID_HANDLE_VALUE) << GetLastError();
      FD f(S(h));
      ASSERT_OK(f.Init(FdKind::kFile, pollable));
      ASSERT_OK(f.Write("0123456789"sv));
      ASSERT_OK(f.Seek(5, 0));
      for (auto [off, whence] : {std::pair<int64_t, int>{-1, 0},
                                 {-6, 1},
                                 {-11, 2},
                                 {INT64_MAX, 1}}) {
        absl::Status st = f.Seek(off, whence).status();
        EXPECT_EQ(OsErrorCode(st), ERROR_NEGATIVE_SEEK)
            << off << " from " << whence << ": " << st;
      }
      for (int whence : {3, -1}) {
        absl::Status st = f.Seek(0, whence).status();
        EXPECT_EQ(OsErrorCode(st), ERROR_INVALID_PARAMETER) << st;
        EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
      }
      auto at = f.Seek(0, 1);
      ASSERT_TRUE(at.ok()) << at.status();
      EXPECT_EQ(*at, 5);
      char buf[8];
      auto n = f.Read(absl::MakeSpan(buf));
      ASSERT_TRUE(n.ok()) << n.status();
      EXPECT_EQ(std::string(buf, *n), "56789");
    }
  }
}

// Pread/Pwrite on a synchronous handle move the OS file pointer and put it
// back (Go #74951); a Read or Write running meanwhile on another thread
// must neither use the moved pointer nor lose its own advance. One thread
// reads the file front to back and checks every byte against its position;
// another keeps rewriting the same bytes with Pwrite and reading them with
// Pread at other offsets (the content never changes, only the pointer
// could go wrong).
TEST_F(FdWindows, PositionalIoDoesNotDisturbReadsOnSyncHandles) {
  constexpr int kSize = 256 * 1024;
  std::string content(kSize, '\0');
  for (int i = 0; i < kSize; ++i) content[i] = static_cast<char>(i % 251);
  std::string path = TempPath();
  HANDLE h = CreateFileA(path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                         CREATE_ALWAYS, FILE_FLAG_DELETE_ON_CLOSE, nullptr);
  ASSERT_NE(h, INVALID_HANDLE_VALUE) << GetLastError();
  FD f(S(h));
  ASSERT_OK(f.Init(FdKind::kFile, true));
  ASSERT_OK(f.Write(std::string_view(content)));
  EXPECT_EQ(log_.Mode(h), IoMode::kSync);
  std::atomic<bool> done{false};
  std::atomic<int> positional_errors{0};
  std::thread other([&] {
    char buf[512];
    for (int i = 1; !done.load(); ++i) {
      const int64_t off = (static_cast<int64_t>(i) * 7919 * 512) % kSize;
      auto w = f.Pwrite(std::string_view(content).substr(off, 512), off);
      auto r = f.Pread(absl::MakeSpan(buf), off);
      if (!w.ok() || !r.ok() || *r != 512 ||
          std::string_view(buf, 512) !=
              std::string_view(content).substr(off, 512)) {
        ++positional_errors;
      }
    }
  });
  int wrong = 0;
  for (int round = 0; round < 4 && wrong == 0; ++round) {
    ASSERT_OK(f.Seek(0, 0));
    int64_t pos = 0;
    char buf[1024];
    while (pos < kSize) {
      auto n = f.Read(absl::MakeSpan(buf));
      if (!n.ok() || *n == 0) {
        ++wrong;
        break;
      }
      if (std::string_view(buf, *n) !=
          std::string_view(content).substr(pos, *n)) {
        ++wrong;
        break;
      }
      pos += static_cast<int64_t>(*n);
    }
    if (wrong == 0) {
      auto at = f.Seek(0, 1);
      ASSERT_OK(at);
      EXPECT_EQ(*at, kSize);
    }
  }
  done.store(true);
  other.join();
  EXPECT_EQ(wrong, 0) << "a Read used a pointer moved by Pread/Pwrite";
  EXPECT_EQ(positional_errors.load(), 0);
}

// Go's TestWSASocketConflict (#58870), with a pipe: the application runs
// its own overlapped ReadFile on a handle the FD bound to our port. Its
// packet reaches the port; the thread that dequeues it must not take it
// for one of ours (it wrote the result into the memory after the
// application's OVERLAPPED): it is dropped, and the application still gets
// its result through its event and GetOverlappedResult.
TEST_F(FdWindows, ForeignOverlappedIoOnABoundHandleIsLeftAlone) {
  PipeFds fds;
  ASSERT_OK(fds.Init());
  ASSERT_OK(fds.r.SetReadDeadline(absl::InfiniteFuture()));  // binds
  ASSERT_EQ(log_.Mode(fds.p.server), IoMode::kPort);
  struct {
    OVERLAPPED ov{};
    unsigned char after[64] = {};  // the application's own data
  } app;
  app.ov.hEvent = CreateEventA(nullptr, TRUE, FALSE, nullptr);
  char buf[8];
  ASSERT_FALSE(ReadFile(fds.p.server, buf, 5, nullptr, &app.ov));
  ASSERT_EQ(GetLastError(), static_cast<DWORD>(ERROR_IO_PENDING));
  ASSERT_OK(fds.w.Write("hello"sv));
  ASSERT_EQ(WaitForSingleObject(app.ov.hEvent, 20000), WAIT_OBJECT_0);
  // Its packet is queued on our port now. A Read of ours that waits leads
  // the port and dequeues it (before its own cancelled one: FIFO).
  ASSERT_OK(fds.r.SetReadDeadline(absl::Now() + absl::Milliseconds(50)));
  auto n = fds.r.Read(absl::MakeSpan(buf));
  EXPECT_TRUE(IsDeadlineExceeded(n.status())) << n.status();
  for (unsigned char c : app.after)
    ASSERT_EQ(c, 0) << "written past OVERLAPPED";
  DWORD got = 0;
  ASSERT_TRUE(GetOverlappedResult(fds.p.server, &app.ov, &got, FALSE))
      << GetLastError();
  EXPECT_EQ(std::string(buf, got), "hello");
  CloseHandle(app.ov.hEvent);
  // The FD goes on working.
  ASSERT_OK(fds.r.SetReadDeadline(absl::InfiniteFuture()));
  ASSERT_OK(fds.w.Write("again"sv));
  n = fds.r.Read(absl::MakeSpan(buf));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(std::string(buf, *n), "again");
}

TEST_F(FdWindows, BadInput) {
  FD bad(kInvalidSysfd);
  EXPECT_FALSE(bad.Init(FdKind::kFile, true).ok());
  Pipe p = MakePipe();
  FD r(S(p.server));
  ASSERT_OK(r.Init(FdKind::kPipe, true));
  char buf[4];
  EXPECT_EQ(r.Pread(absl::MakeSpan(buf), -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Read(absl::Span<char>(nullptr, 3)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Accept().status().code(), absl::StatusCode::kInvalidArgument);
  CloseHandle(p.client);
}

}  // namespace
}  // namespace gopoll
