// SPDX-License-Identifier: BSD-3-Clause
// Every AsyncFd operation is one CallOp over the FD method's description
// (poll/internal/fd_calls.h): the same argument checks, direction and body
// as the blocking method, run one attempt at a time by AsyncOp.
#include "poll/loop/async_fd.h"

#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "poll/internal/fd_calls.h"

namespace gopoll {
namespace internal_async {
namespace {

using internal::FdCalls;

bool WouldBlock() {
  internal::NonBlockingScope* nb = internal::NonBlockingScope::Current();
  return nb != nullptr && nb->would_block();
}

// The buffers of an operation that runs on a helper thread (Offload): the
// caller's may go away once the consumer is abandoned (a destroyed
// coroutine frame), so the helper thread works on copies, taken on the loop
// thread before it starts; what it read is copied back on the loop thread
// before delivery.
class Scratch {
 public:
  absl::Span<const char> In(absl::Span<const char> p) {
    if (p.data() == nullptr) return p;
    ins_.push_back(std::make_unique<char[]>(p.size()));
    std::memcpy(ins_.back().get(), p.data(), p.size());
    return absl::Span<const char>(ins_.back().get(), p.size());
  }
  // Every output has its index for Back, an empty one too (ReadMsg's oob
  // is output 1 also when its data buffer is empty).
  absl::Span<char> Out(absl::Span<char> p) {
    if (p.empty()) {
      outs_.push_back({p, nullptr});
      return p;
    }
    outs_.push_back({p, std::make_unique<char[]>(p.size())});
    return absl::Span<char>(outs_.back().copy.get(), p.size());
  }
  // The first `n` bytes of output `i` back to the caller's buffer.
  void Back(size_t i, size_t n) {
    if (i >= outs_.size()) return;
    const size_t k = std::min(n, outs_[i].caller.size());
    if (k > 0) std::memcpy(outs_[i].caller.data(), outs_[i].copy.get(), k);
  }
  // `n` bytes scattered back over the outputs, in order.
  void Scatter(size_t n) {
    for (size_t i = 0; i < outs_.size() && n > 0; ++i) {
      const size_t k = std::min(n, outs_[i].caller.size());
      Back(i, k);
      n -= k;
    }
  }

 private:
  struct Out_ {
    absl::Span<char> caller;
    std::unique_ptr<char[]> copy;
  };
  std::vector<std::unique_ptr<char[]>> ins_;
  std::vector<Out_> outs_;
};

// Per call: what it takes from the caller before it is offloaded (Detach)
// and gives back before delivery (Attach). Calls without buffers have none.
using ReadVCall = FdCalls::ReadV<std::vector<absl::Span<char>>>;
// Accept, optionally reporting the peer's address into the caller's
// `peer` (written on the loop thread at delivery, never by a helper thread
// or after the consumer is gone).
struct AcceptCall : FdCalls::Accept {
  SockAddr* peer = nullptr;
};
using WriteVCall = FdCalls::WriteV<std::vector<absl::Span<const char>>>;
using WaitRead = FdCalls::Wait<internal::Dir::kRead>;
using WaitWrite = FdCalls::Wait<internal::Dir::kWrite>;

template <typename Call>
constexpr bool kHasBuffer = requires(Call c) {
  c.p;
};
template <typename Call>
constexpr bool kHasBufs = requires(Call c) {
  c.bufs;
};

template <typename Call>
void Detach(Call& c, Scratch& s) {
  if constexpr (std::is_same_v<decltype(c.p), absl::Span<char>>) {
    c.p = s.Out(c.p);
  } else if constexpr (std::is_same_v<decltype(c.p), absl::Span<const char>>) {
    c.p = s.In(c.p);
  }
}
void Detach(FdCalls::ReadMsg& c, Scratch& s) {
  c.p = s.Out(c.p);
  c.oob = s.Out(c.oob);
}
void Detach(FdCalls::WriteMsg& c, Scratch& s) {
  c.p = s.In(c.p);
  c.oob = s.In(c.oob);
}
void Detach(ReadVCall& c, Scratch& s) {
  for (auto& b : c.bufs) b = s.Out(b);
}
void Detach(WriteVCall& c, Scratch& s) {
  for (auto& b : c.bufs) b = s.In(b);
}

template <typename Call, typename R>
void Attach(Call& c, Scratch& s, const R& r) {
  if constexpr (kHasBuffer<Call>) {
    if constexpr (std::is_same_v<decltype(c.p), absl::Span<char>>) {
      if (r.ok()) s.Back(0, *r);
    }
  }
}
void Attach(FdCalls::ReadMsg&, Scratch& s, const absl::StatusOr<MsgResult>& r) {
  if (!r.ok()) return;
  s.Back(0, r->n);
  s.Back(1, r->oobn);
}
void Attach(FdCalls::RecvFrom&, Scratch& s,
            const absl::StatusOr<RecvFromResult>& r) {
  if (r.ok()) s.Back(0, r->n);
}
void Attach(ReadVCall&, Scratch& s, const absl::StatusOr<size_t>& r) {
  if (r.ok()) s.Scatter(*r);
}

// An AsyncOp running the FD method `Call` describes; its result type is
// the method's (R), except for Accept, whose connection becomes an AsyncFd
// on the same loop.
template <typename Call, typename R = typename Call::Result>
class CallOp final : public OpBase<R> {
 public:
  CallOp(std::shared_ptr<LoopCore> c, std::shared_ptr<FD> f, Call call)
      : OpBase<R>(std::move(c), std::move(f), Call::kDir),
        call_(std::move(call)) {}

