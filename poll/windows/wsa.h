// SPDX-License-Identifier: BSD-3-Clause
// poll/windows/wsa.h
//
// Winsock pieces of the IOCP backend:
//   - the Microsoft extension functions (AcceptEx, GetAcceptExSockaddrs,
//     ConnectEx, WSARecvMsg), looked up once through
//     WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER) on a caller's socket; a
//     failed lookup is an error status naming the function, and is retried
//     by the next caller;
//   - SocketsCanSkipCompletionPort(): whether sockets may use
//     FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (Go's
//     socketCanUseSetFileCompletionNotificationModes: only if every TCP
//     protocol provider is an IFS handle provider; a layered non-IFS
//     provider may complete synchronously and still queue a packet),
//     decided once per process;
//   - WSARecv/WSASend wrappers that return an IoResult (bytes or the WSA
//     error) for FD::ExecIO.
// Winsock must be initialised (WSAStartup) by the application, as for any
// socket it hands to an FD.
#ifndef POLL_WINDOWS_WSA_H_
#define POLL_WINDOWS_WSA_H_

// clang-format off
#include <winsock2.h>
#include <mswsock.h>
#include <windows.h>
// clang-format on

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "poll/sysfd.h"

namespace gopoll {

absl::StatusOr<LPFN_ACCEPTEX> AcceptExFn(SOCKET s);
absl::StatusOr<LPFN_GETACCEPTEXSOCKADDRS> GetAcceptExSockaddrsFn(SOCKET s);
absl::StatusOr<LPFN_CONNECTEX> ConnectExFn(SOCKET s);
absl::StatusOr<LPFN_WSARECVMSG> WsaRecvMsgFn(SOCKET s);

bool SocketsCanSkipCompletionPort();

// The result of a Winsock call that already ran: `rc` is its return value
// (0 or SOCKET_ERROR), `n` the byte count it reported. WSA_IO_PENDING comes
// back as ERROR_IO_PENDING (the same value).
IoResult WsaDone(int rc, DWORD n);

// One WSARecv/WSASend on up to `bufs.size()` buffers; `ov` may be null
// (a blocking call). `flags` is in/out for WSARecv and must stay alive until
// the operation completes.
IoResult WsaRecv(SOCKET s, absl::Span<const absl::Span<char>> bufs,
                 DWORD* flags, OVERLAPPED* ov);
IoResult WsaSend(SOCKET s, absl::Span<const absl::Span<const char>> bufs,
                 OVERLAPPED* ov);

}  // namespace gopoll

#endif  // POLL_WINDOWS_WSA_H_
