// SPDX-License-Identifier: BSD-3-Clause
// poll/posix/async_call.h
//
// AsyncCall: one system call described instead of made, for completion
// backends on POSIX (the io_uring loop poller, poll/unix/uring_poller.h).
// FD's one-attempt hooks (poll/posix/fd_posix.cc) pass their attempt a
// context: null means "make the call now"; an AsyncCall means either
// "describe the call here" (collect == false: the backend submits it) or
// "the submitted call completed with `res`, finish it" (collect == true:
// e.g. accept copies the peer address the kernel wrote into the call).
// Everything the kernel reads or writes after submission, other than the
// caller's data buffer, lives in the AsyncCall itself.
#ifndef POLL_POSIX_ASYNC_CALL_H_
#define POLL_POSIX_ASYNC_CALL_H_

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "poll/sysfd.h"

namespace gopoll::posix {

struct AsyncCall {
  enum class Op : uint8_t { kNone, kRead, kWrite, kSend, kAccept, kPoll };
  Op op = Op::kNone;
  bool collect = false;
  int fd = -1;
  void* buf = nullptr;
  size_t len = 0;
  int flags = 0;  // send: MSG_*; accept: SOCK_*; poll: POLLIN/POLLOUT
  // read/write: the offset (pread/pwrite); -1: the file position.
  int64_t off = -1;
  // Run by the kernel's workers, never inline in the submitting call (a
  // regular file: a read of a slow file system, FUSE or NFS, would block
  // the loop thread inside io_uring_enter).
  bool never_inline = false;
  // accept: the peer's address, written by the kernel.
  SockAddr addr;
  socklen_t addrlen = 0;
  // The completion's result: >= 0 success, -errno failure.
  int64_t res = 0;
};

// The attempt's answer for a described (not collected) call.
inline IoResult Describe(void* ctx, AsyncCall::Op op, void* buf, size_t len,
                         int flags = 0, int64_t off = -1) {
  auto* c = static_cast<AsyncCall*>(ctx);
  if (c->collect) {
    return c->res < 0 ? IoResult{0, -c->res} : IoResult{c->res, 0};
  }
  c->op = op;
  c->buf = buf;
  c->len = len;
  c->flags = flags;
  c->off = off;
  return IoResult{0, 0};
}

}  // namespace gopoll::posix

#endif  // POLL_POSIX_ASYNC_CALL_H_
