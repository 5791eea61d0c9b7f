// SPDX-License-Identifier: BSD-3-Clause
// The POSIX system calls of FD that are the same for every backend running
// on POSIX (epoll in poll/unix, plan9_stub): each makes one attempt through
// the backend's ExecIO, which decides how to wait (epoll readiness, or a
// blocking call interrupted by deadlines and Close).
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <vector>

#include "poll/fd.h"
#include "poll/internal/fd_access.h"
#include "poll/posix/async_call.h"
#include "poll/posix/posix_calls.h"

namespace gopoll {
namespace {

// FD::ExecIO, with the attempt inlined for FDs that cannot wait (regular
// files and directories, Init(kind, false)): their calls are plain blocking
// calls with nothing to arm or check, and every call level less counts on a
// file read (the layers cost ~50 ns of a ~1.5 µs pread here; after each
// system call the code runs with cold predictors).
template <typename Attempt>
absl::StatusOr<size_t> Exec(FD& fd, internal::Dir d, const char* syscall,
                            Attempt&& attempt) {
  if (!internal::FdAccess::poll_desc(fd).pollable())
    return posix::RunUnpollable(syscall, attempt);
  return internal::FdAccess::ExecIO(fd, d, syscall, attempt);
}

}  // namespace

// A PollDesc opened without a poller marks the interruptible-call strategy
// (poll/posix/interruptible.h).
WaitStrategy FD::wait_strategy() const {
  if (!pd_.pollable()) return WaitStrategy::kAuto;
  return pd_.poller() != nullptr ? WaitStrategy::kPoller
                                 : WaitStrategy::kInterruptibleCall;
}

absl::StatusOr<size_t> FD::ReadImpl(absl::Span<char> p) {
  return Exec(*this, internal::Dir::kRead, "read", [&](void* ctx) {
    if (ctx != nullptr) {  // a completion backend (posix/async_call.h)
      return posix::Describe(ctx, posix::AsyncCall::Op::kRead, p.data(),
                             p.size());
    }
    return posix::Result(::read(sysfd_, p.data(), p.size()));
  });
}

// Sockets are written with MSG_NOSIGNAL: a write to a connection the peer
// closed fails with EPIPE instead of raising SIGPIPE (posix_calls.h).
absl::StatusOr<size_t> FD::WriteImpl(absl::Span<const char> p) {
  if (kind_ == FdKind::kNet) {
    return Exec(*this, internal::Dir::kWrite, "write", [&](void* ctx) {
      if (ctx != nullptr) {
        return posix::Describe(ctx, posix::AsyncCall::Op::kSend,
                               const_cast<char*>(p.data()), p.size(),
                               MSG_NOSIGNAL);
      }
      return posix::Result(::send(sysfd_, p.data(), p.size(), MSG_NOSIGNAL));
    });
  }
  return Exec(*this, internal::Dir::kWrite, "write", [&](void* ctx) {
    if (ctx != nullptr) {
      return posix::Describe(ctx, posix::AsyncCall::Op::kWrite,
                             const_cast<char*>(p.data()), p.size());
    }
    return posix::Result(::write(sysfd_, p.data(), p.size()));
  });
}

absl::StatusOr<size_t> FD::PreadImpl(absl::Span<char> p, int64_t off) {
  return Exec(*this, internal::Dir::kRead, "pread", [&](void* ctx) {
    if (ctx != nullptr) {
      // The ring ignores the offset of a stream (pipe, socket) and would
      // consume its bytes; pread(2) refuses it.
      if (kind_ == FdKind::kPipe || kind_ == FdKind::kNet) {
        return IoResult{0, ESPIPE};
      }
      return posix::Describe(ctx, posix::AsyncCall::Op::kRead, p.data(),
                             p.size(), 0, off);
    }
    return posix::Result(::pread(sysfd_, p.data(), p.size(), off));
  });
}

absl::StatusOr<size_t> FD::PwriteImpl(absl::Span<const char> p, int64_t off) {
  return Exec(*this, internal::Dir::kWrite, "pwrite", [&](void* ctx) {
    if (ctx != nullptr) {
      if (kind_ == FdKind::kPipe || kind_ == FdKind::kNet) {
        return IoResult{0, ESPIPE};  // as pwrite(2) (see PreadImpl)
      }
      return posix::Describe(ctx, posix::AsyncCall::Op::kWrite,
                             const_cast<char*>(p.data()), p.size(), 0, off);
    }
    return posix::Result(::pwrite(sysfd_, p.data(), p.size(), off));
  });
}

absl::StatusOr<size_t> FD::ReadVImpl(absl::Span<const absl::Span<char>> bufs) {
  std::vector<iovec> iov = posix::ToIovecs(bufs);
  return Exec(*this, internal::Dir::kRead, "readv", [&](void*) {
    return posix::Result(
        ::readv(sysfd_, iov.data(), static_cast<int>(iov.size())));
  });
}

absl::StatusOr<size_t> FD::WriteVImpl(
    absl::Span<const absl::Span<const char>> bufs) {
  std::vector<iovec> iov = posix::ToIovecs(bufs);
  if (kind_ == FdKind::kNet) {
    return Exec(*this, internal::Dir::kWrite, "writev", [&](void*) {
      msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = iov.size();
      return posix::Result(::sendmsg(sysfd_, &msg, MSG_NOSIGNAL));
    });
  }
  return Exec(*this, internal::Dir::kWrite, "writev", [&](void*) {
    return posix::Result(
        ::writev(sysfd_, iov.data(), static_cast<int>(iov.size())));
  });
}

absl::StatusOr<Accepted> FD::AcceptImpl() {
  Accepted a;
  absl::StatusOr<size_t> fd =
      Exec(*this, internal::Dir::kRead, "accept4", [&](void* ctx) {
        if (ctx != nullptr) {  // a completion backend (posix/async_call.h)
          auto* c = static_cast<posix::AsyncCall*>(ctx);
          if (c->collect) {
            a.peer.Set(c->addr.storage, c->res < 0 ? 0 : c->addrlen);
          } else {
            c->addrlen = sizeof(c->addr.storage);
          }
          return posix::Describe(ctx, posix::AsyncCall::Op::kAccept, nullptr, 0,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
        }
        for (;;) {
          socklen_t len = sizeof(a.peer.storage);
          int nfd = ::accept4(sysfd_, a.peer.get(), &len,
                              SOCK_NONBLOCK | SOCK_CLOEXEC);
          // The connection went away before we took it: take the next one.
          if (nfd < 0 && errno == ECONNABORTED) continue;
          a.peer.len = nfd < 0 ? 0 : len;
          return posix::Result(nfd);
        }
      });
  if (!fd.ok()) return fd.status();
  a.sysfd = static_cast<Sysfd>(*fd);
  return a;
}

absl::StatusOr<MsgResult> FD::ReadMsgImpl(absl::Span<char> p,
                                          absl::Span<char> oob, int flags) {
  MsgResult m;
  iovec iov{p.data(), p.size()};
  msghdr h{};
  h.msg_name = m.from.get();
  h.msg_namelen = sizeof(m.from.storage);
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = oob.empty() ? nullptr : oob.data();
  h.msg_controllen = oob.size();
  absl::StatusOr<size_t> n =
      Exec(*this, internal::Dir::kRead, "recvmsg", [&](void*) {
        return posix::Result(::recvmsg(sysfd_, &h, flags | MSG_CMSG_CLOEXEC));
      });
  if (!n.ok()) return n.status();
  // A message with control data but no bytes (SOCK_SEQPACKET allows it)
  // is not the end of the stream: reporting EOF would drop the control
  // data, and with SCM_RIGHTS leak the descriptors it installed.
  if (*n == 0 && zero_read_is_eof_ && !p.empty() && h.msg_controllen == 0) {
    return ErrEof();
  }
  m.n = *n;
  m.oobn = h.msg_controllen;
  m.flags = h.msg_flags;
  m.from.len = h.msg_namelen;
  return m;
}

absl::StatusOr<size_t> FD::WriteMsgImpl(absl::Span<const char> p,
                                        absl::Span<const char> oob,
                                        const SockAddr* to, int flags) {
  iovec iov{const_cast<char*>(p.data()), p.size()};
  msghdr h{};
  if (to != nullptr && to->len > 0) {
    h.msg_name = const_cast<SockAddr*>(to)->get();
    h.msg_namelen = to->len;
  }
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = oob.empty() ? nullptr : const_cast<char*>(oob.data());
  h.msg_controllen = oob.size();
  return Exec(*this, internal::Dir::kWrite, "sendmsg", [&](void*) {
    return posix::Result(::sendmsg(sysfd_, &h, flags | MSG_NOSIGNAL));
  });
}

absl::StatusOr<RecvFromResult> FD::RecvFromImpl(absl::Span<char> p, int flags) {
  RecvFromResult r;
  socklen_t len = 0;
  absl::StatusOr<size_t> n =
      Exec(*this, internal::Dir::kRead, "recvfrom", [&](void*) {
        len = sizeof(r.from.storage);
        return posix::Result(
            ::recvfrom(sysfd_, p.data(), p.size(), flags, r.from.get(), &len));
      });
  if (!n.ok()) return n.status();
  if (*n == 0 && zero_read_is_eof_ && !p.empty()) return ErrEof();
  r.n = *n;
  r.from.len = len;
  return r;
}

absl::StatusOr<size_t> FD::SendToImpl(absl::Span<const char> p,
                                      const SockAddr& to, int flags) {
  return Exec(*this, internal::Dir::kWrite, "sendto", [&](void*) {
    return posix::Result(::sendto(sysfd_, p.data(), p.size(),
                                  flags | MSG_NOSIGNAL, to.get(), to.len));
  });
}

// poll(2) without a timeout is the one attempt: "not ready" is EAGAIN, so
// ExecIO waits for readiness (or a deadline or Close) and asks again.
// Errors and hang-ups count as ready: the caller's own call reports them.
absl::Status FD::WaitImpl(internal::Dir d) {
  const short events = d == internal::Dir::kRead ? POLLIN : POLLOUT;
  const char* name = d == internal::Dir::kRead ? "waitread" : "waitwrite";
  if (!pd_.pollable()) {
    // Nothing to arm: poll(2) itself waits (files are always ready).
    pollfd p{static_cast<int>(sysfd_), events, 0};
    int r;
    do {
      r = ::poll(&p, 1, -1);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? ErrnoError(name, errno) : absl::OkStatus();
  }
  return Exec(*this, d, name,
              [&](void* ctx) {
                if (ctx != nullptr) {  // IORING_OP_POLL_ADD: ends when ready
                  return posix::Describe(ctx, posix::AsyncCall::Op::kPoll,
                                         nullptr, 0, events);
                }
                pollfd p{static_cast<int>(sysfd_), events, 0};
                int r = ::poll(&p, 1, 0);
                if (r < 0) return IoResult{0, errno};
                return r == 0 ? IoResult{0, EAGAIN} : IoResult{0, 0};
              })
      .status();
}

absl::Status FD::CloseSysfd() { return posix::Close(sysfd_); }

// No lazy binding on POSIX (Go's fd_unix/fd_plan9 initIO), and Close needs
// nothing beyond PollDesc::Evict: both are no-ops here.
absl::Status FD::initIO() { return absl::OkStatus(); }
void FD::EvictBackend() {}

absl::Status FD::SetBlockingImpl() {
  absl::Status s = posix::SetNonblock(sysfd_, false);
  if (s.ok()) blocking_.store(true);
  return s;
}

absl::Status FD::ShutdownImpl(int how) { return posix::Shutdown(sysfd_, how); }
absl::Status FD::FsyncImpl() { return posix::Fsync(sysfd_); }
absl::StatusOr<int64_t> FD::SeekImpl(int64_t offset, int whence) {
  return posix::Seek(sysfd_, offset, whence);
}
absl::StatusOr<FileInfo> FD::FstatImpl() { return posix::Fstat(sysfd_); }
absl::StatusOr<Sysfd> FD::DupImpl() { return posix::Dup(sysfd_); }

}  // namespace gopoll
