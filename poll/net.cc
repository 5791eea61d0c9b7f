// SPDX-License-Identifier: BSD-3-Clause
// poll/net.h's address parsing and blocking sockets (the loop's forms are in
// poll/loop/net_loop.cc).
#include "poll/net.h"

#ifdef _WIN32
// clang-format off
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
// clang-format on

#include "absl/base/call_once.h"
#include "poll/windows/win_error.h"
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#endif

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "poll/errors.h"
#include "poll/internal/net_sockets.h"

namespace gopoll {
namespace {

absl::Status BadAddr(std::string_view addr, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("address \"", std::string(addr), "\": ", std::string(why),
                   " (want host:port, [ipv6]:port or unix:/path)"));
}

absl::Status SockError(std::string_view call) {
#ifdef _WIN32
  return WinError(call, static_cast<uint32_t>(WSAGetLastError()));
#else
  return ErrnoError(call, errno);
#endif
}

absl::StatusOr<SockAddr> Name(FD& fd, bool peer) {
  SockAddr a;
  absl::Status call = absl::OkStatus();
  absl::Status s = fd.RawControl([&](Sysfd sysfd) {
#ifdef _WIN32
    int n = static_cast<int>(sizeof(a.storage));
    const SOCKET sock = static_cast<SOCKET>(sysfd);
    int r = peer ? ::getpeername(sock, a.get(), &n)
                 : ::getsockname(sock, a.get(), &n);
#else
    socklen_t n = sizeof(a.storage);
    int fd_int = static_cast<int>(sysfd);
    int r = peer ? ::getpeername(fd_int, a.get(), &n)
                 : ::getsockname(fd_int, a.get(), &n);
#endif
    if (r != 0) {
      call = SockError(peer ? "getpeername" : "getsockname");
    } else {
      a.len = static_cast<uint32_t>(n);
    }
  });
  if (!s.ok()) return s;
  if (!call.ok()) return call;
  return a;
}

}  // namespace

absl::StatusOr<SockAddr> SockAddr::Parse(std::string_view addr) {
  SockAddr out;
  if (addr.substr(0, 5) == "unix:") {
#ifdef _WIN32
    return absl::UnimplementedError(absl::StrCat(
        "address \"", std::string(addr), "\": unix sockets on Windows"));
#else
    std::string_view path = addr.substr(5);
    sockaddr_un un{};
    if (path.empty()) return BadAddr(addr, "empty unix socket path");
    if (path.find('\0') != std::string_view::npos) {
      return BadAddr(addr, "NUL in the unix socket path");
    }
    if (path.size() >= sizeof(un.sun_path)) {
      return BadAddr(addr, absl::StrCat("unix socket path longer than ",
                                        sizeof(un.sun_path) - 1, " bytes"));
    }
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    out.Set(&un, offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return out;
#endif
  }
  // host:port, with the host in brackets for IPv6.
  std::string_view host;
  std::string_view port;
  if (!addr.empty() && addr[0] == '[') {
    size_t close = addr.find(']');
    if (close == std::string_view::npos) return BadAddr(addr, "missing ']'");
    host = addr.substr(1, close - 1);
    if (close + 1 >= addr.size() || addr[close + 1] != ':') {
      return BadAddr(addr, "missing port");
    }
    port = addr.substr(close + 2);
    if (host.empty()) return BadAddr(addr, "empty IPv6 address");
  } else {
    size_t colon = addr.rfind(':');
    if (colon == std::string_view::npos) return BadAddr(addr, "missing port");
    host = addr.substr(0, colon);
    port = addr.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return BadAddr(addr, "an IPv6 address must be in brackets");
    }
  }
  uint32_t p = 0;
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos ||
      !absl::SimpleAtoi(std::string(port), &p) || p > 65535) {
    return BadAddr(addr, "port must be a number from 0 to 65535");
  }
  const std::string h(host);
  const bool v6 = !addr.empty() && addr[0] == '[';
  if (v6) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(static_cast<uint16_t>(p));
    if (inet_pton(AF_INET6, h.c_str(), &in6.sin6_addr) != 1) {
      return BadAddr(addr, "not an IPv6 address");
    }
    out.Set(&in6, sizeof(in6));
    return out;
  }
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(static_cast<uint16_t>(p));
  if (h.empty()) {
    in.sin_addr.s_addr = htonl(INADDR_ANY);
  } else if (h == "localhost") {
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else if (inet_pton(AF_INET, h.c_str(), &in.sin_addr) != 1) {
    return BadAddr(addr,
                   "not an IPv4 address (names other than localhost are "
                   "not resolved)");
  }
  out.Set(&in, sizeof(in));
  return out;
}

