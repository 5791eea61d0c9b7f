// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/fd_calls.h
//
// Internal (see API_STABILITY.md): every FD operation that can wait,
// described once, so that FD's blocking methods and the event loop's
// operations (poll/loop/async_fd.cc) are the same code. A call is its
// arguments (plus the progress a full write has made) and:
//   kName    the operation's name in its errors ("readv: i/o timeout");
//   kDir     the direction whose lock, deadline and waiter it uses;
//   kRing    whether a completion backend can keep it in flight and collect
//            it later (NonBlockingScope::resumable): the backend's *Impl
//            hook describes it (posix::AsyncCall, the IOCP OVERLAPPED) and
//            everything the kernel touches after submission, other than
//            the data buffers, lives in the backend's in-flight operation;
//   Check    the argument checks, made before anything else (socket calls
//            need kNet, addresses must not be empty, ...);
//   Run      the body, with the direction's lock held: the *Impl hooks,
//            which wait through ExecIO.
// FD's methods are Check, lock, Run (FdCalls::Blocking). A loop makes the
// same Check, takes the lock with TryRWLock and runs Run inside a
// NonBlockingScope, again each time the FD is ready, so Run is restartable:
// a full write continues at `done`, and on a completion backend the
// repeated Impl call collects the operation in flight.
//
// Calls that take a list of buffers are templates on the list's type: a
// span for FD's methods, a vector the loop's operation owns.
#ifndef POLL_INTERNAL_FD_CALLS_H_
#define POLL_INTERNAL_FD_CALLS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "poll/errors.h"
#include "poll/fd.h"

