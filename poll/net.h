// SPDX-License-Identifier: BSD-3-Clause
// poll/net.h
//
// The socket plumbing every server and client needs, so an application
// needs none of its own: addresses written as strings, listening and
// dialing sockets and bound datagram sockets (blocking FDs or a loop's
// AsyncFds), the addresses of a connection and, in a loop, waiting for
// SIGINT/SIGTERM.
//
//   Addresses: "127.0.0.1:80", "[::1]:80", ":80" (every IPv4 address),
//   "localhost:80" (127.0.0.1; no other names: there is no resolver here),
//   "unix:/path/to/socket" (a unix stream socket; ListenPacket: a unix
//   datagram socket).
//
//   gopoll::Loop loop;
//   absl::StatusOr<gopoll::AsyncFd> ln = gopoll::Listen(loop, "127.0.0.1:0");
//   absl::StatusOr<gopoll::SockAddr> at = ln->LocalAddr();   // the port
//   // in a coroutine of `loop`:
//   absl::StatusOr<gopoll::AsyncFd> c =
//       co_await gopoll::Dial(loop, at->ToString());
//   int sig = co_await gopoll::ShutdownSignal(loop);         // SIGINT/SIGTERM
//
// Every function returns a clear status for bad input (an unparsable
// address: InvalidArgument naming it) and OS errors with the address in
// front ("listen 127.0.0.1:80: bind: Address already in use (os error 98)",
// code UNAVAILABLE; OsErrorCode works). Nothing leaks on failure.
//
// Linux: everything. Windows: everything but unix addresses
// (Unimplemented there); Listen and Dial start Winsock themselves.
#ifndef POLL_NET_H_
#define POLL_NET_H_

// First of all includes: a clear #error below C++20.
// clang-format off
#include "poll/require_cxx20.h"
// clang-format on

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "poll/fd.h"
#include "poll/sysfd.h"

namespace gopoll {

class Loop;
class AsyncFd;
template <typename T>
class Task;

// A listening stream socket on `addr` (TCP with SO_REUSEADDR, or a unix
// socket), backlog SOMAXCONN, close-on-exec, as an FD initialised with
// Init(FdKind::kNet, true). Port 0 picks a free port (LocalAddr tells it).
absl::StatusOr<std::unique_ptr<FD>> Listen(std::string_view addr);
// A datagram socket bound to `addr` (UDP, or a unix datagram socket),
// close-on-exec, as an FD initialised with Init(FdKind::kNet, true): it
// serves any peer with RecvFrom/SendTo (or ReadMsg/WriteMsg). Port 0 picks
// a free port (LocalAddr tells it). Go's net.ListenPacket.
absl::StatusOr<std::unique_ptr<FD>> ListenPacket(std::string_view addr);
// A stream connection to `addr`, waiting until `deadline` at most
// (IsDeadlineExceeded after it); the FD has no deadline set afterwards.
absl::StatusOr<std::unique_ptr<FD>> Dial(
    std::string_view addr, absl::Time deadline = absl::InfiniteFuture());

// The same on an event loop: the socket is adopted by `loop`.
absl::StatusOr<AsyncFd> Listen(Loop& loop, std::string_view addr);
absl::StatusOr<AsyncFd> ListenPacket(Loop& loop, std::string_view addr);
// `co_await Dial(loop, addr)` in a coroutine running on `loop` gives the
// connection (the address is parsed at the call, so `addr` need not outlive
// it). The connect runs on the loop; `deadline` as for the blocking Dial.
Task<absl::StatusOr<AsyncFd>> Dial(
    Loop& loop, std::string_view addr,
    absl::Time deadline = absl::InfiniteFuture());

// getsockname / getpeername of a socket FD (AsyncFd::LocalAddr/PeerAddr
// are the same on a loop's FD).
absl::StatusOr<SockAddr> LocalAddr(FD& fd);
absl::StatusOr<SockAddr> PeerAddr(FD& fd);

// `int sig = co_await ShutdownSignal(loop);` in a coroutine running on
// `loop`: waits until the process gets SIGINT or SIGTERM and gives its
// number. While at least one such wait is pending, those signals are
// delivered to the waiters instead of ending the process (each signal wakes
// one waiter); afterwards their previous dispositions are back, so a second
// Ctrl-C during shutdown ends the process as usual. A destroyed waiting
// coroutine releases everything it held.
// Windows: console control events instead, mapped as Go maps them: Ctrl+C
// and Ctrl+Break give SIGINT; closing the console, logoff and shutdown
// SIGTERM (the system then lets the process run until it exits or the
// system's own timeout, about 5 s for a closed console, ends it). With
// nobody waiting an event gets its default handling (the process ends).
// Not in a task running on `loop`: FailedPrecondition.
Task<absl::StatusOr<int>> ShutdownSignal(Loop& loop);

}  // namespace gopoll

#endif  // POLL_NET_H_