std::string SockAddr::ToString() const {
  if (len == 0) return "";
  const int family = get()->sa_family;
  char buf[64] = {};
  if (family == AF_INET && len >= sizeof(sockaddr_in)) {
    sockaddr_in in;
    std::memcpy(&in, storage, sizeof(in));
    if (inet_ntop(AF_INET, &in.sin_addr, buf, sizeof(buf)) == nullptr) {
      return "";
    }
    return absl::StrCat(buf, ":", ntohs(in.sin_port));
  }
  if (family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6;
    std::memcpy(&in6, storage, sizeof(in6));
    if (inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof(buf)) == nullptr) {
      return "";
    }
    return absl::StrCat("[", buf, "]:", ntohs(in6.sin6_port));
  }
#ifndef _WIN32
  if (family == AF_UNIX) {
    const size_t off = offsetof(sockaddr_un, sun_path);
    if (len <= off) return "unix:";  // unnamed (a socketpair's end)
    const char* path = reinterpret_cast<const char*>(storage) + off;
    size_t n = len - off;
    if (path[0] == '\0') {  // abstract: no terminating NUL
      return absl::StrCat("unix:@", std::string(path + 1, n - 1));
    }
    return absl::StrCat("unix:", std::string(path, strnlen(path, n)));
  }
#endif
  return absl::StrCat("family ", family);
}

absl::StatusOr<SockAddr> LocalAddr(FD& fd) { return Name(fd, false); }
absl::StatusOr<SockAddr> PeerAddr(FD& fd) { return Name(fd, true); }

