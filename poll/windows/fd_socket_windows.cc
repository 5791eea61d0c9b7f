// SPDX-License-Identifier: BSD-3-Clause
// The IOCP backend's socket calls (Go's internal/poll fd_windows.go and the
// ConnectEx part of net/fd_windows.go), each one overlapped call through
// FD::ExecIO, so deadlines and Close cancel them (CancelIoEx):
//   Accept      AcceptEx on a new socket of the listener's family, type and
//               protocol, then SO_UPDATE_ACCEPT_CONTEXT; the peer address
//               from GetAcceptExSockaddrs. A connection reset before it was
//               accepted is skipped (Go does the same).
//   Connect     streams: ConnectEx (the socket is bound to its family's
//               wildcard address first if unbound, as Go's net package does),
//               then SO_UPDATE_CONNECT_CONTEXT; waits honouring the write
//               deadline and Close. Other types: connect(), which does not
//               block for them.
//   RecvFrom / SendTo    WSARecvFrom / WSASendTo
//   ReadMsg / WriteMsg   WSARecvMsg (extension function) / WSASendMsg
//   RawRead     waits for readability with a zero-byte WSARecv (MSG_PEEK for
//               datagrams), as Go does. RawWrite cannot wait: IOCP reports
//               completions, not writability (Go returns EWINDOWS too).
// clang-format off
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>
// clang-format on

#include <utility>

#include "absl/strings/str_cat.h"
#include "poll/fd.h"
#include "poll/windows/win_error.h"
#include "poll/windows/wsa.h"

namespace gopoll {
namespace {

SOCKET Sock(Sysfd s) { return static_cast<SOCKET>(s); }

// A socket for AcceptEx: overlapped and not inheritable (Go's sysSocket).
absl::StatusOr<SOCKET> NewSocket(int family, int type, int protocol) {
  SOCKET s = WSASocketW(family, type, protocol, nullptr, 0,
                        WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s != INVALID_SOCKET) return s;
  if (WSAGetLastError() != WSAEINVAL) {
    return WinError("WSASocket", WSAGetLastError());
  }
  // Windows before 7 SP1 lacks WSA_FLAG_NO_HANDLE_INHERIT.
  s = WSASocketW(family, type, protocol, nullptr, 0, WSA_FLAG_OVERLAPPED);
  if (s == INVALID_SOCKET) return WinError("WSASocket", WSAGetLastError());
  SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0);
  return s;
}

// ConnectEx requires a bound socket.
absl::Status BindWildcard(SOCKET s, int family) {
  SockAddr any;
  if (family == AF_INET) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    any.Set(&sin, sizeof(sin));
  } else if (family == AF_INET6) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    any.Set(&sin6, sizeof(sin6));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "connect: ConnectEx needs an AF_INET or AF_INET6 address, got family ",
        family));
  }
  if (bind(s, any.get(), static_cast<int>(any.len)) != 0) {
    return WinError("bind", WSAGetLastError());
  }
  return absl::OkStatus();
}

IoResult BoolDone(BOOL ok, DWORD n) {
  if (!ok) return {0, static_cast<int64_t>(WSAGetLastError())};
  return {static_cast<int64_t>(n), 0};
}

WSABUF Buf(absl::Span<const char> p) {
  return WSABUF{static_cast<ULONG>(p.size()), const_cast<char*>(p.data())};
}

}  // namespace

absl::StatusOr<Accepted> FD::AcceptImpl() {
  const SOCKET ls = Sock(sysfd_);
  absl::StatusOr<LPFN_ACCEPTEX> accept_ex = AcceptExFn(ls);
  if (!accept_ex.ok()) return accept_ex.status();
  absl::StatusOr<LPFN_GETACCEPTEXSOCKADDRS> get_addrs =
      GetAcceptExSockaddrsFn(ls);
  if (!get_addrs.ok()) return get_addrs.status();
  // AcceptEx writes the local, then the remote address, each with 16 bytes
  // to spare.
  constexpr DWORD kAddrLen = sizeof(SOCKADDR_STORAGE) + 16;
  for (;;) {
    absl::StatusOr<SOCKET> s = NewSocket(
        backend_.sock_family, backend_.sock_type, backend_.sock_protocol);
    if (!s.ok()) return s.status();
    alignas(8) char buf[2 * kAddrLen];
    absl::StatusOr<size_t> n =
        ExecIO(internal::Dir::kRead, "AcceptEx", [&](void* ctx) {
          DWORD got = 0;
          BOOL ok = (*accept_ex)(ls, *s, buf, 0, kAddrLen, kAddrLen, &got,
                                 static_cast<OVERLAPPED*>(ctx));
          return BoolDone(ok, got);
        });
    if (!n.ok()) {
      closesocket(*s);
      // The connection was reset before we took it: it is gone, not our
      // listener. Wait for the next one.
      int64_t code = OsErrorCode(n.status());
      if (code == WSAECONNRESET || code == ERROR_NETNAME_DELETED) continue;
      return n.status();
    }
    // The new socket inherits the listener's properties (getpeername,
    // shutdown, ... work only after this).
    if (setsockopt(*s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT,
                   reinterpret_cast<const char*>(&ls), sizeof(ls)) != 0) {
      absl::Status st =
          WinError("setsockopt(SO_UPDATE_ACCEPT_CONTEXT)", WSAGetLastError());
      closesocket(*s);
      return st;
    }
    sockaddr* local = nullptr;
    sockaddr* remote = nullptr;
    INT local_len = 0;
    INT remote_len = 0;
    (*get_addrs)(buf, 0, kAddrLen, kAddrLen, &local, &local_len, &remote,
                 &remote_len);
    Accepted a;
    a.sysfd = static_cast<Sysfd>(*s);
    if (remote != nullptr && remote_len > 0) {
      a.peer.Set(remote, static_cast<size_t>(remote_len));
    }
    return a;
  }
}

