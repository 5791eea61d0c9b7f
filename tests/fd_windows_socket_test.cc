// SPDX-License-Identifier: BSD-3-Clause
// The IOCP backend's sockets under Wine: binding at Init, TCP
// accept/connect/read/write through FD on both ends, deadlines, Close
// unblocking Accept and Read, refused connections, UDP SendTo/RecvFrom and
// ReadMsg/WriteMsg with the peer address, EOF after the peer's shutdown,
// RawRead waiting for readability, and no leaked handles.
// clang-format off
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>
// clang-format on

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

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

Sysfd S(SOCKET s) { return static_cast<Sysfd>(s); }
HANDLE H(SOCKET s) { return reinterpret_cast<HANDLE>(s); }

SockAddr Loopback4(uint16_t port = 0) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons(port);
  SockAddr a;
  a.Set(&sin, sizeof(sin));
  return a;
}

SockAddr Loopback6() {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_addr = in6addr_loopback;
  SockAddr a;
  a.Set(&sin6, sizeof(sin6));
  return a;
}

SockAddr LocalAddr(SOCKET s) {
  SockAddr a;
  int len = sizeof(a.storage);
  EXPECT_EQ(getsockname(s, a.get(), &len), 0) << WSAGetLastError();
  a.len = static_cast<uint32_t>(len);
  return a;
}

std::string Str(const SockAddr& a) {
  char host[NI_MAXHOST] = "?";
  char serv[NI_MAXSERV] = "?";
  getnameinfo(a.get(), static_cast<int>(a.len), host, sizeof(host), serv,
              sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
  return std::string(host) + "/" + serv + " (family " +
         std::to_string(a.get()->sa_family) + ", len " + std::to_string(a.len) +
         ")";
}

class FdWindowsSocket : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    WSADATA d;
    ASSERT_EQ(WSAStartup(MAKEWORD(2, 2), &d), 0);
    Iocp::Port();  // the port lives for the whole process
  }
  void SetUp() override {
    SetInitIOHook([this](HANDLE h, IoMode m, const absl::Status&) {
      log_.Record(h, m, 0);
    });
    handles_ = HandleCount();
  }
  void TearDown() override {
    SetInitIOHook(nullptr);
    testing::ExpectNoHandleLeak(handles_);
  }

  // A new socket (socket() makes overlapped, inheritable sockets).
  static SOCKET NewSocket(int family, int type) {
    SOCKET s = socket(family, type, 0);
    EXPECT_NE(s, INVALID_SOCKET) << WSAGetLastError();
    return s;
  }

  // A listening FD on `addr` (port 0); *bound gets the address.
  std::unique_ptr<FD> Listen(const SockAddr& addr, SockAddr* bound) {
    SOCKET s = NewSocket(addr.get()->sa_family, SOCK_STREAM);
    if (bind(s, addr.get(), static_cast<int>(addr.len)) != 0 ||
        listen(s, 16) != 0) {
      ADD_FAILURE() << "bind/listen: " << WSAGetLastError();
      closesocket(s);
      return nullptr;
    }
    *bound = LocalAddr(s);
    auto fd = std::make_unique<FD>(S(s));
    absl::Status st = fd->Init(FdKind::kNet, true);
    EXPECT_TRUE(st.ok()) << st;
    return fd;
  }

  // A connected TCP pair, both ends FDs, made with FD::Accept and
  // FD::Connect.
  struct TcpPair {
    std::unique_ptr<FD> client;
    std::unique_ptr<FD> server;
    Accepted accepted;  // sysfd now owned by `server`
  };
  TcpPair Connected(const SockAddr& where = Loopback4()) {
    TcpPair p;
    SockAddr addr;
    std::unique_ptr<FD> ln = Listen(where, &addr);
    if (ln == nullptr) return p;
    p.client =
        std::make_unique<FD>(S(NewSocket(where.get()->sa_family, SOCK_STREAM)));
    absl::Status st = p.client->Init(FdKind::kNet, true);
    EXPECT_TRUE(st.ok()) << st;
    st = ln->SetReadDeadline(absl::Now() + kHang);  // no hang
    EXPECT_TRUE(st.ok()) << st;
    absl::Status connected;
    std::thread t([&] { connected = p.client->Connect(addr); });
    absl::StatusOr<Accepted> a = ln->Accept();
    t.join();
    EXPECT_TRUE(connected.ok()) << connected;
    EXPECT_TRUE(a.ok()) << a.status();
    if (!a.ok()) return p;
    p.accepted = *a;
    p.server = std::make_unique<FD>(a->sysfd);
    st = p.server->Init(FdKind::kNet, true);
    EXPECT_TRUE(st.ok()) << st;
    return p;
  }

  BindLog log_;
  DWORD handles_ = 0;
};

