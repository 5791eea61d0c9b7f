// SPDX-License-Identifier: BSD-3-Clause
// poll/loop/async_fd.h
//
// AsyncFd: an FD attached to an event loop (Loop::Adopt, or AsyncAccept),
// with callback and coroutine forms of its operations. It is a cheap,
// copyable handle: copies share one FD, and a pending operation keeps the FD
// and the loop alive, so callbacks may safely drop the last copy.
//
// Semantics are the FD's (poll/fd.h): the same fdMutex, deadlines and
// Close. Every operation completes exactly once, on the loop thread: with
// its result, IsEof, IsClosing (the FD was closed, also while pending),
// IsDeadlineExceeded, IsBusy (another operation of the same direction is
// pending on this FD), or CancelledError (the loop was destroyed first).
//
//   Callback form: the callback runs on the loop thread, never inside the
//   call that started the operation. Buffers must stay valid until then.
//     conn.AsyncRead(absl::MakeSpan(buf), [](absl::StatusOr<size_t> n) {...});
//
//   Coroutine form (inside a gopoll::Task run by the loop):
//     absl::StatusOr<size_t> n = co_await conn.Read(absl::MakeSpan(buf));
//   A coroutine destroyed while suspended in such a co_await abandons the
//   operation: it is never resumed, and the FD's lock is released.
//
// Writes write the whole buffer (or fail). Every operation tries its system
// call first and waits only if that would block. Operations may be started
// from any thread; coroutine forms only from a task on the loop thread
// (elsewhere they fail with FailedPrecondition). After the loop was
// destroyed every operation fails at once with CancelledError, delivered
// inside the call.
//
// Blocking FD calls (fd()) may be mixed with async ones on one FD from
// other threads; they wait for the loop thread to report readiness, so
// never make a blocking call that must wait from the loop thread itself.
#ifndef POLL_LOOP_ASYNC_FD_H_
#define POLL_LOOP_ASYNC_FD_H_

// First of all includes: a clear #error below C++20.
// clang-format off
#include "poll/require_cxx20.h"
// clang-format on

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/loop/async_op.h"
#include "poll/loop/loop_core.h"

namespace gopoll {

class AsyncFd;

namespace internal {
struct FdCalls;
}  // namespace internal

namespace internal_async {

// An AsyncOp with a result of type R, delivered to a callback or to a
// suspended coroutine.
template <typename R>
class OpBase : public AsyncOp {
 public:
  using AsyncOp::AsyncOp;

  void SetCallback(absl::AnyInvocable<void(R) &&> cb) { cb_ = std::move(cb); }
  void SetCoroutine(std::optional<R>* out, std::coroutine_handle<> h,
                    OpBase** self) {
    out_ = out;
    h_ = h;
    self_ = self;
  }
  // The result; an error names the operation ("read: i/o timeout"), like
  // the blocking FD's errors (errors.h), also when the operation finished
  // at once.
  // Only for a consumer that is still there (delivery, or an operation that
  // finished at once).
  R TakeResult() {
    BeforeDeliver();
    return WithOp(std::move(*result_), OpName());
  }

 protected:
  void Fail(absl::Status s) final { result_.emplace(std::move(s)); }
  void Deliver() final {
    result_.emplace(TakeResult());
    if (cb_) {
      std::move(cb_)(std::move(*result_));
      return;
    }
    out_->emplace(std::move(*result_));
    *self_ = nullptr;  // the awaiter must not touch this op any more
    h_.resume();
  }
  // Offloaded reads copy their data into the caller's buffer here, and
  // Accept its peer's address (TakeResult).
  virtual void BeforeDeliver() {}
  // The operation's name in its errors ("read", "write", ...).
  virtual const char* OpName() const = 0;

  std::optional<R> result_;

 private:
  absl::AnyInvocable<void(R) &&> cb_;
  std::optional<R>* out_ = nullptr;
  std::coroutine_handle<> h_;
  OpBase** self_ = nullptr;
};

}  // namespace internal_async

// What `co_await fd.Read(...)` and the other coroutine forms return.
template <typename R>
class [[nodiscard]] Awaitable {
 public:
  explicit Awaitable(internal_async::OpBase<R>* op) : op_(op) {}
  Awaitable(Awaitable&& o) noexcept
      : op_(std::exchange(o.op_, nullptr)), started_(o.started_) {}
  Awaitable& operator=(Awaitable&&) = delete;
  ~Awaitable() {
    if (op_ == nullptr) return;
    if (started_) {
      op_->Abandon();  // the coroutine is being destroyed while suspended
    } else {
      delete op_;
    }
  }

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    started_ = true;
    op_->SetCoroutine(&result_, h, &op_);
    if (op_->StartInline()) {
      result_.emplace(op_->TakeResult());
      delete op_;
      op_ = nullptr;
      return false;  // finished at once: no suspension
    }
    return true;
  }
  R await_resume() { return std::move(*result_); }

