// SPDX-License-Identifier: BSD-3-Clause
// Facts about Windows (as Wine 8 implements them) that the IOCP backend
// relies on: a handle belongs to at most one completion port, and with
// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS a synchronously completed operation
// queues no completion packet.
#include <windows.h>

#include <string>

#include "gtest/gtest.h"

namespace {

class WindowsFacts : public ::testing::Test {
 protected:
  void SetUp() override { GetProcessHandleCount(GetCurrentProcess(), &h_); }
  void TearDown() override {
    DWORD now = 0;
    GetProcessHandleCount(GetCurrentProcess(), &now);
    EXPECT_EQ(now, h_) << "handle leak";
  }
  DWORD h_ = 0;
};

std::string PipeName(const char* tag) {
  return std::string("\\\\.\\pipe\\poll_facts_") + tag + "_" +
         std::to_string(GetCurrentProcessId());
}

struct PipePair {
  HANDLE server = INVALID_HANDLE_VALUE;
  HANDLE client = INVALID_HANDLE_VALUE;
  ~PipePair() {
    if (server != INVALID_HANDLE_VALUE) CloseHandle(server);
    if (client != INVALID_HANDLE_VALUE) CloseHandle(client);
  }
};

void MakePipe(const char* tag, PipePair* p) {
  std::string name = PipeName(tag);
  p->server = CreateNamedPipeA(
      name.c_str(),
      PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
      PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 4096, 4096, 0,
      nullptr);
  ASSERT_NE(p->server, INVALID_HANDLE_VALUE) << GetLastError();
  p->client =
      CreateFileA(name.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                  OPEN_EXISTING, FILE_FLAG_OVERLAPPED, nullptr);
  ASSERT_NE(p->client, INVALID_HANDLE_VALUE) << GetLastError();
}

TEST_F(WindowsFacts, HandleBindsToOneCompletionPortOnly) {
  PipePair p;
  MakePipe("one_port", &p);
  HANDLE port1 = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
  HANDLE port2 = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
  ASSERT_NE(port1, nullptr);
  ASSERT_NE(port2, nullptr);
  EXPECT_EQ(CreateIoCompletionPort(p.server, port1, 1, 0), port1);
  SetLastError(0);
  EXPECT_EQ(CreateIoCompletionPort(p.server, port2, 2, 0), nullptr);
  EXPECT_EQ(GetLastError(), static_cast<DWORD>(ERROR_INVALID_PARAMETER));
  CloseHandle(port1);
  CloseHandle(port2);
}

TEST_F(WindowsFacts, SkipCompletionPortOnSuccessQueuesNoPacket) {
  PipePair p;
  MakePipe("skip", &p);
  HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
  ASSERT_NE(port, nullptr);
  ASSERT_EQ(CreateIoCompletionPort(p.client, port, 7, 0), port);
  ASSERT_TRUE(SetFileCompletionNotificationModes(
      p.client,
      FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE));
  OVERLAPPED o{};
  DWORD n = 0;
  // The pipe buffer has room: the write completes synchronously.
  ASSERT_TRUE(WriteFile(p.client, "hello", 5, &n, &o)) << GetLastError();
  EXPECT_EQ(n, 5u);
  DWORD bytes = 0;
  ULONG_PTR key = 0;
  OVERLAPPED* got = nullptr;
  EXPECT_FALSE(GetQueuedCompletionStatus(port, &bytes, &key, &got, 0));
  EXPECT_EQ(GetLastError(), static_cast<DWORD>(WAIT_TIMEOUT));
  EXPECT_EQ(got, nullptr);
  // Without the mode a synchronous completion does queue a packet.
  HANDLE port2 = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
  ASSERT_EQ(CreateIoCompletionPort(p.server, port2, 9, 0), port2);
  char buf[8];
  OVERLAPPED o2{};
  BOOL ok = ReadFile(p.server, buf, sizeof(buf), &n, &o2);
  ASSERT_TRUE(ok || GetLastError() == ERROR_IO_PENDING) << GetLastError();
  ASSERT_TRUE(GetQueuedCompletionStatus(port2, &bytes, &key, &got, 5000));
  EXPECT_EQ(key, 9u);
  EXPECT_EQ(got, &o2);
  EXPECT_EQ(bytes, 5u);
  CloseHandle(port);
  CloseHandle(port2);
}

}  // namespace