// Go's socketCanUseSetFileCompletionNotificationModes, computed here
// independently: every TCP provider must hand out IFS handles.
bool AllTcpProvidersAreIfs() {
  INT protocols[] = {IPPROTO_TCP, 0};
  std::vector<char> buf(64 * sizeof(WSAPROTOCOL_INFOW));
  DWORD len = static_cast<DWORD>(buf.size());
  auto* info = reinterpret_cast<WSAPROTOCOL_INFOW*>(buf.data());
  int n = WSAEnumProtocolsW(protocols, info, &len);
  if (n <= 0) return false;
  for (int i = 0; i < n; ++i) {
    if ((info[i].dwServiceFlags1 & XP1_IFS_HANDLES) == 0) return false;
  }
  return true;
}

TEST_F(FdWindowsSocket, SocketIsBoundAtInit) {
  SOCKET s = NewSocket(AF_INET, SOCK_STREAM);
  FD fd(S(s));
  EXPECT_EQ(log_.Count(H(s)), 0);
  ASSERT_OK(fd.Init(FdKind::kNet, true));
  // Bound at Init, before any operation (sockets are not lazy).
  EXPECT_EQ(log_.Count(H(s)), 1);
  EXPECT_EQ(log_.Mode(H(s)), IoMode::kPort);
  EXPECT_TRUE(fd.zero_read_is_eof());
  // Skip-on-success exactly when every TCP provider is an IFS provider
  // (sockets are inheritable here: that does not matter for sockets).
  EXPECT_EQ(gopoll::internal::FdAccess::backend(fd).skip_sync_notify,
            AllTcpProvidersAreIfs());
  EXPECT_EQ(gopoll::internal::FdAccess::backend(fd).sock_family, AF_INET);
  EXPECT_EQ(gopoll::internal::FdAccess::backend(fd).sock_type, SOCK_STREAM);
  EXPECT_EQ(gopoll::internal::FdAccess::backend(fd).sock_protocol, IPPROTO_TCP);
  // The handle belongs to our port now.
  HANDLE other = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
  EXPECT_EQ(CreateIoCompletionPort(H(s), other, 0, 0), nullptr);
  CloseHandle(other);

  SOCKET u = NewSocket(AF_INET, SOCK_DGRAM);
  FD ufd(S(u));
  ASSERT_OK(ufd.Init(FdKind::kNet, true));
  EXPECT_EQ(log_.Mode(H(u)), IoMode::kPort);
  EXPECT_FALSE(ufd.zero_read_is_eof());  // a 0-byte datagram is not EOF
}

void ExpectSameAddr(const SockAddr& a, const SockAddr& b) {
  ASSERT_EQ(a.len, b.len) << Str(a) << " vs " << Str(b);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a.storage), a.len),
            std::string(reinterpret_cast<const char*>(b.storage), b.len))
      << Str(a) << " vs " << Str(b);
}

