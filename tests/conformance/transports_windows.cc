// SPDX-License-Identifier: BSD-3-Clause
// Windows transports of the conformance harness: a loopback TCP pair and an
// overlapped duplex named pipe (as the Windows suites make them), a
// loopback TCP listener; no thread-state probe (a fixed pause).
// clang-format off
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
// clang-format on

#include <atomic>
#include <string>

#include "absl/base/call_once.h"
#include "absl/time/clock.h"
#include "poll/errors.h"
#include "tests/conformance/harness.h"

namespace gopoll::conformance {
namespace {

void StartWinsock() {
  static absl::once_flag once;
  absl::call_once(once, [] {
    WSADATA d;
    WSAStartup(MAKEWORD(2, 2), &d);
  });
}

absl::Status WsaErr(const char* call) {
  return OsError(call, WSAGetLastError(), "winsock error");
}

// A listening loopback socket; its port in *port.
absl::StatusOr<SOCKET> Listen(uint16_t* port) {
  StartWinsock();
  SOCKET s = socket(AF_INET, SOCK_STREAM, 0);  // overlapped
  if (s == INVALID_SOCKET) return WsaErr("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int len = sizeof(a);
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(s, 8) != 0 ||
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    absl::Status st = WsaErr("bind/listen");
    closesocket(s);
    return st;
  }
  *port = ntohs(a.sin_port);
  return s;
}

absl::StatusOr<RawPair> TcpPair() {
  uint16_t port = 0;
  absl::StatusOr<SOCKET> ln = Listen(&port);
  if (!ln.ok()) return ln.status();
  SOCKET c = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (c == INVALID_SOCKET ||
      connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    absl::Status st = WsaErr("connect");
    if (c != INVALID_SOCKET) closesocket(c);
    closesocket(*ln);
    return st;
  }
  SOCKET s = accept(*ln, nullptr, nullptr);
  closesocket(*ln);
  if (s == INVALID_SOCKET) {
    absl::Status st = WsaErr("accept");
    closesocket(c);
    return st;
  }
  RawPair r;
  r.a = static_cast<Sysfd>(s);
  r.b = static_cast<Sysfd>(c);
  r.kind = FdKind::kNet;
  return r;
}

absl::StatusOr<RawPair> NamedPipePair() {
  static std::atomic<int> n{0};
  const std::string name = "\\\\.\\pipe\\gopoll_conformance_" +
                           std::to_string(GetCurrentProcessId()) + "_" +
                           std::to_string(n++);
  HANDLE server = CreateNamedPipeA(
      name.c_str(),
      PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
      PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 4096, 4096, 0,
      nullptr);
  if (server == INVALID_HANDLE_VALUE) {
    return OsError("CreateNamedPipe", GetLastError(), "error");
  }
  HANDLE client =
      CreateFileA(name.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                  OPEN_EXISTING, FILE_FLAG_OVERLAPPED, nullptr);
  if (client == INVALID_HANDLE_VALUE) {
    CloseHandle(server);
    return OsError("CreateFile", GetLastError(), "error");
  }
  RawPair r;
  r.a = reinterpret_cast<Sysfd>(server);
  r.b = reinterpret_cast<Sysfd>(client);
  r.kind = FdKind::kPipe;
  return r;
}

}  // namespace

const char* Name(Transport t) {
  switch (t) {
    case Transport::kTcp:
      return "Tcp";
    case Transport::kNamedPipe:
      return "NamedPipe";
    default:
      return "PosixOnly";
  }
}

bool KeepsMessages(Transport) { return false; }
bool HasEof(Transport) { return true; }

std::vector<Transport> Transports() {
  return {Transport::kTcp, Transport::kNamedPipe};
}

absl::StatusOr<RawPair> MakeRawPair(Transport t) {
  switch (t) {
    case Transport::kTcp:
      return TcpPair();
    case Transport::kNamedPipe:
      return NamedPipePair();
    default:
      return absl::InvalidArgumentError("not a Windows transport");
  }
}

absl::StatusOr<Sysfd> MakeListener() {
  uint16_t port = 0;
  absl::StatusOr<SOCKET> s = Listen(&port);
  if (!s.ok()) return s.status();
  return static_cast<Sysfd>(*s);
}

void CloseRaw(Sysfd s) {
  // Sockets and other handles: closesocket refuses non-sockets.
  if (closesocket(static_cast<SOCKET>(s)) != 0) {
    CloseHandle(reinterpret_cast<HANDLE>(s));
  }
}

bool Conn::HandleOpen() const {
  DWORD flags = 0;
  return GetHandleInformation(reinterpret_cast<HANDLE>(sysfd_), &flags) != 0;
}

int OpenHandles() { return -1; }

int64_t CurrentThread() { return static_cast<int64_t>(GetCurrentThreadId()); }

bool WaitUntilBlocked(int64_t) {
  absl::SleepFor(absl::Milliseconds(100));
  return true;
}

}  // namespace gopoll::conformance
