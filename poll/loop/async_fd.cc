// SPDX-License-Identifier: BSD-3-Clause
#include "poll/loop/async_fd.h"

#include <cstring>
#include <string>
#include <vector>

namespace gopoll {
namespace internal_async {
namespace {

bool WouldBlock() {
  internal::NonBlockingScope* nb = internal::NonBlockingScope::Current();
  return nb != nullptr && nb->would_block();
}

class ReadOp final : public OpBase<absl::StatusOr<size_t>> {
 public:
  ReadOp(std::shared_ptr<LoopCore> c, std::shared_ptr<FD> f,
         absl::Span<char> buf)
      : OpBase(std::move(c), std::move(f), internal::Dir::kRead),
        buf_(buf.subspan(0, kMaxRW)) {}

 private:
  const char* OpName() const override { return "read"; }
  bool Resumable() const override { return true; }
  bool Attempt() override {
    absl::Status bad = CheckBuffer(buf_.data(), buf_.size(), "read");
    if (!bad.ok() || buf_.empty()) {
      result_.emplace(bad.ok() ? absl::StatusOr<size_t>(0) : bad);
      return true;
    }
    absl::StatusOr<size_t> n = ReadOnce(buf_);
    if (!n.ok() && WouldBlock()) return false;
    if (n.ok() && *n == 0 && zero_read_is_eof()) {
      result_.emplace(ErrEof());
    } else {
      result_.emplace(std::move(n));
    }
    return true;
  }
  void RunBlocking() override {
    absl::Status bad = CheckBuffer(buf_.data(), buf_.size(), "read");
    if (!bad.ok()) {
      result_.emplace(bad);
      return;
    }
    copy_.resize(buf_.size());
    result_.emplace(fd().Read(absl::MakeSpan(copy_)));
  }
  void BeforeDeliver() override {
    if (copy_.empty() || !result_->ok()) return;
    std::memcpy(buf_.data(), copy_.data(), **result_);
  }
  void KeepAbandoned() override { KeepRead(buf_); }

  absl::Span<char> buf_;
  std::vector<char> copy_;  // offloaded reads only
};

class WriteOp final : public OpBase<absl::StatusOr<size_t>> {
 public:
  WriteOp(std::shared_ptr<LoopCore> c, std::shared_ptr<FD> f,
          absl::Span<const char> buf)
      : OpBase(std::move(c), std::move(f), internal::Dir::kWrite), buf_(buf) {}

 private:
  const char* OpName() const override { return "write"; }
  bool Resumable() const override { return true; }
  bool Attempt() override {
    absl::Status bad = CheckBuffer(buf_.data(), buf_.size(), "write");
    if (!bad.ok()) {
      result_.emplace(bad);
      return true;
    }
    // At least one call, as FD::Write (and Go) make: a 0-byte write is
    // one (a datagram or seqpacket socket sends an empty message).
    do {
      absl::Span<const char> rest = buf_.subspan(done_, kMaxRW);
      absl::StatusOr<size_t> n = WriteOnce(rest);
      if (!n.ok()) {
        if (WouldBlock()) return false;
        result_.emplace(n.status());
        return true;
      }
      if (*n == 0 && !rest.empty()) {
        result_.emplace(absl::DataLossError(
            "write: wrote 0 bytes (unexpected end of file)"));
        return true;
      }
      done_ += *n;
    } while (done_ < buf_.size());
    result_.emplace(done_);
    return true;
  }
  void BeforeOffload() override {
    // The caller's buffer may go away once the consumer is abandoned (a
    // destroyed coroutine frame): copy it now, on the loop thread.
    if (buf_.data() != nullptr) copy_.assign(buf_.data(), buf_.size());
  }
  void RunBlocking() override {
    // (Checks only the span itself, not the memory it pointed to.)
    absl::Status bad = CheckBuffer(buf_.data(), buf_.size(), "write");
    if (!bad.ok()) {
      result_.emplace(bad);
      return;
    }
    result_.emplace(fd().Write(absl::Span<const char>(copy_)));
  }

  absl::Span<const char> buf_;
  size_t done_ = 0;
  std::string copy_;  // offloaded writes only
};

class AcceptOp final : public OpBase<absl::StatusOr<AsyncFd>> {
 public:
  using OpBase::OpBase;

