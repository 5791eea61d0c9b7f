// SPDX-License-Identifier: BSD-3-Clause
// poll/fd.h
//
// (The namespace is `gopoll`, not `poll`: a namespace named `poll` would
// collide with the poll(2) function of <poll.h>.)
//
// gopoll::FD wraps one OS handle with Go's internal/poll semantics:
//
//   - Every operation takes a reference on the FD's fdMutex (reads also the
//     read lock, writes the write lock): reads are serialised among
//     themselves, writes among themselves, reads never wait for writes.
//   - Close() marks the FD closed, wakes every blocked operation (they fail
//     with IsClosing), makes new operations fail at once, and releases the OS
//     handle only when the last operation has returned, so a handle number is
//     never reused while an operation might still use it. For pollable FDs
//     Close() returns only after the handle is released, except on the
//     thread of the FD's event loop (poll/loop/loop.h), and when an event
//     loop's operation on it is pending while no thread runs that loop
//     (inside Run, RunUntilDone or a RunOnce call): the loop ends its
//     operations only when it runs, so Close does not wait for them then,
//     and the handle is released by the loop's next run (or its
//     destruction).
//   - Read/write deadlines (SetDeadline & co.) bound blocked and future
//     operations: an expired deadline fails them with IsDeadlineExceeded.
//   - Pollable FDs wait in one of two ways (WaitStrategy below): on Linux by
//     default the thread makes the one blocking system call and a deadline
//     or Close interrupts it; with kPoller (and always in event loops, and
//     on Windows with IOCP) the handle is non-blocking or overlapped and the
//     wait goes through the poller. FDs that cannot wait (regular files on
//     Linux) do plain blocking I/O and refuse deadlines with IsNoDeadline.
//
// Errors are absl::Status; see poll/errors.h for the predicates. Sizes are
// capped per call at 1 GiB like Go (reads may return fewer bytes; Write
// loops until everything is written).
//
// Thread-safety: all methods may be called from any thread concurrently,
// including Close(). The FD object itself must outlive every call on it.
//
// Example:
//   gopoll::FD fd(sock);                       // takes ownership
//   if (auto s = fd.Init(gopoll::FdKind::kNet, true); !s.ok()) ...
//   fd.SetReadDeadline(absl::Now() + absl::Seconds(5));
//   char buf[512];
//   absl::StatusOr<size_t> n = fd.Read(absl::MakeSpan(buf));
//   if (gopoll::IsDeadlineExceeded(n.status())) ...   // 5 s passed
//   // another thread: fd.Close();  -> the Read fails with IsClosing
#ifndef POLL_FD_H_
#define POLL_FD_H_

// First of all includes: a clear #error below C++20.
// clang-format off
#include "poll/require_cxx20.h"
// clang-format on

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "poll/backend_state.h"
#include "poll/errors.h"
#include "poll/internal/fd_mutex.h"
#include "poll/internal/poll_desc.h"
#include "poll/internal/unread_bytes.h"
#include "poll/sysfd.h"

namespace gopoll {
namespace internal {
class FdAccess;
struct FdCalls;
}  // namespace internal

// Largest byte count handed to one OS call (Go's maxRW).
inline constexpr size_t kMaxRW = size_t{1} << 30;
// Most buffers ReadV/WriteV accept per call (Linux IOV_MAX). WriteV splits
// larger lists itself; ReadV refuses them.
inline constexpr size_t kMaxIov = 1024;

// How a pollable FD waits. Semantics (deadlines, Close, errors) are the
// same under both; they differ in cost and in the handle's mode.
enum class WaitStrategy : uint8_t {
  // The backend's default for blocking callers: kInterruptibleCall on Linux
  // and plan9_stub, kPoller (IOCP) on Windows.
  kAuto,
  // POSIX: the descriptor stays in blocking mode; the calling thread makes
  // the one blocking system call and a deadline or Close interrupts it with
  // a signal (SIGURG; poll/posix/interruptible.h). Fewest system calls and
  // wake-ups per operation. Not on Windows (Unimplemented).
  kInterruptibleCall,
  // The handle is non-blocking (epoll) or overlapped (IOCP) and waits go
  // through the OS poller: a would-block call waits for readiness and
  // retries. Event loops (Loop::Adopt) always use it. Not on plan9_stub
  // (Unimplemented: it has no OS poller).
  kPoller,
};
// O_NONBLOCK belongs to the open file description, which dup'ed descriptors
// and other processes share. An interruptible-call FD whose description is
// made non-blocking by someone else still works (EAGAIN: it waits for
// readiness); a kPoller FD whose description is made blocking has calls
// that block without a deadline. Do not give two FDs on one description
// different strategies.

class FD {
 public:
  // Takes ownership of `sysfd`. Call Init before any operation.
  explicit FD(Sysfd sysfd);
  // Closes the handle if Close() was not called. Waits until no operation
  // uses the handle any more.
  ~FD();
  FD(const FD&) = delete;
  FD& operator=(const FD&) = delete;