TEST_F(FdWindowsSocket, TcpAcceptConnectRoundTrip) {
  TcpPair p = Connected();
  ASSERT_NE(p.server, nullptr);
  const SOCKET cs = static_cast<SOCKET>(p.client->sysfd());
  const SOCKET ss = static_cast<SOCKET>(p.server->sysfd());
  // Accept's peer address is the client's local address (the client was
  // bound to the wildcard address by Connect, then got 127.0.0.1).
  ExpectSameAddr(p.accepted.peer, LocalAddr(cs));
  // The contexts were updated: getpeername works on both ends.
  SockAddr peer;
  int len = sizeof(peer.storage);
  ASSERT_EQ(getpeername(cs, peer.get(), &len), 0) << WSAGetLastError();
  peer.len = static_cast<uint32_t>(len);
  ExpectSameAddr(peer, LocalAddr(ss));
  // The accepted socket is bound to the port at Init and not inheritable.
  EXPECT_EQ(log_.Mode(H(ss)), IoMode::kPort);
  DWORD hflags = 0;
  ASSERT_TRUE(GetHandleInformation(H(ss), &hflags)) << GetLastError();
  EXPECT_EQ(hflags & HANDLE_FLAG_INHERIT, 0u);
  EXPECT_EQ(gopoll::internal::FdAccess::backend(*p.server).sock_type,
            SOCK_STREAM);

  // Small messages both ways.
  ASSERT_OK(p.client->Write("hello from client"sv));
  char buf[64];
  auto n = p.server->Read(absl::MakeSpan(buf));
  ASSERT_OK(n);
  EXPECT_EQ(std::string(buf, *n), "hello from client");
  ASSERT_OK(p.server->Write("reply"sv));
  n = p.client->Read(absl::MakeSpan(buf));
  ASSERT_OK(n);
  EXPECT_EQ(std::string(buf, *n), "reply");

  // 4 MiB one way while the reader is already waiting: pending reads and
  // writes that complete through the port, bytes checked.
  std::string big(4 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>((i * 7 + i / 4096) & 0xff);
  }
  ASSERT_OK(p.server->SetReadDeadline(absl::Now() + kHang));  // no hang
  std::string got;
  std::thread reader([&] {
    std::vector<char> rb(100000);
    while (got.size() < big.size()) {
      auto r = p.server->Read(absl::MakeSpan(rb));
      if (!r.ok()) {
        ADD_FAILURE() << r.status();
        return;
      }
      got.append(rb.data(), *r);
    }
  });
  absl::SleepFor(absl::Milliseconds(20));
  auto w = p.client->Write(big);
  reader.join();
  ASSERT_OK(w);
  EXPECT_EQ(*w, big.size());
  EXPECT_TRUE(got == big) << "received bytes differ (" << got.size() << ")";

  // Gather write and scatter read (one WSASend/WSARecv with 3 buffers).
  absl::Span<const char> parts[] = {"ab"sv, "cde"sv, "f"sv};
  ASSERT_OK(p.server->WriteV(parts));
  char x[2], y[2], z[10];
  absl::Span<char> out[] = {absl::MakeSpan(x), absl::MakeSpan(y),
                            absl::MakeSpan(z)};
  std::string joined;
  while (joined.size() < 6) {
    auto r = p.client->ReadV(out);
    ASSERT_OK(r);
    std::string all =
        std::string(x, 2) + std::string(y, 2) + std::string(z, 10);
    joined += all.substr(0, *r);
  }
  EXPECT_EQ(joined, "abcdef");
}

TEST_F(FdWindowsSocket, TcpOverIpv6UsesTheListenersFamily) {
  SOCKET probe = socket(AF_INET6, SOCK_STREAM, 0);
  SockAddr l6 = Loopback6();
  bool have_v6 = probe != INVALID_SOCKET &&
                 bind(probe, l6.get(), static_cast<int>(l6.len)) == 0;
  if (probe != INVALID_SOCKET) closesocket(probe);
  if (!have_v6) GTEST_SKIP() << "no IPv6 loopback here";
  TcpPair p = Connected(l6);
  ASSERT_NE(p.server, nullptr);
  EXPECT_EQ(gopoll::internal::FdAccess::backend(*p.server).sock_family,
            AF_INET6);
  EXPECT_EQ(p.accepted.peer.get()->sa_family, AF_INET6);
  ExpectSameAddr(p.accepted.peer,
                 LocalAddr(static_cast<SOCKET>(p.client->sysfd())));
  ASSERT_OK(p.server->Write("v6"sv));
  char buf[4];
  auto n = p.client->Read(absl::MakeSpan(buf));
  ASSERT_OK(n);
  EXPECT_EQ(std::string(buf, *n), "v6");
}

