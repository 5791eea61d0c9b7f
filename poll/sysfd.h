// SPDX-License-Identifier: BSD-3-Clause
// poll/sysfd.h
//
// Sysfd: an OS handle as an integer. On POSIX it is the file descriptor; on
// Windows it holds a HANDLE or SOCKET (both pointer-sized), converted with a
// cast. kInvalidSysfd (-1) is also Windows' INVALID_HANDLE_VALUE.
//
// Also the small portable value types FD's socket and file calls use.
#ifndef POLL_SYSFD_H_
#define POLL_SYSFD_H_

// First of all includes: a clear #error below C++20.
// clang-format off
#include "poll/require_cxx20.h"
// clang-format on

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

struct sockaddr;

namespace gopoll {

using Sysfd = intptr_t;
inline constexpr Sysfd kInvalidSysfd = -1;

// A socket address of any family, as the OS lays it out (sockaddr_storage
// is 128 bytes on Linux and Windows).
struct SockAddr {
  alignas(8) unsigned char storage[128] = {};
  uint32_t len = 0;  // bytes of `storage` in use; 0 = no address

  // "127.0.0.1:80", "[::1]:80", ":80" (IPv4 any), "localhost:80"
  // (127.0.0.1) or "unix:/path" (poll/net.h); anything else is
  // InvalidArgument naming the address. Defined with poll/net.h (//poll).
  static absl::StatusOr<SockAddr> Parse(std::string_view addr);
  // The same forms back ("unix:@name" for an abstract unix address); "" for
  // no address, "family <n>" for another family.
  std::string ToString() const;

  const struct sockaddr* get() const {
    return reinterpret_cast<const struct sockaddr*>(storage);
  }
  struct sockaddr* get() {
    return reinterpret_cast<struct sockaddr*>(storage);
  }
  // Copies `n` bytes of `sa`; false (and nothing copied) if it does not fit.
  bool Set(const void* sa, size_t n) {
    if (n > sizeof(storage)) return false;
    std::memcpy(storage, sa, n);
    len = static_cast<uint32_t>(n);
    return true;
  }
};

// Result of one OS attempt inside FD::ExecIO: bytes done, or an OS error
// code (errno / Windows error).
struct IoResult {
  int64_t n = 0;
  int64_t err = 0;
};

// A connection returned by FD::Accept: a new non-blocking, close-on-exec
// descriptor the caller owns (wrap it in an FD) and the peer's address.
struct Accepted {
  Sysfd sysfd = kInvalidSysfd;
  SockAddr peer;
};

// Result of FD::ReadMsg: bytes of data and of control data received, the
// message flags (MSG_TRUNC, ...) and the sender (datagram sockets).
struct MsgResult {
  size_t n = 0;
  size_t oobn = 0;
  int flags = 0;
  SockAddr from;
};

// Result of FD::RecvFrom.
struct RecvFromResult {
  size_t n = 0;
  SockAddr from;
};

// Portable part of fstat.
struct FileInfo {
  int64_t size = 0;
  uint32_t mode = 0;  // st_mode on POSIX, file attributes on Windows
  bool is_regular = false;
  bool is_dir = false;
  int64_t mtime_unix_ns = 0;
};

}  // namespace gopoll

#endif  // POLL_SYSFD_H_