absl::Status FD::ConnectImpl(const SockAddr& addr) {
  const SOCKET s = Sock(sysfd_);
  if (backend_.sock_type != SOCK_STREAM) {
    // Datagram sockets only record the peer: connect() does not block.
    absl::Status st = pd_.Prepare(internal::Dir::kWrite, kind_);
    if (!st.ok()) return st;
    if (connect(s, addr.get(), static_cast<int>(addr.len)) != 0) {
      return WinError("connect", WSAGetLastError());
    }
    return absl::OkStatus();
  }
  absl::StatusOr<LPFN_CONNECTEX> connect_ex = ConnectExFn(s);
  if (!connect_ex.ok()) return connect_ex.status();
  SockAddr local;
  int local_len = sizeof(local.storage);
  if (getsockname(s, local.get(), &local_len) != 0) {
    int err = WSAGetLastError();
    if (err != WSAEINVAL) return WinError("getsockname", err);
    absl::Status st = BindWildcard(s, addr.get()->sa_family);
    if (!st.ok()) return st;
  }
  absl::StatusOr<size_t> n =
      ExecIO(internal::Dir::kWrite, "ConnectEx", [&](void* ctx) {
        BOOL ok =
            (*connect_ex)(s, addr.get(), static_cast<int>(addr.len), nullptr, 0,
                          nullptr, static_cast<OVERLAPPED*>(ctx));
        return BoolDone(ok, 0);
      });
  if (!n.ok()) return n.status();
  // Makes getpeername, shutdown, ... work on the connected socket.
  if (setsockopt(s, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0) != 0) {
    return WinError("setsockopt(SO_UPDATE_CONNECT_CONTEXT)", WSAGetLastError());
  }
  return absl::OkStatus();
}

absl::StatusOr<RecvFromResult> FD::RecvFromImpl(absl::Span<char> p, int flags) {
  RecvFromResult res;
  // The kernel writes these on completion: they live until ExecIO returns.
  INT from_len = 0;
  DWORD fl = 0;
  absl::StatusOr<size_t> n =
      ExecIO(internal::Dir::kRead, "WSARecvFrom", [&](void* ctx) {
        WSABUF b = Buf(p);
        DWORD got = 0;
        from_len = sizeof(res.from.storage);
        fl = static_cast<DWORD>(flags);
        int rc = WSARecvFrom(Sock(sysfd_), &b, 1, &got, &fl, res.from.get(),
                             &from_len, static_cast<OVERLAPPED*>(ctx), nullptr);
        return WsaDone(rc, got);
      });
  if (!n.ok()) return n.status();
  res.n = *n;
  if (from_len > 0 &&
      static_cast<size_t>(from_len) <= sizeof(res.from.storage)) {
    res.from.len = static_cast<uint32_t>(from_len);
  }
  return res;
}

absl::StatusOr<size_t> FD::SendToImpl(absl::Span<const char> p,
                                      const SockAddr& to, int flags) {
  return ExecIO(internal::Dir::kWrite, "WSASendTo", [&](void* ctx) {
    WSABUF b = Buf(p);
    DWORD put = 0;
    int rc = WSASendTo(Sock(sysfd_), &b, 1, &put, static_cast<DWORD>(flags),
                       to.get(), static_cast<int>(to.len),
                       static_cast<OVERLAPPED*>(ctx), nullptr);
    return WsaDone(rc, put);
  });
}

