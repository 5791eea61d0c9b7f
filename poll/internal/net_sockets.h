// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/net_sockets.h
//
// The socket steps poll/net.h's blocking and loop forms share: a new
// stream socket, a listening one (SO_REUSEADDR for TCP, SOMAXCONN), a bound
// datagram socket, and the
// "<verb> <addr>: " prefix of their errors. Not public API.
#ifndef POLL_INTERNAL_NET_SOCKETS_H_
#define POLL_INTERNAL_NET_SOCKETS_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "poll/sysfd.h"

namespace gopoll::internal_net {

// A close-on-exec stream socket of `a`'s family.
absl::StatusOr<Sysfd> StreamSocket(const SockAddr& a);
// A close-on-exec datagram socket of `a`'s family bound to `a`; closed
// again on failure.
absl::StatusOr<Sysfd> PacketSocket(const SockAddr& a);
// A stream socket bound to `a` and listening; closed again on failure.
absl::StatusOr<Sysfd> ListenSocket(const SockAddr& a);
// `s` with "<verb> <addr>: " in front of its message, same code (OK as is).
absl::Status WithAddr(absl::Status s, std::string_view verb,
                      std::string_view addr);

}  // namespace gopoll::internal_net

#endif  // POLL_INTERNAL_NET_SOCKETS_H_