  // Records the handle's kind and whether to use the poller. On epoll a
  // pollable FD is registered and switched to non-blocking mode; if epoll
  // refuses it (regular files) it stays blocking and becomes non-pollable.
  // On Windows only sockets (kNet) are bound to the IOCP here; other handles
  // are bound lazily by the first operation or deadline call.
  // Init is all or nothing: a failed Init leaves the FD unchanged (it may be
  // retried); after a successful one, every further Init fails with
  // FailedPrecondition, and after Close with IsClosing.
  absl::Status Init(FdKind kind, bool pollable);
  // As Init(kind, pollable) with an explicit waiting strategy for a pollable
  // FD (ignored when `pollable` is false). A strategy the backend lacks is
  // Unimplemented; the FD is then left uninitialised (Init may be retried).
  absl::Status Init(FdKind kind, bool pollable, WaitStrategy strategy);
  // As Init(kind, true), on the poller of an event loop instead of the
  // process-wide one (Loop::Adopt calls it; see poll/loop/loop.h). Backends
  // without a readiness poller ignore `loop_poller`.
  absl::Status Init(FdKind kind, internal::Poller* loop_poller);

  Sysfd sysfd() const { return sysfd_; }
  FdKind kind() const { return kind_; }
  // True when operations can wait (and deadlines work).
  bool pollable() const { return pd_.pollable(); }
  // How a pollable FD waits (kInterruptibleCall or kPoller); kAuto when the
  // FD is not pollable.
  WaitStrategy wait_strategy() const;
  // True when a 0-byte read means end of stream (all kinds but datagram
  // sockets).
  bool zero_read_is_eof() const { return zero_read_is_eof_; }

  absl::Status Close();

  // Reads up to p.size() bytes. A 0-byte request returns 0 at once; end of
  // stream is ErrEof for stream kinds. A short read is returned as is.
  absl::StatusOr<size_t> Read(absl::Span<char> p);
  // Byte arrays (string literals included) must be passed as spans or
  // string_views: a literal's array type would also write its trailing NUL.
  //   fd.Write(std::string_view("hello"));   fd.Write(absl::MakeConstSpan(buf,
  //   n));
  template <size_t N>
  absl::StatusOr<size_t> Write(const char (&)[N], size_t* = nullptr) = delete;
  template <size_t N>
  absl::StatusOr<size_t> Pwrite(const char (&)[N], int64_t,
                                size_t* = nullptr) = delete;
  template <size_t N>
  absl::StatusOr<size_t> WriteMsg(const char (&)[N], absl::Span<const char>,
                                  const SockAddr*, int) = delete;
  template <size_t N>
  absl::StatusOr<size_t> SendTo(const char (&)[N], const SockAddr&,
                                int) = delete;

  // Writes all of p (looping over short writes) or fails. `written`, if
  // given, receives the bytes written even when the call fails part way.
  absl::StatusOr<size_t> Write(absl::Span<const char> p,
                               size_t* written = nullptr);
  // Reads and writes at an offset; the FD's own offset does not move.
  absl::StatusOr<size_t> Pread(absl::Span<char> p, int64_t off);
  absl::StatusOr<size_t> Pwrite(absl::Span<const char> p, int64_t off,
                                size_t* written = nullptr);
  // Scatter read (at most kMaxIov buffers) and gather write (any number,
  // written completely, split in chunks of kMaxIov).
  absl::StatusOr<size_t> ReadV(absl::Span<const absl::Span<char>> bufs);
  absl::StatusOr<size_t> WriteV(absl::Span<const absl::Span<const char>> bufs,
                                size_t* written = nullptr);