namespace internal_net {

absl::Status WithAddr(absl::Status s, std::string_view verb,
                      std::string_view addr) {
  if (s.ok()) return s;
  return absl::Status(
      s.code(), absl::StrCat(std::string(verb), " ", std::string(addr), ": ",
                             s.message()));
}

namespace {

// A close-on-exec socket of `a`'s family and `type` (SOCK_STREAM or
// SOCK_DGRAM; overlapped on Windows).
absl::StatusOr<Sysfd> NewSocket(const SockAddr& a, int type) {
#ifdef _WIN32
  // Winsock is started once for these sockets (and never stopped).
  static absl::once_flag wsa_once;
  static int wsa_err = 0;
  absl::call_once(wsa_once, [] {
    WSADATA data;
    wsa_err = WSAStartup(MAKEWORD(2, 2), &data);
  });
  if (wsa_err != 0) {
    return WinError("WSAStartup", static_cast<uint32_t>(wsa_err));
  }
#ifndef WSA_FLAG_NO_HANDLE_INHERIT
#define WSA_FLAG_NO_HANDLE_INHERIT 0x80
#endif
  SOCKET s = WSASocketW(
      a.get()->sa_family, type, type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP,
      nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) return SockError("WSASocket");
  return static_cast<Sysfd>(s);
#else
  int fd = ::socket(a.get()->sa_family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return SockError("socket");
  return fd;
#endif
}

void CloseSocket(Sysfd s) {
#ifdef _WIN32
  ::closesocket(static_cast<SOCKET>(s));
#else
  ::close(static_cast<int>(s));
#endif
}

}  // namespace

absl::StatusOr<Sysfd> StreamSocket(const SockAddr& a) {
  return NewSocket(a, SOCK_STREAM);
}

absl::StatusOr<Sysfd> PacketSocket(const SockAddr& a) {
  absl::StatusOr<Sysfd> s = NewSocket(a, SOCK_DGRAM);
  if (!s.ok()) return s;
#ifdef _WIN32
  const bool bound =
      ::bind(static_cast<SOCKET>(*s), a.get(), static_cast<int>(a.len)) == 0;
#else
  const bool bound = ::bind(static_cast<int>(*s), a.get(), a.len) == 0;
#endif
  if (!bound) {
    absl::Status err = SockError("bind");
    CloseSocket(*s);
    return err;
  }
#ifdef _WIN32
  // As Go does: an ICMP port-unreachable for an earlier send must not fail
  // the next receive with WSAECONNRESET (Windows reports it there).
#ifndef SIO_UDP_CONNRESET
#define SIO_UDP_CONNRESET _WSAIOW(IOC_VENDOR, 12)
#endif
  BOOL report = FALSE;
  DWORD ret = 0;
  WSAIoctl(static_cast<SOCKET>(*s), SIO_UDP_CONNRESET, &report, sizeof(report),
           nullptr, 0, &ret, nullptr, nullptr);
#endif
  return s;
}

absl::StatusOr<Sysfd> ListenSocket(const SockAddr& a) {
#ifdef _WIN32
  // No SO_REUSEADDR: on Windows it would let another socket take the port.
  absl::StatusOr<Sysfd> s = StreamSocket(a);
  if (!s.ok()) return s;
  const SOCKET sock = static_cast<SOCKET>(*s);
  absl::Status err = absl::OkStatus();
  if (::bind(sock, a.get(), static_cast<int>(a.len)) != 0) {
    err = SockError("bind");
  } else if (::listen(sock, SOMAXCONN) != 0) {
    err = SockError("listen");
  }
  if (!err.ok()) {
    ::closesocket(sock);
    return err;
  }
  return *s;
#else
  absl::StatusOr<Sysfd> s = StreamSocket(a);
  if (!s.ok()) return s;
  const int fd = static_cast<int>(*s);
  absl::Status err = absl::OkStatus();
  const int one = 1;
  if (a.get()->sa_family != AF_UNIX &&
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    err = SockError("setsockopt");
  } else if (::bind(fd, a.get(), a.len) != 0) {
    err = SockError("bind");
  } else if (::listen(fd, SOMAXCONN) != 0) {
    err = SockError("listen");
  }
  if (!err.ok()) {
    ::close(fd);
    return err;
  }
  return *s;
#endif
}

}  // namespace internal_net

absl::StatusOr<std::unique_ptr<FD>> Listen(std::string_view addr) {
  absl::StatusOr<SockAddr> a = SockAddr::Parse(addr);
  if (!a.ok()) return a.status();
  absl::StatusOr<Sysfd> s = internal_net::ListenSocket(*a);
  if (!s.ok()) return internal_net::WithAddr(s.status(), "listen", addr);
  auto fd = std::make_unique<FD>(*s);  // owns the socket from here on
  absl::Status st = fd->Init(FdKind::kNet, true);
  if (!st.ok()) return internal_net::WithAddr(st, "listen", addr);
  return fd;
}

absl::StatusOr<std::unique_ptr<FD>> ListenPacket(std::string_view addr) {
  absl::StatusOr<SockAddr> a = SockAddr::Parse(addr);
  if (!a.ok()) return a.status();
  absl::StatusOr<Sysfd> s = internal_net::PacketSocket(*a);
  if (!s.ok()) return internal_net::WithAddr(s.status(), "listen", addr);
  auto fd = std::make_unique<FD>(*s);  // owns the socket from here on
  absl::Status st = fd->Init(FdKind::kNet, true);
  if (!st.ok()) return internal_net::WithAddr(st, "listen", addr);
  return fd;
}

absl::StatusOr<std::unique_ptr<FD>> Dial(std::string_view addr,
                                         absl::Time deadline) {
  absl::StatusOr<SockAddr> a = SockAddr::Parse(addr);
  if (!a.ok()) return a.status();
  absl::StatusOr<Sysfd> s = internal_net::StreamSocket(*a);
  if (!s.ok()) return internal_net::WithAddr(s.status(), "dial", addr);
  auto fd = std::make_unique<FD>(*s);
  absl::Status st = fd->Init(FdKind::kNet, true);
  if (st.ok()) st = fd->SetWriteDeadline(deadline);
  if (st.ok()) st = fd->Connect(*a);
  if (st.ok()) st = fd->SetWriteDeadline(absl::InfiniteFuture());
  if (!st.ok()) return internal_net::WithAddr(st, "dial", addr);
  return fd;
}

}  // namespace gopoll