 private:
  using OpBase<R>::result_;
  static constexpr bool kPlainRead = std::is_same_v<Call, FdCalls::Read>;
  const char* OpName() const override { return Call::kName; }
  absl::Status CheckArgs() override { return call_.Check(this->fd()); }
  bool Resumable() const override { return Call::kRing; }
  bool WaitsFirstWhenDrained() const override { return kPlainRead; }
  bool Attempt() override {
    typename Call::Result r = call_.Run(this->fd());
    if (!r.ok() && WouldBlock()) return false;
    if constexpr (kPlainRead) this->NoteRead(call_.p.size(), r);
    result_.emplace(Map(std::move(r)));
    return true;
  }
  void BeforeOffload() override {
    if constexpr (kHasBuffer<Call> || kHasBufs<Call>) {
      scratch_ = std::make_unique<Scratch>();
      Detach(call_, *scratch_);
    }
  }
  void RunBlocking() override {
    if constexpr (std::is_same_v<Call, FdCalls::Read>) {
      result_.emplace(Map(FdCalls::Blocking(
          this->fd(), call_, [this](const typename Call::Result& r) {
            // A read whose consumer went away meanwhile: its bytes (in the
            // scratch copy) stay for the FD's next read, in order (the read
            // lock is still held).
            if (r.ok() && *r > 0 && this->AbandonedOffload()) {
              this->KeepUnread(call_.p.subspan(0, *r));
            }
          })));
    } else {
      result_.emplace(Map(FdCalls::Blocking(this->fd(), call_)));
    }
  }
  void BeforeDeliver() override {
    if constexpr (kHasBuffer<Call> || kHasBufs<Call>) {
      if (scratch_ != nullptr) Attach(call_, *scratch_, *result_);
    }
    if constexpr (std::is_same_v<Call, AcceptCall>) {
      if (call_.peer != nullptr && result_->ok()) *call_.peer = peer_;
    }
  }
  void KeepAbandoned() override {
    // Only Read is a ring operation that reads into the caller's memory.
    if constexpr (std::is_same_v<Call, FdCalls::Read>) this->KeepRead(call_.p);
  }
  R Map(typename Call::Result r) {
    if constexpr (std::is_same_v<R, typename Call::Result>) {
      return r;
    } else {
      if (!r.ok()) return r.status();
      peer_ = r->peer;
      return AsyncFd::Wrap(this->core_ref(), r->sysfd, FdKind::kNet);
    }
  }