absl::StatusOr<MsgResult> FD::ReadMsgImpl(absl::Span<char> p,
                                          absl::Span<char> oob, int flags) {
  absl::StatusOr<LPFN_WSARECVMSG> recv_msg = WsaRecvMsgFn(Sock(sysfd_));
  if (!recv_msg.ok()) return recv_msg.status();
  MsgResult res;
  // The kernel fills msg (lengths, flags, address) on completion.
  WSABUF data = Buf(p);
  WSAMSG msg{};
  absl::StatusOr<size_t> n =
      ExecIO(internal::Dir::kRead, "WSARecvMsg", [&](void* ctx) {
        msg = WSAMSG{};
        msg.name = res.from.get();
        msg.namelen = sizeof(res.from.storage);
        msg.lpBuffers = &data;
        msg.dwBufferCount = 1;
        msg.Control = Buf(oob);
        msg.dwFlags = static_cast<DWORD>(flags);
        DWORD got = 0;
        int rc = (*recv_msg)(Sock(sysfd_), &msg, &got,
                             static_cast<OVERLAPPED*>(ctx), nullptr);
        return WsaDone(rc, got);
      });
  if (!n.ok()) return n.status();
  res.n = *n;
  res.oobn = msg.Control.len;
  res.flags = static_cast<int>(msg.dwFlags);
  // A truncated datagram is WSAEMSGSIZE (ExecIO returns what fit). Wine
  // does not set MSG_TRUNC for it, and also fails with WSAEMSGSIZE when
  // only the control data was cut (setting MSG_CTRUNC): so MSG_TRUNC is
  // added only when the control data was not truncated.
  if (backend_.read_truncated && (msg.dwFlags & MSG_CTRUNC) == 0) {
    res.flags |= MSG_TRUNC;
  }
  if (msg.namelen > 0 &&
      static_cast<size_t>(msg.namelen) <= sizeof(res.from.storage)) {
    res.from.len = static_cast<uint32_t>(msg.namelen);
  }
  return res;
}

absl::StatusOr<size_t> FD::WriteMsgImpl(absl::Span<const char> p,
                                        absl::Span<const char> oob,
                                        const SockAddr* to, int flags) {
  WSABUF data = Buf(p);
  WSAMSG msg{};
  return ExecIO(internal::Dir::kWrite, "WSASendMsg", [&](void* ctx) {
    msg = WSAMSG{};
    if (to != nullptr) {
      msg.name = const_cast<sockaddr*>(to->get());
      msg.namelen = static_cast<INT>(to->len);
    }
    msg.lpBuffers = &data;
    msg.dwBufferCount = 1;
    msg.Control = Buf(oob);
    DWORD put = 0;
    int rc = WSASendMsg(Sock(sysfd_), &msg, static_cast<DWORD>(flags), &put,
                        static_cast<OVERLAPPED*>(ctx), nullptr);
    return WsaDone(rc, put);
  });
}

// Readability of a socket: RawIOImpl's zero-byte receive, once. IOCP
// reports completions, not readiness: writability and other handles
// cannot be waited for (as RawWrite and RawRead say).
absl::Status FD::WaitImpl(internal::Dir d) {
  if (d == internal::Dir::kWrite) {
    return absl::UnimplementedError(
        "waitwrite: the Windows backend cannot wait for writability (IOCP "
        "reports completions, not readiness)");
  }
  if (kind_ != FdKind::kNet) {
    return absl::UnimplementedError(
        "waitread: the Windows backend can wait for readability of sockets "
        "only");
  }
  bool first = true;
  return RawIOImpl(d, [&](Sysfd) { return !std::exchange(first, false); });
}

absl::Status FD::RawIOImpl(internal::Dir d, absl::FunctionRef<bool(Sysfd)> f) {
  absl::Status s = initIO();
  if (!s.ok()) return s;
  s = pd_.Prepare(d, kind_);
  if (!s.ok()) return s;
  for (;;) {
    if (f(sysfd_)) return absl::OkStatus();
    if (d == internal::Dir::kWrite) {
      return absl::UnimplementedError(
          "RawWrite: the Windows backend cannot wait for writability (IOCP "
          "reports completions, not readiness; Go returns EWINDOWS here)");
    }
    if (kind_ != FdKind::kNet) {
      return absl::UnimplementedError(
          "RawRead: the Windows backend can wait for readability of sockets "
          "only");
    }
    // A zero-byte receive completes when data (or end of stream) arrives
    // and takes nothing; datagram sockets peek, and a waiting datagram
    // (WSAEMSGSIZE) counts as readable (ExecIO returns its size).
    DWORD flags = 0;
    absl::StatusOr<size_t> n =
        ExecIO(internal::Dir::kRead, "WSARecv", [&](void* ctx) {
          flags = zero_read_is_eof_ ? 0 : MSG_PEEK;
          WSABUF b{0, nullptr};
          DWORD got = 0;
          int rc = WSARecv(Sock(sysfd_), &b, 1, &got, &flags,
                           static_cast<OVERLAPPED*>(ctx), nullptr);
          return WsaDone(rc, got);
        });
    if (!n.ok()) return n.status();
  }
}

}  // namespace gopoll