 private:
  internal_async::OpBase<R>* op_;
  bool started_ = false;
  std::optional<R> result_;
};

class AsyncFd {
 public:
  using SizeCallback = absl::AnyInvocable<void(absl::StatusOr<size_t>) &&>;
  using AcceptCallback = absl::AnyInvocable<void(absl::StatusOr<AsyncFd>) &&>;
  // Accept's callback with the connection's peer address too (as
  // FD::Accept's Accepted::peer; empty when the accept failed).
  using AcceptPeerCallback = absl::AnyInvocable<void(absl::StatusOr<AsyncFd>,
                                                     const SockAddr& peer) &&>;
  using StatusCallback = absl::AnyInvocable<void(absl::Status) &&>;
  using MsgCallback = absl::AnyInvocable<void(absl::StatusOr<MsgResult>) &&>;
  using RecvFromCallback =
      absl::AnyInvocable<void(absl::StatusOr<RecvFromResult>) &&>;

  // An empty handle (valid() is false); use Loop::Adopt.
  AsyncFd() = default;
  AsyncFd(const AsyncFd&) = default;
  AsyncFd(AsyncFd&&) noexcept = default;
  // Assignment drops the old FD before the old loop core: the FD
  // unregisters from the loop's poller, which the core owns.
  AsyncFd& operator=(const AsyncFd& o) {
    if (this != &o) {
      fd_ = o.fd_;
      core_ = o.core_;
    }
    return *this;
  }
  AsyncFd& operator=(AsyncFd&& o) noexcept {
    if (this != &o) {
      fd_ = std::move(o.fd_);
      core_ = std::move(o.core_);
    }
    return *this;
  }
  // Wraps `sysfd` (taking ownership) in an FD initialised on `core`'s poller.
  static absl::StatusOr<AsyncFd> Wrap(std::shared_ptr<LoopCore> core,
                                      Sysfd sysfd, FdKind kind);

  bool valid() const { return fd_ != nullptr; }
  // The FD itself: deadlines, Close, and blocking calls from other threads.
  FD& fd() const { return *fd_; }

  // Each operation is the FD method of the same name (poll/fd.h), with
  // its argument checks, errors and semantics: callback form Async<Name>,
  // coroutine form <Name> returning Awaitable<R>, R being the FD method's
  // result. Writes write everything (or fail); the result reports how much.
  void AsyncRead(absl::Span<char> buf, SizeCallback cb) const;
  void AsyncWrite(absl::Span<const char> buf, SizeCallback cb) const;
  void AsyncAccept(AcceptCallback cb) const;
  // The same, also handing over the peer's address (no getpeername).
  void AsyncAccept(AcceptPeerCallback cb) const;
  // Connects the socket (created by the caller, e.g. with ::socket) to addr.
  void AsyncConnect(const SockAddr& addr, StatusCallback cb) const;
  // Scatter read (at most kMaxIov buffers: more is InvalidArgument) and
  // gather write (any number). The list of spans is copied; the memory
  // they point to must stay valid until the callback runs.
  void AsyncReadV(absl::Span<const absl::Span<char>> bufs,
                  SizeCallback cb) const;
  void AsyncWriteV(absl::Span<const absl::Span<const char>> bufs,
                   SizeCallback cb) const;
  // At an offset; the FD's own offset does not move.
  void AsyncPread(absl::Span<char> buf, int64_t off, SizeCallback cb) const;
  void AsyncPwrite(absl::Span<const char> buf, int64_t off,
                   SizeCallback cb) const;
  // Sockets: recvmsg/sendmsg with control data (e.g. SCM_RIGHTS), and
  // recvfrom/sendto. `to` (may be null on a connected socket) is copied.
  void AsyncReadMsg(absl::Span<char> p, absl::Span<char> oob, int flags,
                    MsgCallback cb) const;
  void AsyncWriteMsg(absl::Span<const char> p, absl::Span<const char> oob,
                     const SockAddr* to, int flags, SizeCallback cb) const;
  void AsyncRecvFrom(absl::Span<char> p, int flags, RecvFromCallback cb) const;
  void AsyncSendTo(absl::Span<const char> p, const SockAddr& to, int flags,
                   SizeCallback cb) const;
  // Readiness only, for code that makes its own non-blocking calls on
  // fd().sysfd() (OpenSSL, c-ares, ...): OK once the FD is readable
  // (writable) or has an error or hang-up for that call to report; ends
  // with IsDeadlineExceeded or IsClosing like a read (write). Holds the
  // direction like a read (write) does: IsBusy while one is pending.
  // Windows: sockets' readability only (Unimplemented otherwise: IOCP
  // reports completions, not readiness).
  void AsyncWaitReadable(StatusCallback cb) const;
  void AsyncWaitWritable(StatusCallback cb) const;