  // Sockets (kNet only; other kinds get InvalidArgument).
  absl::StatusOr<Accepted> Accept();
  // Starts a connection to `addr` and waits (honouring the write deadline
  // and Close) until it is established or failed.
  absl::Status Connect(const SockAddr& addr);
  // recvmsg: data, control data (oob) and the sender's address. On stream
  // and seqpacket sockets 0 bytes is EOF, except for a message that brought
  // control data (e.g. descriptors with SCM_RIGHTS): that is returned.
  absl::StatusOr<MsgResult> ReadMsg(absl::Span<char> p, absl::Span<char> oob,
                                    int flags);
  // Returns bytes of data written; `to` may be null on connected sockets.
  absl::StatusOr<size_t> WriteMsg(absl::Span<const char> p,
                                  absl::Span<const char> oob,
                                  const SockAddr* to, int flags);
  absl::StatusOr<RecvFromResult> RecvFrom(absl::Span<char> p, int flags);
  absl::StatusOr<size_t> SendTo(absl::Span<const char> p, const SockAddr& to,
                                int flags);
  // how: 0 = read side, 1 = write side, 2 = both (SHUT_* / SD_*).
  absl::Status Shutdown(int how);

  // Files.
  absl::Status Fsync();
  // whence: 0 = from start, 1 = from current offset, 2 = from end.
  absl::StatusOr<int64_t> Seek(int64_t offset, int whence);
  absl::StatusOr<FileInfo> Fstat();
  // Puts the handle in blocking mode for good (e.g. before handing it to a
  // child process). Deadlines stop working; Close no longer waits.
  absl::Status SetBlocking();
  // A new handle to the same open file, owned by the caller.
  absl::StatusOr<Sysfd> Dup();

  // Raw access for embedding stacks (Go's RawConn). `f` runs with a
  // reference held (RawControl), or the read/write lock held and the FD's
  // poller: f returns true when done, false to wait for readiness and retry.
  // With WaitStrategy::kInterruptibleCall the descriptor is blocking, so
  // f's own calls may block; a deadline or Close interrupts them (they fail
  // with EINTR, which f should report and return true) and the Raw call
  // then returns OK: what f recorded is the result. A thread has one such
  // interrupt window: f must not itself call blocking operations of other
  // kInterruptibleCall FDs (they would close the window, and a deadline or
  // Close of this FD could then no longer interrupt f).
  absl::Status RawControl(absl::FunctionRef<void(Sysfd)> f);
  absl::Status RawRead(absl::FunctionRef<bool(Sysfd)> f);
  absl::Status RawWrite(absl::FunctionRef<bool(Sysfd)> f);

  // Deadlines. absl::InfiniteFuture() or absl::Time() clears one.
  absl::Status SetDeadline(absl::Time t);
  absl::Status SetReadDeadline(absl::Time t);
  absl::Status SetWriteDeadline(absl::Time t);

 private:
  friend class FdRef;
  friend class FdLock;
  // The event loop runs one attempt of an operation at a time through the
  // *Impl hooks (poll/loop/async_op.cc).
  friend class AsyncOp;
  friend class internal::FdAccess;
  // Each operation that can wait, described once for the blocking methods
  // and the event loop (poll/internal/fd_calls.h).
  friend struct internal::FdCalls;

  // --- Hooks of the backends and the event loop (internal; reached through
  // internal::FdAccess, poll/internal/fd_access.h) ---------------------------
  internal::PollDesc& poll_desc() { return pd_; }
  BackendState& backend() { return backend_; }

  // The one operation runner (Go's execIO / the fd_unix retry loops):
  // initIO(), check closing and the deadline of `d`, run `attempt`, and on
  // "would block" wait for `d` on the poller and retry. `ctx` is backend
  // data for the attempt (the OVERLAPPED on Windows, null on POSIX).
  absl::StatusOr<size_t> ExecIO(internal::Dir d, const char* syscall,
                                absl::FunctionRef<IoResult(void* ctx)> attempt);

  // Event loops (poll/loop/async_op.cc): whether an operation of this FD
  // can run on `loop_poller` without blocking the loop thread (`resumable`:
  // the caller can collect an in-flight completion, see NonBlockingScope);
  // otherwise the loop runs the blocking call on a helper thread.
  bool AsyncNative(internal::Poller* loop_poller, bool resumable);
  // Asks the OS to cancel an in-flight operation (NonBlockingScope's
  // backend_op); its completion still comes.
  void CancelAsync(void* backend_op);
  // Frees an in-flight operation whose completion came, without looking at
  // its result (its consumer is gone).
  void FreeAsync(void* backend_op);
  // A read in flight (backend_op, completed) lost its consumer: keeps the
  // bytes it read into `buf` for the next read (poll/internal/unread_bytes.h).
  // With the read lock held.
  void KeepAbandonedRead(void* backend_op, absl::Span<const char> buf);
  // Keeps `buf` (bytes a read whose consumer is gone took from the OS) for
  // the next read; a message socket's as one message. Read lock held.
  void KeepUnread(absl::Span<const char> buf);
  // True if the FD's blocking calls are finished by its event loop's thread
  // (Windows: the completions of a handle bound to a loop's port, its
  // cancellations included, come only through the loop): Close then waits
  // for them only while the loop runs, as for the loop's own operations.
  bool LoopRunsItsCalls() const;
  // True if a loop runs this FD's reads and writes one at a time (a regular
  // file on an io_uring loop: both move the file position, which the ring
  // does not lock).
  bool OneLoopOpAtATime() const;
  // ReadImpl, after the bytes kept by KeepAbandonedRead (read lock held).
  absl::StatusOr<size_t> ReadUnreadFirst(absl::Span<char> p);
  // The kept bytes into `bufs` (unread_ is not empty), after the checks a
  // read of the OS makes first: closing, an expired deadline.
  absl::StatusOr<size_t> TakeUnread(absl::Span<const absl::Span<char>> bufs,
                                    bool* truncated = nullptr);