 private:
  const char* OpName() const override { return "accept"; }
  absl::Status CheckArgs() override { return CheckAcceptArgs(); }
#if defined(__linux__)
  // io_uring loops submit the accept and collect it when it completes
  // (poll/unix/uring_poller.h); epoll ignores it. Not on Windows, whose
  // loops run accepts on helper threads (FD::AsyncNative).
  bool Resumable() const override { return true; }
#endif
  bool Attempt() override {
    absl::StatusOr<Accepted> a = AcceptOnce();
    if (!a.ok() && WouldBlock()) return false;
    Finish(std::move(a));
    return true;
  }
  void RunBlocking() override { Finish(fd().Accept()); }
  void Finish(absl::StatusOr<Accepted> a) {
    if (!a.ok()) {
      result_.emplace(a.status());
      return;
    }
    result_.emplace(AsyncFd::Wrap(core_ref(), a->sysfd, FdKind::kNet));
  }
};

class ConnectOp final : public OpBase<absl::Status> {
 public:
  ConnectOp(std::shared_ptr<LoopCore> c, std::shared_ptr<FD> f,
            const SockAddr& addr)
      : OpBase(std::move(c), std::move(f), internal::Dir::kWrite),
        addr_(addr) {}

 private:
  const char* OpName() const override { return "connect"; }
  absl::Status CheckArgs() override { return CheckConnectArgs(addr_); }
  bool Attempt() override {
    absl::Status s = ConnectOnce(addr_);
    if (!s.ok() && WouldBlock()) return false;
    result_.emplace(std::move(s));
    return true;
  }
  void RunBlocking() override { result_.emplace(fd().Connect(addr_)); }

  SockAddr addr_;
};

// Callback form: start on the loop thread, deliver from the loop.
template <typename Op, typename R, typename... Args>
void StartWithCallback(absl::AnyInvocable<void(R) &&> cb, Args&&... args) {
  auto* op = new Op(std::forward<Args>(args)...);
  op->SetCallback(std::move(cb));
  op->StartOnLoop();
}

}  // namespace
}  // namespace internal_async

using internal_async::AcceptOp;
using internal_async::ConnectOp;
using internal_async::ReadOp;
using internal_async::WriteOp;

absl::StatusOr<AsyncFd> AsyncFd::Wrap(std::shared_ptr<LoopCore> core,
                                      Sysfd sysfd, FdKind kind) {
  auto fd = std::make_shared<FD>(sysfd);
  absl::Status s = fd->Init(kind, core->poller());
  if (!s.ok()) return s;
  return AsyncFd(std::move(core), std::move(fd));
}

void AsyncFd::AsyncRead(absl::Span<char> buf, SizeCallback cb) const {
  internal_async::StartWithCallback<ReadOp, absl::StatusOr<size_t>>(
      std::move(cb), core_, fd_, buf);
}

void AsyncFd::AsyncWrite(absl::Span<const char> buf, SizeCallback cb) const {
  internal_async::StartWithCallback<WriteOp, absl::StatusOr<size_t>>(
      std::move(cb), core_, fd_, buf);
}

void AsyncFd::AsyncAccept(AcceptCallback cb) const {
  internal_async::StartWithCallback<AcceptOp, absl::StatusOr<AsyncFd>>(
      std::move(cb), core_, fd_, internal::Dir::kRead);
}

void AsyncFd::AsyncConnect(const SockAddr& addr, StatusCallback cb) const {
  internal_async::StartWithCallback<ConnectOp, absl::Status>(std::move(cb),
                                                             core_, fd_, addr);
}

Awaitable<absl::StatusOr<size_t>> AsyncFd::Read(absl::Span<char> buf) const {
  return Awaitable<absl::StatusOr<size_t>>(new ReadOp(core_, fd_, buf));
}

Awaitable<absl::StatusOr<size_t>> AsyncFd::Write(
    absl::Span<const char> buf) const {
  return Awaitable<absl::StatusOr<size_t>>(new WriteOp(core_, fd_, buf));
}

Awaitable<absl::StatusOr<AsyncFd>> AsyncFd::Accept() const {
  return Awaitable<absl::StatusOr<AsyncFd>>(
      new AcceptOp(core_, fd_, internal::Dir::kRead));
}

Awaitable<absl::Status> AsyncFd::Connect(const SockAddr& addr) const {
  return Awaitable<absl::Status>(new ConnectOp(core_, fd_, addr));
}

}  // namespace gopoll