namespace gopoll::internal {

struct FdCalls {
  // io_uring describes these calls (poll/posix/fd_posix.cc); IOCP runs
  // only reads and writes of the file position natively.
#if defined(__linux__)
  static constexpr bool kRingOnLinux = true;
#else
  static constexpr bool kRingOnLinux = false;
#endif
  // Why a lock could not be taken (`r` is not kOk).
  static absl::Status LockError(FdLockResult r, FdKind kind);
  // The argument checks shared by several calls.
  static absl::Status CheckOffset(int64_t off, const char* op);
  static absl::Status CheckNet(FdKind kind, const char* op);
  static absl::Status CheckAddr(const SockAddr& a, const char* op);
  template <typename Bufs>
  static absl::Status CheckBufs(const Bufs& bufs, const char* op) {
    for (const auto& b : bufs) {
      absl::Status s = CheckBuffer(b.data(), b.size(), op);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  // A write call that returned 0 bytes for a non-empty buffer (Go's
  // io.ErrUnexpectedEOF in that place).
  static absl::Status ErrNoProgress(const char* op);
  // A read's 0 bytes: end of stream for stream kinds.
  static absl::StatusOr<size_t> Eof(FD& fd, absl::StatusOr<size_t> n) {
    if (n.ok() && *n == 0 && fd.zero_read_is_eof_) return ErrEof();
    return n;
  }

  // The blocking form of `c`: what FD's methods return.
  template <typename Call>
  static typename Call::Result Blocking(FD& fd, Call& c) {
    return Blocking(fd, c, [](const typename Call::Result&) {});
  }
  // The same, running `before_unlock(result)` while the call's lock is
  // still held (an event loop's operation on a helper thread keeps what an
  // abandoned read got there, in order: FD::KeepUnread).
  template <typename Call, typename BeforeUnlock>
  static typename Call::Result Blocking(FD& fd, Call& c,
                                        BeforeUnlock before_unlock) {
    if (absl::Status s = c.Check(fd); !s.ok()) return s;
    constexpr bool read = Call::kDir == Dir::kRead;
    const FdLockResult r = fd.mu_.RWLock(read);
    if (r != FdLockResult::kOk) {
      return WithOp(LockError(r, fd.kind_), Call::kName);
    }
    typename Call::Result res = WithOp(c.Run(fd), Call::kName);
    before_unlock(res);
    fd.UnlockRW(read);
    return res;
  }

  struct Read {
    using Result = absl::StatusOr<size_t>;
    static constexpr const char* kName = "read";
    static constexpr Dir kDir = Dir::kRead;
    static constexpr bool kRing = true;
    absl::Span<char> p;
    absl::Status Check(FD&) const {
      return CheckBuffer(p.data(), p.size(), kName);
    }
    Result Run(FD& fd) {
      if (p.empty()) return 0;
      return Eof(fd, fd.ReadUnreadFirst(p.subspan(0, kMaxRW)));
    }
  };

  struct Write {
    using Result = absl::StatusOr<size_t>;
    static constexpr const char* kName = "write";
    static constexpr Dir kDir = Dir::kWrite;
    static constexpr bool kRing = true;
    absl::Span<const char> p;
    size_t done = 0;
    absl::Status Check(FD&) const {
      return CheckBuffer(p.data(), p.size(), kName);
    }
    Result Run(FD& fd) {
      // At least one call, as Go makes: a 0-byte write is one (a datagram
      // or seqpacket socket sends an empty message).
      do {
        absl::Span<const char> chunk = p.subspan(done, kMaxRW);
        absl::StatusOr<size_t> n = fd.WriteImpl(chunk);
        if (!n.ok()) return n.status();
        done += *n;
        if (*n == 0 && !chunk.empty()) return ErrNoProgress(kName);
      } while (done < p.size());
      return done;
    }
  };

  struct Pread {
    using Result = absl::StatusOr<size_t>;
    static constexpr const char* kName = "pread";
    // Pread does not move the offset, but it may wait for its direction
    // like Read (IOCP), and one direction has one waiter.
    static constexpr Dir kDir = Dir::kRead;
    static constexpr bool kRing = kRingOnLinux;
    absl::Span<char> p;
    int64_t off = 0;
    absl::Status Check(FD&) const {
      absl::Status s = CheckBuffer(p.data(), p.size(), kName);
      return s.ok() ? CheckOffset(off, kName) : s;
    }
    Result Run(FD& fd) {
      if (p.empty()) return 0;
      return Eof(fd, fd.PreadImpl(p.subspan(0, kMaxRW), off));
    }
  };

  struct Pwrite {
    using Result = absl::StatusOr<size_t>;
    static constexpr const char* kName = "pwrite";
    static constexpr Dir kDir = Dir::kWrite;
    static constexpr bool kRing = kRingOnLinux;
    absl::Span<const char> p;
    int64_t off = 0;
    size_t done = 0;
    absl::Status Check(FD&) const {
      absl::Status s = CheckBuffer(p.data(), p.size(), kName);
      return s.ok() ? CheckOffset(off, kName) : s;
    }
    Result Run(FD& fd) {
      do {
        absl::Span<const char> chunk = p.subspan(done, kMaxRW);
        absl::StatusOr<size_t> n =
            fd.PwriteImpl(chunk, off + static_cast<int64_t>(done));
        if (!n.ok()) return n.status();
        done += *n;
        if (*n == 0 && !chunk.empty()) return ErrNoProgress(kName);
      } while (done < p.size());
      return done;
    }
  };

  template <typename Bufs>
  struct ReadV {
    using Result = absl::StatusOr<size_t>;
    static constexpr const char* kName = "readv";
    static constexpr Dir kDir = Dir::kRead;
    static constexpr bool kRing = false;
    Bufs bufs;
    absl::Status Check(FD&) const {
      if (bufs.size() > kMaxIov) return ErrTooManyBufs(bufs.size());
      return CheckBufs(bufs, kName);
    }
    Result Run(FD& fd) {
      size_t total = 0;
      for (const auto& b : bufs) total += b.size();
      if (total == 0) return 0;
      absl::Span<const absl::Span<char>> v(bufs.data(), bufs.size());
      return Eof(fd, ABSL_PREDICT_TRUE(fd.unread_.empty()) ? fd.ReadVImpl(v)
                                                           : fd.TakeUnread(v));
    }
  };
  static absl::Status ErrTooManyBufs(size_t n);

  template <typename Bufs>
  struct WriteV {
    using Result = absl::StatusOr<size_t>;
    static constexpr const char* kName = "writev";
    static constexpr Dir kDir = Dir::kWrite;
    static constexpr bool kRing = false;
    Bufs bufs;
    size_t done = 0;
    absl::Status Check(FD&) const { return CheckBufs(bufs, kName); }
    Result Run(FD& fd) {
      // The buffers not yet written, the first one shortened (Go's
      // consume), handed to the OS at most kMaxIov at a time.
      std::vector<absl::Span<const char>> rest;
      rest.reserve(bufs.size());
      size_t skip = done;
      for (const auto& b : bufs) {
        if (skip >= b.size()) {
          skip -= b.size();
          continue;
        }
        rest.push_back(absl::Span<const char>(b).subspan(skip));
        skip = 0;
      }
      size_t first = 0;
      while (first < rest.size()) {
        const size_t count = std::min(kMaxIov, rest.size() - first);
        absl::StatusOr<size_t> n =
            fd.WriteVImpl(absl::MakeConstSpan(rest).subspan(first, count));
        if (!n.ok()) return n.status();
        if (*n == 0) return ErrNoProgress(kName);
        done += *n;
        size_t left = *n;
        while (left > 0 && first < rest.size()) {
          if (left >= rest[first].size()) {
            left -= rest[first].size();
            ++first;
          } else {
            rest[first] = rest[first].subspan(left);
            left = 0;
          }
        }
      }
      return done;
    }
  };

  struct Accept {
    using Result = absl::StatusOr<Accepted>;
    static constexpr const char* kName = "accept";
    static constexpr Dir kDir = Dir::kRead;
    // Collected from the ring on Linux; Windows loops run accepts on
    // helper threads (FD::AsyncNative).
#if defined(__linux__)
    static constexpr bool kRing = true;
#else
    static constexpr bool kRing = false;
#endif
    absl::Status Check(FD& fd) const { return CheckNet(fd.kind_, kName); }
    Result Run(FD& fd) { return fd.AcceptImpl(); }
  };

  struct Connect {
    using Result = absl::Status;
    static constexpr const char* kName = "connect";
    static constexpr Dir kDir = Dir::kWrite;
    static constexpr bool kRing = false;
    SockAddr addr;
    absl::Status Check(FD& fd) const {
      absl::Status s = CheckNet(fd.kind_, kName);
      return s.ok() ? CheckAddr(addr, kName) : s;
    }
    Result Run(FD& fd) { return fd.ConnectImpl(addr); }
  };

  struct ReadMsg {
    using Result = absl::StatusOr<MsgResult>;
    static constexpr const char* kName = "recvmsg";
    static constexpr Dir kDir = Dir::kRead;
    static constexpr bool kRing = false;
    absl::Span<char> p;
    absl::Span<char> oob;
    int flags = 0;
    absl::Status Check(FD& fd) const {
      absl::Status s = CheckNet(fd.kind_, kName);
      if (s.ok()) s = CheckBuffer(p.data(), p.size(), kName);
      if (s.ok()) s = CheckBuffer(oob.data(), oob.size(), kName);
      return s;
    }
    Result Run(FD& fd);
  };

  struct WriteMsg {
    using Result = absl::StatusOr<size_t>;
    static constexpr const char* kName = "sendmsg";
    static constexpr Dir kDir = Dir::kWrite;
    static constexpr bool kRing = false;
    absl::Span<const char> p;
    absl::Span<const char> oob;
    // `to_addr` is used when `has_to`: the call owns its copy.
    SockAddr to_addr;
    bool has_to = false;
    int flags = 0;
    static WriteMsg Make(absl::Span<const char> p, absl::Span<const char> oob,
                         const SockAddr* to, int flags) {
      WriteMsg c{p, oob, {}, to != nullptr && to->len > 0, flags};
      if (c.has_to) c.to_addr = *to;
      return c;
    }
    absl::Status Check(FD& fd) const {
      absl::Status s = CheckNet(fd.kind_, kName);
      if (s.ok()) s = CheckBuffer(p.data(), p.size(), kName);
      if (s.ok()) s = CheckBuffer(oob.data(), oob.size(), kName);
      return s;
    }
    Result Run(FD& fd) {
      return fd.WriteMsgImpl(p.subspan(0, kMaxRW), oob,
                             has_to ? &to_addr : nullptr, flags);
    }
  };

  struct RecvFrom {
    using Result = absl::StatusOr<RecvFromResult>;
    static constexpr const char* kName = "recvfrom";
    static constexpr Dir kDir = Dir::kRead;
    static constexpr bool kRing = false;
    absl::Span<char> p;
    int flags = 0;
    absl::Status Check(FD& fd) const {
      absl::Status s = CheckNet(fd.kind_, kName);
      return s.ok() ? CheckBuffer(p.data(), p.size(), kName) : s;
    }
    Result Run(FD& fd);
  };

  struct SendTo {
    using Result = absl::StatusOr<size_t>;
    static constexpr const char* kName = "sendto";
    static constexpr Dir kDir = Dir::kWrite;
    static constexpr bool kRing = false;
    absl::Span<const char> p;
    SockAddr to;
    int flags = 0;
    absl::Status Check(FD& fd) const {
      absl::Status s = CheckNet(fd.kind_, kName);
      if (s.ok()) s = CheckBuffer(p.data(), p.size(), kName);
      return s.ok() ? CheckAddr(to, kName) : s;
    }
    Result Run(FD& fd) {
      return fd.SendToImpl(p.subspan(0, kMaxRW), to, flags);
    }
  };

  // Readiness only (Go's RawConn.Read/Write with a function that reports
  // "not done" until the FD is ready; Asio's async_wait): OK once `D` is
  // ready (or has an error or hang-up pending, which the caller's own call
  // then reports), or the deadline/Close error.
  template <Dir D>
  struct Wait {
    using Result = absl::Status;
    static constexpr const char* kName =
        D == Dir::kRead ? "waitread" : "waitwrite";
    static constexpr Dir kDir = D;
    static constexpr bool kRing = kRingOnLinux;
    absl::Status Check(FD&) const { return absl::OkStatus(); }
    Result Run(FD& fd) { return fd.WaitImpl(D); }
  };
};

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_FD_CALLS_H_