  Awaitable<absl::StatusOr<size_t>> Read(absl::Span<char> buf) const;
  Awaitable<absl::StatusOr<size_t>> Write(absl::Span<const char> buf) const;
  // `peer` (optional) receives the connection's address, as FD::Accept's
  // Accepted::peer, when the accept succeeds; it is written on the loop
  // thread just before the coroutine resumes (a local of the coroutine is
  // fine), never after the co_await was abandoned.
  Awaitable<absl::StatusOr<AsyncFd>> Accept(SockAddr* peer = nullptr) const;
  Awaitable<absl::Status> Connect(const SockAddr& addr) const;
  Awaitable<absl::StatusOr<size_t>> ReadV(
      absl::Span<const absl::Span<char>> bufs) const;
  Awaitable<absl::StatusOr<size_t>> WriteV(
      absl::Span<const absl::Span<const char>> bufs) const;
  Awaitable<absl::StatusOr<size_t>> Pread(absl::Span<char> buf,
                                          int64_t off) const;
  Awaitable<absl::StatusOr<size_t>> Pwrite(absl::Span<const char> buf,
                                           int64_t off) const;
  Awaitable<absl::StatusOr<MsgResult>> ReadMsg(absl::Span<char> p,
                                               absl::Span<char> oob,
                                               int flags) const;
  Awaitable<absl::StatusOr<size_t>> WriteMsg(absl::Span<const char> p,
                                             absl::Span<const char> oob,
                                             const SockAddr* to,
                                             int flags) const;
  Awaitable<absl::StatusOr<RecvFromResult>> RecvFrom(absl::Span<char> p,
                                                     int flags) const;
  Awaitable<absl::StatusOr<size_t>> SendTo(absl::Span<const char> p,
                                           const SockAddr& to, int flags) const;
  Awaitable<absl::Status> WaitReadable() const;
  Awaitable<absl::Status> WaitWritable() const;

  // Byte arrays (string literals included) must be passed as spans or
  // string_views, as for FD: a literal's array type would also write its
  // trailing NUL.
  template <size_t N>
  void AsyncWrite(const char (&)[N], SizeCallback) const = delete;
  template <size_t N>
  Awaitable<absl::StatusOr<size_t>> Write(const char (&)[N]) const = delete;
  template <size_t N>
  void AsyncPwrite(const char (&)[N], int64_t, SizeCallback) const = delete;
  template <size_t N>
  void AsyncSendTo(const char (&)[N], const SockAddr&, int,
                   SizeCallback) const = delete;
  template <size_t N>
  void Pwrite(const char (&)[N], int64_t) const = delete;
  template <size_t N>
  void SendTo(const char (&)[N], const SockAddr&, int) const = delete;

  // getsockname / getpeername of a socket (poll/net.h; Accept also hands
  // over its connection's peer without a system call).
  absl::StatusOr<SockAddr> LocalAddr() const;
  absl::StatusOr<SockAddr> PeerAddr() const;

  // FD::Close. Pending operations complete with IsClosing on the loop
  // thread. Off the loop's thread Close waits for them while a thread runs
  // the loop (inside Run, RunUntilDone or a RunOnce call) and returns with
  // the handle released; while no thread runs the loop (also between two
  // RunOnce calls) it returns at once, and the loop's next run (or its
  // destruction) ends them and releases the handle.
  absl::Status Close() const { return fd_->Close(); }
  absl::Status SetDeadline(absl::Time t) const { return fd_->SetDeadline(t); }
  absl::Status SetReadDeadline(absl::Time t) const {
    return fd_->SetReadDeadline(t);
  }
  absl::Status SetWriteDeadline(absl::Time t) const {
    return fd_->SetWriteDeadline(t);
  }

 private:
  AsyncFd(std::shared_ptr<LoopCore> core, std::shared_ptr<FD> fd)
      : core_(std::move(core)), fd_(std::move(fd)) {}
  // An operation described by `call` (poll/internal/fd_calls.h): started
  // with a callback, or returned for co_await.
  template <typename R, typename Call>
  void Start(Call call, absl::AnyInvocable<void(R) &&> cb) const;
  template <typename R, typename Call>
  Awaitable<R> Await(Call call) const;

  // Member order matters: the FD (registered with the loop's poller) is
  // destroyed before the loop core that owns the poller.
  std::shared_ptr<LoopCore> core_;
  std::shared_ptr<FD> fd_;
};

}  // namespace gopoll

#endif  // POLL_LOOP_ASYNC_FD_H_