TEST_F(FdWindowsSocket, ReadDeadlineThenReadWorks) {
  TcpPair p = Connected();
  ASSERT_NE(p.server, nullptr);
  ASSERT_OK(p.server->SetReadDeadline(absl::Now() + absl::Milliseconds(50)));
  char buf[16];
  absl::Time start = absl::Now();
  auto n = p.server->Read(absl::MakeSpan(buf));
  EXPECT_TRUE(IsDeadlineExceeded(n.status())) << n.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(40));
  // Still expired: fails at once even with data ready.
  ASSERT_OK(p.client->Write("later"sv));
  EXPECT_TRUE(IsDeadlineExceeded(p.server->Read(absl::MakeSpan(buf)).status()));
  // Extended: the data is read (the cancelled receive took nothing).
  ASSERT_OK(p.server->SetReadDeadline(absl::Now() + absl::Seconds(10)));
  n = p.server->Read(absl::MakeSpan(buf));
  ASSERT_OK(n);
  EXPECT_EQ(std::string(buf, *n), "later");
  // A deadline set while the read is already waiting applies to it.
  ASSERT_OK(p.server->SetReadDeadline(absl::InfiniteFuture()));
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(30));
    p.server->SetReadDeadline(absl::Now()).IgnoreError();
  });
  n = p.server->Read(absl::MakeSpan(buf));
  t.join();
  EXPECT_TRUE(IsDeadlineExceeded(n.status())) << n.status();
}

TEST_F(FdWindowsSocket, CloseUnblocksAccept) {
  SockAddr addr;
  std::unique_ptr<FD> ln = Listen(Loopback4(), &addr);
  ASSERT_NE(ln, nullptr);
  absl::Status got;
  absl::Notification done;
  std::thread t([&] {
    got = ln->Accept().status();
    done.Notify();
  });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(done.HasBeenNotified());
  absl::Time start = absl::Now();
  EXPECT_OK(ln->Close());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kHang));
  t.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(IsClosing(got)) << got;
  // TearDown checks that the socket AcceptEx waited with was closed too.
}

TEST_F(FdWindowsSocket, AcceptDeadline) {
  SockAddr addr;
  std::unique_ptr<FD> ln = Listen(Loopback4(), &addr);
  ASSERT_NE(ln, nullptr);
  ASSERT_OK(ln->SetReadDeadline(absl::Now() + absl::Milliseconds(30)));
  EXPECT_TRUE(IsDeadlineExceeded(ln->Accept().status()));
  // The listener still accepts after the deadline is cleared.
  ASSERT_OK(ln->SetReadDeadline(absl::InfiniteFuture()));
  SOCKET c = NewSocket(AF_INET, SOCK_STREAM);
  ASSERT_EQ(connect(c, addr.get(), static_cast<int>(addr.len)), 0)
      << WSAGetLastError();
  auto a = ln->Accept();
  ASSERT_OK(a);
  ExpectSameAddr(a->peer, LocalAddr(c));
  closesocket(a->sysfd);
  closesocket(c);
}

TEST_F(FdWindowsSocket, CloseUnblocksRead) {
  TcpPair p = Connected();
  ASSERT_NE(p.server, nullptr);
  absl::Status got;
  absl::Notification done;
  std::thread t([&] {
    char c;
    got = p.server->Read(absl::MakeSpan(&c, 1)).status();
    done.Notify();
  });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(done.HasBeenNotified());
  absl::Time start = absl::Now();
  EXPECT_OK(p.server->Close());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kHang));
  t.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(IsClosing(got)) << got;
}

TEST_F(FdWindowsSocket, ConnectToClosedPortFails) {
  // A port that was just in use and now has no listener.
  SOCKET tmp = NewSocket(AF_INET, SOCK_STREAM);
  SockAddr any = Loopback4();
  ASSERT_EQ(bind(tmp, any.get(), static_cast<int>(any.len)), 0);
  SockAddr dead = LocalAddr(tmp);
  closesocket(tmp);

  FD c(S(NewSocket(AF_INET, SOCK_STREAM)));
  ASSERT_OK(c.Init(FdKind::kNet, true));
  ASSERT_OK(c.SetWriteDeadline(absl::Now() + kHang));
  absl::Time start = absl::Now();
  absl::Status st = c.Connect(dead);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(IsDeadlineExceeded(st)) << st;
  EXPECT_EQ(OsErrorCode(st), WSAECONNREFUSED) << st;
}

