// SPDX-License-Identifier: BSD-3-Clause
#include "poll/windows/wsa.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "poll/windows/win_error.h"

namespace gopoll {
namespace {

// Looks up one extension function on `s`; remembers it once found.
void* LoadExtension(SOCKET s, GUID guid, std::atomic<void*>& cache) {
  void* fn = cache.load(std::memory_order_acquire);
  if (fn != nullptr) return fn;
  DWORD got = 0;
  if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof(guid), &fn,
               sizeof(fn), &got, nullptr, nullptr) != 0) {
    return nullptr;
  }
  cache.store(fn, std::memory_order_release);
  return fn;
}

template <typename Fn>
absl::StatusOr<Fn> Extension(SOCKET s, GUID guid, std::atomic<void*>& cache,
                             const char* name) {
  void* fn = LoadExtension(s, guid, cache);
  if (fn == nullptr) {
    return WinError(
        absl::StrCat("WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER, ", name,
                     ")"),
        WSAGetLastError());
  }
  return reinterpret_cast<Fn>(fn);
}

std::atomic<void*> accept_ex{nullptr};
std::atomic<void*> get_accept_ex_sockaddrs{nullptr};
std::atomic<void*> connect_ex{nullptr};
std::atomic<void*> wsa_recv_msg{nullptr};

// Bytes handed to one call, as FD's kMaxRW: the count fits a DWORD.
constexpr size_t kMaxBytes = size_t{1} << 30;

template <typename Buf>
absl::InlinedVector<WSABUF, 8> ToWsaBufs(absl::Span<const Buf> bufs) {
  absl::InlinedVector<WSABUF, 8> out;
  size_t total = 0;
  for (const auto& b : bufs) {
    if (total == kMaxBytes) break;
    size_t n = std::min(b.size(), kMaxBytes - total);
    total += n;
    out.push_back(WSABUF{static_cast<ULONG>(n), const_cast<char*>(b.data())});
  }
  return out;
}

}  // namespace

absl::StatusOr<LPFN_ACCEPTEX> AcceptExFn(SOCKET s) {
  return Extension<LPFN_ACCEPTEX>(s, WSAID_ACCEPTEX, accept_ex, "AcceptEx");
}

absl::StatusOr<LPFN_GETACCEPTEXSOCKADDRS> GetAcceptExSockaddrsFn(SOCKET s) {
  return Extension<LPFN_GETACCEPTEXSOCKADDRS>(s, WSAID_GETACCEPTEXSOCKADDRS,
                                              get_accept_ex_sockaddrs,
                                              "GetAcceptExSockaddrs");
}

absl::StatusOr<LPFN_CONNECTEX> ConnectExFn(SOCKET s) {
  return Extension<LPFN_CONNECTEX>(s, WSAID_CONNECTEX, connect_ex, "ConnectEx");
}

absl::StatusOr<LPFN_WSARECVMSG> WsaRecvMsgFn(SOCKET s) {
  return Extension<LPFN_WSARECVMSG>(s, WSAID_WSARECVMSG, wsa_recv_msg,
                                    "WSARecvMsg");
}

bool SocketsCanSkipCompletionPort() {
  static absl::once_flag once;
  static bool can = false;
  absl::call_once(once, [] {
    INT protocols[] = {IPPROTO_TCP, 0};
    DWORD len = 0;
    // The first call asks for the size (WSAENOBUFS).
    WSAEnumProtocolsW(protocols, nullptr, &len);
    if (len == 0) return;
    std::vector<char> buf(len);
    auto* info = reinterpret_cast<WSAPROTOCOL_INFOW*>(buf.data());
    int n = WSAEnumProtocolsW(protocols, info, &len);
    if (n == SOCKET_ERROR || n <= 0) return;
    for (int i = 0; i < n; ++i) {
      if ((info[i].dwServiceFlags1 & XP1_IFS_HANDLES) == 0) return;
    }
    can = true;
  });
  return can;
}

IoResult WsaDone(int rc, DWORD n) {
  if (rc != 0) return {0, static_cast<int64_t>(WSAGetLastError())};
  return {static_cast<int64_t>(n), 0};
}

IoResult WsaRecv(SOCKET s, absl::Span<const absl::Span<char>> bufs,
                 DWORD* flags, OVERLAPPED* ov) {
  absl::InlinedVector<WSABUF, 8> wb = ToWsaBufs(bufs);
  DWORD got = 0;
  int rc = WSARecv(s, wb.data(), static_cast<DWORD>(wb.size()), &got, flags, ov,
                   nullptr);
  return WsaDone(rc, got);
}

IoResult WsaSend(SOCKET s, absl::Span<const absl::Span<const char>> bufs,
                 OVERLAPPED* ov) {
  absl::InlinedVector<WSABUF, 8> wb = ToWsaBufs(bufs);
  DWORD put = 0;
  int rc = WSASend(s, wb.data(), static_cast<DWORD>(wb.size()), &put, 0, ov,
                   nullptr);
  return WsaDone(rc, put);
}

}  // namespace gopoll