  Call call_;
  std::unique_ptr<Scratch> scratch_;  // offloaded operations only
  // Accept: the connection's peer, kept here until delivery.
  [[no_unique_address]] std::conditional_t<std::is_same_v<Call, AcceptCall>,
                                           SockAddr, std::monostate>
      peer_;
};

}  // namespace
}  // namespace internal_async

using internal::FdCalls;
using internal_async::CallOp;

absl::StatusOr<AsyncFd> AsyncFd::Wrap(std::shared_ptr<LoopCore> core,
                                      Sysfd sysfd, FdKind kind) {
  auto fd = std::make_shared<FD>(sysfd);
  absl::Status s = fd->Init(kind, core->poller());
  if (!s.ok()) return s;
  return AsyncFd(std::move(core), std::move(fd));
}

// Both forms of each operation: the callback form starts the op on the
// loop thread and delivers from the loop; the coroutine form is started by
// co_await (Awaitable).
template <typename R, typename Call>
void AsyncFd::Start(Call call, absl::AnyInvocable<void(R) &&> cb) const {
  auto* op = new CallOp<Call, R>(core_, fd_, std::move(call));
  op->SetCallback(std::move(cb));
  op->StartOnLoop();
}

template <typename R, typename Call>
Awaitable<R> AsyncFd::Await(Call call) const {
  return Awaitable<R>(new CallOp<Call, R>(core_, fd_, std::move(call)));
}

using SizeR = absl::StatusOr<size_t>;

void AsyncFd::AsyncRead(absl::Span<char> buf, SizeCallback cb) const {
  Start<SizeR>(FdCalls::Read{buf}, std::move(cb));
}
void AsyncFd::AsyncWrite(absl::Span<const char> buf, SizeCallback cb) const {
  Start<SizeR>(FdCalls::Write{buf}, std::move(cb));
}
void AsyncFd::AsyncAccept(AcceptCallback cb) const {
  Start<absl::StatusOr<AsyncFd>>(internal_async::AcceptCall{}, std::move(cb));
}
void AsyncFd::AsyncAccept(AcceptPeerCallback cb) const {
  // The peer lives with the callback until it runs.
  auto peer = std::make_unique<SockAddr>();
  internal_async::AcceptCall call;
  call.peer = peer.get();
  Start<absl::StatusOr<AsyncFd>>(std::move(call),
                                 [cb = std::move(cb), peer = std::move(peer)](
                                     absl::StatusOr<AsyncFd> conn) mutable {
                                   std::move(cb)(std::move(conn), *peer);
                                 });
}
void AsyncFd::AsyncConnect(const SockAddr& addr, StatusCallback cb) const {
  Start<absl::Status>(FdCalls::Connect{addr}, std::move(cb));
}
void AsyncFd::AsyncPread(absl::Span<char> buf, int64_t off,
                         SizeCallback cb) const {
  Start<SizeR>(FdCalls::Pread{buf, off}, std::move(cb));
}
void AsyncFd::AsyncPwrite(absl::Span<const char> buf, int64_t off,
                          SizeCallback cb) const {
  Start<SizeR>(FdCalls::Pwrite{buf, off}, std::move(cb));
}
void AsyncFd::AsyncReadV(absl::Span<const absl::Span<char>> bufs,
                         SizeCallback cb) const {
  Start<SizeR>(internal_async::ReadVCall{{bufs.begin(), bufs.end()}},
               std::move(cb));
}
void AsyncFd::AsyncWriteV(absl::Span<const absl::Span<const char>> bufs,
                          SizeCallback cb) const {
  Start<SizeR>(internal_async::WriteVCall{{bufs.begin(), bufs.end()}},
               std::move(cb));
}
void AsyncFd::AsyncReadMsg(absl::Span<char> p, absl::Span<char> oob, int flags,
                           MsgCallback cb) const {
  Start<absl::StatusOr<MsgResult>>(FdCalls::ReadMsg{p, oob, flags},
                                   std::move(cb));
}
void AsyncFd::AsyncWriteMsg(absl::Span<const char> p,
                            absl::Span<const char> oob, const SockAddr* to,
                            int flags, SizeCallback cb) const {
  Start<SizeR>(FdCalls::WriteMsg::Make(p, oob, to, flags), std::move(cb));
}
void AsyncFd::AsyncRecvFrom(absl::Span<char> p, int flags,
                            RecvFromCallback cb) const {
  Start<absl::StatusOr<RecvFromResult>>(FdCalls::RecvFrom{p, flags},
                                        std::move(cb));
}
void AsyncFd::AsyncSendTo(absl::Span<const char> p, const SockAddr& to,
                          int flags, SizeCallback cb) const {
  Start<SizeR>(FdCalls::SendTo{p, to, flags}, std::move(cb));
}
void AsyncFd::AsyncWaitReadable(StatusCallback cb) const {
  Start<absl::Status>(internal_async::WaitRead{}, std::move(cb));
}
void AsyncFd::AsyncWaitWritable(StatusCallback cb) const {
  Start<absl::Status>(internal_async::WaitWrite{}, std::move(cb));
}

Awaitable<SizeR> AsyncFd::Read(absl::Span<char> buf) const {
  return Await<SizeR>(FdCalls::Read{buf});
}
Awaitable<SizeR> AsyncFd::Write(absl::Span<const char> buf) const {
  return Await<SizeR>(FdCalls::Write{buf});
}
Awaitable<absl::StatusOr<AsyncFd>> AsyncFd::Accept(SockAddr* peer) const {
  internal_async::AcceptCall call;
  call.peer = peer;
  return Await<absl::StatusOr<AsyncFd>>(std::move(call));
}
Awaitable<absl::Status> AsyncFd::Connect(const SockAddr& addr) const {
  return Await<absl::Status>(FdCalls::Connect{addr});
}
Awaitable<SizeR> AsyncFd::Pread(absl::Span<char> buf, int64_t off) const {
  return Await<SizeR>(FdCalls::Pread{buf, off});
}
Awaitable<SizeR> AsyncFd::Pwrite(absl::Span<const char> buf,
                                 int64_t off) const {
  return Await<SizeR>(FdCalls::Pwrite{buf, off});
}
Awaitable<SizeR> AsyncFd::ReadV(absl::Span<const absl::Span<char>> bufs) const {
  return Await<SizeR>(internal_async::ReadVCall{{bufs.begin(), bufs.end()}});
}
Awaitable<SizeR> AsyncFd::WriteV(
    absl::Span<const absl::Span<const char>> bufs) const {
  return Await<SizeR>(internal_async::WriteVCall{{bufs.begin(), bufs.end()}});
}
Awaitable<absl::StatusOr<MsgResult>> AsyncFd::ReadMsg(absl::Span<char> p,
                                                      absl::Span<char> oob,
                                                      int flags) const {
  return Await<absl::StatusOr<MsgResult>>(FdCalls::ReadMsg{p, oob, flags});
}
Awaitable<SizeR> AsyncFd::WriteMsg(absl::Span<const char> p,
                                   absl::Span<const char> oob,
                                   const SockAddr* to, int flags) const {
  return Await<SizeR>(FdCalls::WriteMsg::Make(p, oob, to, flags));
}
Awaitable<absl::StatusOr<RecvFromResult>> AsyncFd::RecvFrom(absl::Span<char> p,
                                                            int flags) const {
  return Await<absl::StatusOr<RecvFromResult>>(FdCalls::RecvFrom{p, flags});
}
Awaitable<SizeR> AsyncFd::SendTo(absl::Span<const char> p, const SockAddr& to,
                                 int flags) const {
  return Await<SizeR>(FdCalls::SendTo{p, to, flags});
}
Awaitable<absl::Status> AsyncFd::WaitReadable() const {
  return Await<absl::Status>(internal_async::WaitRead{});
}
Awaitable<absl::Status> AsyncFd::WaitWritable() const {
  return Await<absl::Status>(internal_async::WaitWrite{});
}

}  // namespace gopoll