TEST_F(FdWindowsSocket, ConnectHonoursAnExpiredWriteDeadline) {
  SockAddr addr;
  std::unique_ptr<FD> ln = Listen(Loopback4(), &addr);
  ASSERT_NE(ln, nullptr);
  FD c(S(NewSocket(AF_INET, SOCK_STREAM)));
  ASSERT_OK(c.Init(FdKind::kNet, true));
  ASSERT_OK(c.SetWriteDeadline(absl::Now() - absl::Seconds(1)));
  absl::Status st = c.Connect(addr);
  EXPECT_TRUE(IsDeadlineExceeded(st)) << st;
  ASSERT_OK(c.Close());
  EXPECT_TRUE(IsClosing(c.Connect(addr)));
}

// A connect that stays pending: the listener's queue is full and nobody
// accepts, so the host (Linux, under Wine) drops the SYNs. The write
// deadline and Close cancel the pending ConnectEx.
TEST_F(FdWindowsSocket, PendingConnectEndsByDeadlineAndByClose) {
  SOCKET ls = NewSocket(AF_INET, SOCK_STREAM);
  SockAddr any = Loopback4();
  ASSERT_EQ(bind(ls, any.get(), static_cast<int>(any.len)), 0);
  ASSERT_EQ(listen(ls, 1), 0);
  SockAddr addr = LocalAddr(ls);
  std::vector<std::unique_ptr<FD>> filler;
  bool timed_out = false;
  int refused = 0;
  for (int i = 0; i < 8 && !timed_out; ++i) {
    auto c = std::make_unique<FD>(S(NewSocket(AF_INET, SOCK_STREAM)));
    ASSERT_OK(c->Init(FdKind::kNet, true));
    ASSERT_OK(c->SetWriteDeadline(absl::Now() + absl::Milliseconds(300)));
    absl::Time start = absl::Now();
    absl::Status st = c->Connect(addr);
    if (IsDeadlineExceeded(st)) {
      timed_out = true;
      EXPECT_LT(absl::Now() - start, absl::Seconds(5));
    } else if (OsErrorCode(st) == WSAECONNREFUSED) {
      ++refused;
    } else {
      ASSERT_OK(st);
    }
    filler.push_back(std::move(c));
  }
  if (!timed_out && refused > 0) {
    closesocket(ls);
    GTEST_SKIP() << "this host refuses connections to a full queue";
  }
  ASSERT_TRUE(timed_out) << "no connect stayed pending";
  // The same kind of connect, ended by Close from another thread.
  FD c(S(NewSocket(AF_INET, SOCK_STREAM)));
  ASSERT_OK(c.Init(FdKind::kNet, true));
  absl::Status got;
  absl::Notification done;
  std::thread t([&] {
    got = c.Connect(addr);
    done.Notify();
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(done.HasBeenNotified());
  EXPECT_OK(c.Close());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kHang));
  t.join();
  EXPECT_TRUE(IsClosing(got)) << got;
  filler.clear();
  closesocket(ls);
}

TEST_F(FdWindowsSocket, EofAfterPeerShutdown) {
  TcpPair p = Connected();
  ASSERT_NE(p.server, nullptr);
  ASSERT_OK(p.client->Write("bye"sv));
  ASSERT_OK(p.client->Shutdown(SD_SEND));
  char buf[8];
  auto n = p.server->Read(absl::MakeSpan(buf));
  ASSERT_OK(n);
  EXPECT_EQ(std::string(buf, *n), "bye");
  EXPECT_TRUE(IsEof(p.server->Read(absl::MakeSpan(buf)).status()));
  // The other direction still works, and a read already waiting when the
  // peer shuts down sees EOF too.
  ASSERT_OK(p.client->SetReadDeadline(absl::Now() + kHang));  // no hang
  absl::Status pending;
  std::thread t(
      [&] { pending = p.client->Read(absl::MakeSpan(buf)).status(); });
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_OK(p.server->Shutdown(SD_SEND));
  t.join();
  EXPECT_TRUE(IsEof(pending)) << pending;
}

