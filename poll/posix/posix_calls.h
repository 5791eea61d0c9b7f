// SPDX-License-Identifier: BSD-3-Clause
// poll/posix/posix_calls.h
//
// Thin POSIX helpers shared by the backends that run on POSIX systems (epoll
// in poll/unix, and plan9_stub when built on Linux): each retries EINTR
// where that is safe and turns failures into gopoll::ErrnoError statuses.
#ifndef POLL_POSIX_POSIX_CALLS_H_
#define POLL_POSIX_POSIX_CALLS_H_

#include <errno.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "poll/errors.h"
#include "poll/sysfd.h"

namespace gopoll::posix {

// A syscall's return value as an IoResult (errno captured on -1).
inline IoResult Result(ssize_t r) {
  if (r < 0) return {0, errno};
  return {r, 0};
}

// One call on an FD that cannot wait (a regular file or directory, or an
// FD Init'ed with pollable = false): a plain blocking call, retried when an
// unrelated signal interrupted it. A template, so the call inlines on the
// hot path of file reads.
template <typename Attempt>
absl::StatusOr<size_t> RunUnpollable(const char* syscall, Attempt&& attempt) {
  for (;;) {
    IoResult r = attempt(nullptr);
    if (r.err == 0) return static_cast<size_t>(r.n);
    if (r.err != EINTR) return ErrnoError(syscall, static_cast<int>(r.err));
  }
}

template <typename Span>
std::vector<iovec> ToIovecs(absl::Span<const Span> bufs) {
  std::vector<iovec> iov;
  iov.reserve(bufs.size());
  for (const auto& b : bufs) {
    iov.push_back({const_cast<char*>(b.data()), b.size()});
  }
  return iov;
}

// Checks that `fd` is open and, for sockets, whether a 0-byte read means
// EOF (everything but SOCK_DGRAM/SOCK_RAW). kNet on a non-socket fails.
// Kinds other than kNet also make sure SIGPIPE cannot kill the process
// (KeepSigpipeFromKilling).
absl::Status InitKind(Sysfd fd, FdKind kind, bool* zero_read_is_eof);

// SIGPIPE policy. Writes of kNet FDs pass MSG_NOSIGNAL and never raise it.
// A write to a pipe whose reader is gone (or to a socket wrapped with
// another kind) raises SIGPIPE, whose default action kills the process: so
// the first FD of such a kind installs a handler that does nothing, once
// per process and only while SIGPIPE still has its default action (Go's
// runtime does the same); the write then fails with EPIPE ("write: broken
// pipe"), on every descriptor (unlike Go, also on stdout and stderr). A
// disposition the application chose (SIG_IGN or its own handler) is left
// alone. Programs started with exec get the default action back (a handler,
// unlike SIG_IGN, is reset by exec).
void KeepSigpipeFromKilling();
// A datagram, seqpacket or raw socket (reads return whole messages).
bool IsMessageSocket(Sysfd fd, FdKind kind);
absl::Status SetNonblock(Sysfd fd, bool nonblocking);
absl::Status Close(Sysfd fd);
absl::Status Shutdown(Sysfd fd, int how);
absl::Status Fsync(Sysfd fd);
absl::StatusOr<int64_t> Seek(Sysfd fd, int64_t offset, int whence);
absl::StatusOr<FileInfo> Fstat(Sysfd fd);
absl::StatusOr<Sysfd> Dup(Sysfd fd);

}  // namespace gopoll::posix

#endif  // POLL_POSIX_POSIX_CALLS_H_