  // Backend hooks (poll/<backend>/fd_*.cc). The public methods above lock,
  // validate arguments and apply the shared rules (EOF, write loops,
  // chunking); the *Impl hooks make one attempt at the OS operation, through
  // ExecIO where it can block.
  // The Init overloads: checks the handle, records the kind, then the
  // backend's InitBackend.
  absl::Status InitChecked(FdKind kind, bool pollable, WaitStrategy strategy,
                           internal::Poller* loop_poller);
  absl::Status InitBackend(bool pollable, WaitStrategy strategy,
                           internal::Poller* loop_poller);
  absl::Status initIO();
  void EvictBackend();
  absl::Status CloseSysfd();
  absl::StatusOr<size_t> ReadImpl(absl::Span<char> p);
  absl::StatusOr<size_t> WriteImpl(absl::Span<const char> p);
  absl::StatusOr<size_t> PreadImpl(absl::Span<char> p, int64_t off);
  absl::StatusOr<size_t> PwriteImpl(absl::Span<const char> p, int64_t off);
  absl::StatusOr<size_t> ReadVImpl(absl::Span<const absl::Span<char>> bufs);
  absl::StatusOr<size_t> WriteVImpl(
      absl::Span<const absl::Span<const char>> bufs);
  absl::StatusOr<Accepted> AcceptImpl();
  absl::Status ConnectImpl(const SockAddr& addr);
  absl::StatusOr<MsgResult> ReadMsgImpl(absl::Span<char> p,
                                        absl::Span<char> oob, int flags);
  absl::StatusOr<size_t> WriteMsgImpl(absl::Span<const char> p,
                                      absl::Span<const char> oob,
                                      const SockAddr* to, int flags);
  absl::StatusOr<RecvFromResult> RecvFromImpl(absl::Span<char> p, int flags);
  absl::StatusOr<size_t> SendToImpl(absl::Span<const char> p,
                                    const SockAddr& to, int flags);
  absl::Status ShutdownImpl(int how);
  absl::Status FsyncImpl();
  absl::StatusOr<int64_t> SeekImpl(int64_t offset, int whence);
  absl::StatusOr<FileInfo> FstatImpl();
  absl::Status SetBlockingImpl();
  absl::StatusOr<Sysfd> DupImpl();
  // Waits until direction `d` is ready (or has an error or hang-up to
  // report); Unimplemented where the backend cannot wait for it.
  absl::Status WaitImpl(internal::Dir d);
  // Runs f until it returns true, waiting for `d` in between.
  absl::Status RawIOImpl(internal::Dir d, absl::FunctionRef<bool(Sysfd)> f);

  // Releases a reference; the last one after Close destroys the handle.
  void Unref();
  void UnlockRW(bool read);
  void Destroy();
  absl::Status SetDeadlineImpl(absl::Time t, bool read, bool write);

  Sysfd sysfd_;
  FdKind kind_ = FdKind::kFile;
  bool zero_read_is_eof_ = true;
  bool initialized_ = false;  // an Init succeeded (a second one fails)
  // The handle is in blocking mode: Close does not wait for operations.
  std::atomic<bool> blocking_{true};
  // Direction locks held by event loop operations (AsyncOp counts them
  // before it takes one): only a run of their loop ends those, so Close
  // waits for them only while the loop runs.
  std::atomic<int> loop_locks_{0};
  internal::FdMutex mu_;
  internal::PollDesc pd_;
  [[no_unique_address]] BackendState backend_;  // empty on epoll
  absl::Status close_status_;
  absl::Notification destroyed_;
  internal::UnreadBytes unread_;  // under the read lock
};

}  // namespace gopoll

#endif  // POLL_FD_H_