std::unique_ptr<FD> Udp(SockAddr* bound) {
  SOCKET s = socket(AF_INET, SOCK_DGRAM, 0);
  EXPECT_NE(s, INVALID_SOCKET);
  SockAddr a = Loopback4();
  EXPECT_EQ(bind(s, a.get(), static_cast<int>(a.len)), 0) << WSAGetLastError();
  *bound = LocalAddr(s);
  auto fd = std::make_unique<FD>(S(s));
  absl::Status st = fd->Init(FdKind::kNet, true);
  EXPECT_TRUE(st.ok()) << st;
  return fd;
}

TEST_F(FdWindowsSocket, UdpSendToRecvFrom) {
  SockAddr aa, ba;
  std::unique_ptr<FD> a = Udp(&aa);
  std::unique_ptr<FD> b = Udp(&ba);
  auto n = a->SendTo("ping"sv, ba, 0);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 4u);
  char buf[32];
  auto r = b->RecvFrom(absl::MakeSpan(buf), 0);
  ASSERT_OK(r);
  EXPECT_EQ(std::string(buf, r->n), "ping");
  ExpectSameAddr(r->from, aa);
  // A receive that waits (completes through the port) fills the address.
  ASSERT_OK(a->SetReadDeadline(absl::Now() + kHang));  // no hang
  absl::StatusOr<RecvFromResult> later = absl::UnknownError("not run");
  std::thread t([&] { later = a->RecvFrom(absl::MakeSpan(buf), 0); });
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_OK(b->SendTo("pong!"sv, aa, 0));
  t.join();
  ASSERT_OK(later);
  EXPECT_EQ(std::string(buf, later->n), "pong!");
  ExpectSameAddr(later->from, ba);
  // A zero-byte datagram is a 0-byte read, not EOF.
  ASSERT_OK(a->SendTo(absl::Span<const char>(), ba, 0));
  auto z = b->Read(absl::MakeSpan(buf));
  ASSERT_OK(z);
  EXPECT_EQ(*z, 0u);
  // A read deadline bounds RecvFrom.
  ASSERT_OK(b->SetReadDeadline(absl::Now() + absl::Milliseconds(30)));
  EXPECT_TRUE(IsDeadlineExceeded(b->RecvFrom(absl::MakeSpan(buf), 0).status()));
}

TEST_F(FdWindowsSocket, UdpWriteMsgReadMsg) {
  SockAddr aa, ba;
  std::unique_ptr<FD> a = Udp(&aa);
  std::unique_ptr<FD> b = Udp(&ba);
  auto n = a->WriteMsg("message"sv, absl::Span<const char>(), &ba, 0);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 7u);
  char buf[32];
  auto m = b->ReadMsg(absl::MakeSpan(buf), absl::Span<char>(), 0);
  ASSERT_OK(m);
  EXPECT_EQ(std::string(buf, m->n), "message");
  EXPECT_EQ(m->oobn, 0u);
  ExpectSameAddr(m->from, aa);
  // With IP_PKTINFO the control data names the destination address.
  DWORD on = 1;
  ASSERT_EQ(setsockopt(static_cast<SOCKET>(b->sysfd()), IPPROTO_IP, IP_PKTINFO,
                       reinterpret_cast<const char*>(&on), sizeof(on)),
            0)
      << WSAGetLastError();
  ASSERT_OK(a->WriteMsg("again"sv, absl::Span<const char>(), &ba, 0));
  alignas(8) char oob[256];
  m = b->ReadMsg(absl::MakeSpan(buf), absl::MakeSpan(oob), 0);
  ASSERT_OK(m);
  EXPECT_EQ(std::string(buf, m->n), "again");
  ASSERT_GE(m->oobn, sizeof(WSACMSGHDR));
  auto* cm = reinterpret_cast<WSACMSGHDR*>(oob);
  EXPECT_EQ(cm->cmsg_level, IPPROTO_IP);
  EXPECT_EQ(cm->cmsg_type, IP_PKTINFO);
  auto* pi = reinterpret_cast<IN_PKTINFO*>(WSA_CMSG_DATA(cm));
  EXPECT_EQ(ntohl(pi->ipi_addr.s_addr), INADDR_LOOPBACK);
  // A truncated datagram returns what fits and says so.
  ASSERT_OK(a->WriteMsg("0123456789"sv, absl::Span<const char>(), &ba, 0));
  m = b->ReadMsg(absl::MakeSpan(buf, 4), absl::MakeSpan(oob), 0);
  ASSERT_OK(m);
  EXPECT_EQ(std::string(buf, m->n), "0123");
  EXPECT_NE(m->flags & MSG_TRUNC, 0) << m->flags;
  EXPECT_EQ(m->flags & MSG_CTRUNC, 0) << m->flags;
  // No room for the control data: the data is complete, MSG_CTRUNC set.
  ASSERT_OK(a->WriteMsg("ctl"sv, absl::Span<const char>(), &ba, 0));
  m = b->ReadMsg(absl::MakeSpan(buf), absl::Span<char>(), 0);
  ASSERT_OK(m);
  EXPECT_EQ(std::string(buf, m->n), "ctl");
  EXPECT_EQ(m->oobn, 0u);
  EXPECT_NE(m->flags & MSG_CTRUNC, 0) << m->flags;
  EXPECT_EQ(m->flags & MSG_TRUNC, 0) << m->flags;
  // A truncated datagram through Read/RecvFrom: what fits (as recv(2)).
  on = 0;
  ASSERT_EQ(setsockopt(static_cast<SOCKET>(b->sysfd()), IPPROTO_IP, IP_PKTINFO,
                       reinterpret_cast<const char*>(&on), sizeof(on)),
            0);
  ASSERT_OK(a->SendTo("abcdefgh"sv, ba, 0));
  auto r = b->RecvFrom(absl::MakeSpan(buf, 3), 0);
  ASSERT_OK(r);
  EXPECT_EQ(std::string(buf, r->n), "abc");
  ExpectSameAddr(r->from, aa);
  // A truncated datagram that arrives while the read waits.
  ASSERT_OK(b->SetReadDeadline(absl::Now() + kHang));  // no hang
  absl::StatusOr<MsgResult> later = absl::UnknownError("not run");
  std::thread t([&] {
    later = b->ReadMsg(absl::MakeSpan(buf, 2), absl::Span<char>(), 0);
  });
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_OK(a->SendTo("xyz"sv, ba, 0));
  t.join();
  ASSERT_OK(later);
  EXPECT_EQ(std::string(buf, later->n), "xy");
  EXPECT_NE(later->flags & MSG_TRUNC, 0) << later->flags;
  ExpectSameAddr(later->from, aa);
  // Connected socket: WriteMsg without an address.
  ASSERT_OK(a->Connect(ba));
  ASSERT_OK(a->WriteMsg("conn"sv, absl::Span<const char>(), nullptr, 0));
  m = b->ReadMsg(absl::MakeSpan(buf), absl::Span<char>(), 0);
  ASSERT_OK(m);
  EXPECT_EQ(std::string(buf, m->n), "conn");
}

TEST_F(FdWindowsSocket, RawReadWaitsForData) {
  TcpPair p = Connected();
  ASSERT_NE(p.server, nullptr);
  int calls = 0;
  std::string got;
  auto f = [&](Sysfd fd) {
    ++calls;
    u_long avail = 0;
    ioctlsocket(static_cast<SOCKET>(fd), FIONREAD, &avail);
    if (avail == 0) return false;
    char buf[16];
    int r = recv(static_cast<SOCKET>(fd), buf, sizeof(buf), 0);
    if (r > 0) got.assign(buf, r);
    return true;
  };
  ASSERT_OK(p.server->SetReadDeadline(absl::Now() + kHang));  // no hang
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_OK(p.client->Write("raw"sv));
  });
  absl::Status raw = p.server->RawRead(f);
  t.join();
  ASSERT_OK(raw);
  EXPECT_EQ(got, "raw");
  // Once before the data, once after: the wait did not spin.
  EXPECT_EQ(calls, 2);
  // The wait honours the read deadline.
  calls = 0;
  ASSERT_OK(p.server->SetReadDeadline(absl::Now() + absl::Milliseconds(30)));
  EXPECT_TRUE(IsDeadlineExceeded(p.server->RawRead(f)));
  EXPECT_EQ(calls, 1);
  // RawWrite runs f, but cannot wait for writability on Windows.
  ASSERT_OK(p.server->RawWrite([](Sysfd) { return true; }));
  EXPECT_EQ(p.server->RawWrite([](Sysfd) { return false; }).code(),
            absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace gopoll
