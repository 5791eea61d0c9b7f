// SPDX-License-Identifier: BSD-3-Clause
// The forms of the conformance harness (harness.h): blocking FDs with each
// waiting strategy, callbacks and coroutines on a running loop, and FDs
// whose loop is gone.
#ifndef _WIN32
#include <poll.h>
#endif

#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "absl/synchronization/notification.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"
#include "poll/loop/task.h"
#include "tests/conformance/harness.h"

namespace gopoll::conformance {
namespace {

// A blocking gopoll::FD (also the after-the-loop form: the FD of an AsyncFd
// whose loop was destroyed).
// A RawRead/RawWrite function that is done once the handle is ready.
// Windows: a socket's zero-byte receive waits for readability, so the
// second call is after it (RawWrite and other handles are Unimplemented).
std::function<bool(Sysfd)> Ready(bool read) {
#ifdef _WIN32
  (void)read;
  auto first = std::make_shared<bool>(true);
  return [first](Sysfd) { return !std::exchange(*first, false); };
#else
  return [read](Sysfd s) {
    pollfd p{static_cast<int>(s), static_cast<short>(read ? POLLIN : POLLOUT),
             0};
    return ::poll(&p, 1, 0) > 0;
  };
#endif
}

class FdConn final : public Conn {
 public:
  FdConn(Sysfd s, std::shared_ptr<FD> fd, AsyncFd keep = AsyncFd())
      : Conn(s), keep_(std::move(keep)), fd_(std::move(fd)) {}
  absl::StatusOr<size_t> Read(absl::Span<char> p) override {
    return fd_->Read(p);
  }
  absl::StatusOr<size_t> Write(absl::Span<const char> p) override {
    return fd_->Write(p);
  }
  absl::Status Accept() override {
    absl::StatusOr<Accepted> a = fd_->Accept();
    if (!a.ok()) return a.status();
    CloseRaw(a->sysfd);
    return absl::OkStatus();
  }
  absl::StatusOr<size_t> ReadV(
      absl::Span<const absl::Span<char>> bufs) override {
    return fd_->ReadV(bufs);
  }
  absl::StatusOr<size_t> WriteV(
      absl::Span<const absl::Span<const char>> bufs) override {
    return fd_->WriteV(bufs);
  }
  absl::StatusOr<MsgResult> ReadMsg(absl::Span<char> p, absl::Span<char> oob,
                                    int flags) override {
    return fd_->ReadMsg(p, oob, flags);
  }
  absl::StatusOr<size_t> WriteMsg(absl::Span<const char> p,
                                  absl::Span<const char> oob,
                                  int flags) override {
    return fd_->WriteMsg(p, oob, nullptr, flags);
  }
  absl::StatusOr<RecvFromResult> RecvFrom(absl::Span<char> p,
                                          int flags) override {
    return fd_->RecvFrom(p, flags);
  }
  // RawRead/RawWrite call f first and wait only when it returns false,
  // so f must look at readiness itself (an edge-triggered poller reports
  // data that came before the call no more).
  absl::Status WaitReadable() override { return fd_->RawRead(Ready(true)); }
  absl::Status WaitWritable() override { return fd_->RawWrite(Ready(false)); }
  absl::Status Close() override { return fd_->Close(); }
  absl::Status SetDeadline(absl::Time t) override {
    return fd_->SetDeadline(t);
  }
  absl::Status SetReadDeadline(absl::Time t) override {
    return fd_->SetReadDeadline(t);
  }
  absl::Status SetWriteDeadline(absl::Time t) override {
    return fd_->SetWriteDeadline(t);
  }

 private:
  AsyncFd keep_;  // after-the-loop form: owns fd_ (declared first: dies last)
  std::shared_ptr<FD> fd_;
};

class BlockingForm final : public Form {
 public:
  explicit BlockingForm(WaitStrategy s) : strategy_(s) {}
  absl::StatusOr<std::unique_ptr<Conn>> Wrap(Sysfd s, FdKind kind) override {
    auto fd = std::make_shared<FD>(s);
    absl::Status st = fd->Init(kind, true, strategy_);
    if (!st.ok()) return st;
    return std::unique_ptr<Conn>(new FdConn(s, std::move(fd)));
  }

 private:
  WaitStrategy strategy_;
};

class AfterLoopForm final : public Form {
 public:
  absl::StatusOr<std::unique_ptr<Conn>> Wrap(Sysfd s, FdKind kind) override {
    absl::StatusOr<AsyncFd> a;
    {
      Loop loop;
      // One round, so the loop's thread state is set up as in real use.
      loop.RunOnce(absl::ZeroDuration());
      a = loop.Adopt(s, kind);
    }
    if (!a.ok()) return a.status();
    std::shared_ptr<FD> fd(std::shared_ptr<FD>(), &a->fd());  // non-owning
    return std::unique_ptr<Conn>(new FdConn(s, std::move(fd), *a));
  }
};

// A loop run by a thread of its own, for the lifetime of the form and of
// every Conn made by it.
class LoopRunner {
 public:
  LoopRunner() : thread_([this] { loop_.Run(); }) {}
  ~LoopRunner() {
    loop_.Stop();
    thread_.join();
  }
  Loop& loop() { return loop_; }

 private:
  Loop loop_;
  std::thread thread_;
};

// A result handed from the loop thread to the waiting caller.
template <typename R>
struct Slot {
  absl::Notification done;
  std::optional<R> value;
  void Set(R r) {
    value.emplace(std::move(r));
    done.Notify();
  }
  R Wait() {
    done.WaitForNotification();
    return std::move(*value);
  }
};

using SizeSlot = Slot<absl::StatusOr<size_t>>;
using StatusSlot = Slot<absl::Status>;

Task<void> CoRead(AsyncFd fd, absl::Span<char> p,
                  std::shared_ptr<SizeSlot> out) {
  out->Set(co_await fd.Read(p));
}
Task<void> CoWrite(AsyncFd fd, absl::Span<const char> p,
                   std::shared_ptr<SizeSlot> out) {
  out->Set(co_await fd.Write(p));
}
Task<void> CoAccept(AsyncFd fd, std::shared_ptr<StatusSlot> out) {
  absl::StatusOr<AsyncFd> a = co_await fd.Accept();
  out->Set(a.status());
}

// Waits in a read forever (its frame holds the buffer); destroyed by
// ReadAfterAnAbandonedRead.
Task<void> CoReadForever(AsyncFd fd) {
  char buf[64];
  (void)co_await fd.Read(absl::MakeSpan(buf));
}
// Destroys `waiting` (suspended in a read of `fd`), then reads at once.
Task<void> CoDestroyThenRead(std::coroutine_handle<> waiting, AsyncFd fd,
                             absl::Span<char> p,
                             std::shared_ptr<absl::Notification> started,
                             std::shared_ptr<SizeSlot> out) {
  waiting.destroy();
  started->Notify();  // (the read below starts before this task suspends)
  out->Set(co_await fd.Read(p));
}

// Any coroutine form: awaits `aw` on the loop thread.
template <typename R, typename A>
Task<void> CoAwait(A aw, std::shared_ptr<Slot<R>> out) {
  out->Set(co_await std::move(aw));
}

class LoopConn final : public Conn {
 public:
  LoopConn(Sysfd s, std::shared_ptr<LoopRunner> runner, AsyncFd fd,
           bool coroutine)
      : Conn(s),
        runner_(std::move(runner)),
        fd_(std::move(fd)),
        coroutine_(coroutine) {}
  absl::StatusOr<size_t> Read(absl::Span<char> p) override {
    auto slot = std::make_shared<SizeSlot>();
    if (coroutine_) {
      runner_->loop().Spawn(CoRead(fd_, p, slot));
    } else {
      fd_.AsyncRead(
          p, [slot](absl::StatusOr<size_t> n) { slot->Set(std::move(n)); });
    }
    return slot->Wait();
  }
  std::function<absl::StatusOr<size_t>()> ReadAfterAnAbandonedRead(
      absl::Span<char> p) override {
    auto slot = std::make_shared<SizeSlot>();
    auto started = std::make_shared<absl::Notification>();
    std::coroutine_handle<> waiting = CoReadForever(fd_).Release();
    // In order on the loop: the read starts and waits (nothing was
    // written); then it is destroyed and the next read starts at once.
    runner_->loop().Post([waiting] { waiting.resume(); });
    if (coroutine_) {
      runner_->loop().Post([this, waiting, p, started, slot] {
        runner_->loop().Spawn(
            CoDestroyThenRead(waiting, fd_, p, started, slot));
      });
    } else {
      runner_->loop().Post([this, waiting, p, started, slot] {
        waiting.destroy();
        fd_.AsyncRead(
            p, [slot](absl::StatusOr<size_t> n) { slot->Set(std::move(n)); });
        started->Notify();
      });
    }
    started->WaitForNotification();
    return [slot] { return slot->Wait(); };
  }
  absl::StatusOr<size_t> Write(absl::Span<const char> p) override {
    auto slot = std::make_shared<SizeSlot>();
    if (coroutine_) {
      runner_->loop().Spawn(CoWrite(fd_, p, slot));
    } else {
      fd_.AsyncWrite(
          p, [slot](absl::StatusOr<size_t> n) { slot->Set(std::move(n)); });
    }
    return slot->Wait();
  }
  absl::Status Accept() override {
    auto slot = std::make_shared<StatusSlot>();
    if (coroutine_) {
      runner_->loop().Spawn(CoAccept(fd_, slot));
    } else {
      fd_.AsyncAccept(
          [slot](absl::StatusOr<AsyncFd> a) { slot->Set(a.status()); });
    }
    return slot->Wait();
  }
  absl::StatusOr<size_t> ReadV(
      absl::Span<const absl::Span<char>> bufs) override {
    return Do<absl::StatusOr<size_t>>(
        [&](auto cb) { fd_.AsyncReadV(bufs, std::move(cb)); },
        [&] { return fd_.ReadV(bufs); });
  }
  absl::StatusOr<size_t> WriteV(
      absl::Span<const absl::Span<const char>> bufs) override {
    return Do<absl::StatusOr<size_t>>(
        [&](auto cb) { fd_.AsyncWriteV(bufs, std::move(cb)); },
        [&] { return fd_.WriteV(bufs); });
  }
  absl::StatusOr<MsgResult> ReadMsg(absl::Span<char> p, absl::Span<char> oob,
                                    int flags) override {
    return Do<absl::StatusOr<MsgResult>>(
        [&](auto cb) { fd_.AsyncReadMsg(p, oob, flags, std::move(cb)); },
        [&] { return fd_.ReadMsg(p, oob, flags); });
  }
  absl::StatusOr<size_t> WriteMsg(absl::Span<const char> p,
                                  absl::Span<const char> oob,
                                  int flags) override {
    return Do<absl::StatusOr<size_t>>(
        [&](auto cb) {
          fd_.AsyncWriteMsg(p, oob, nullptr, flags, std::move(cb));
        },
        [&] { return fd_.WriteMsg(p, oob, nullptr, flags); });
  }
  absl::StatusOr<RecvFromResult> RecvFrom(absl::Span<char> p,
                                          int flags) override {
    return Do<absl::StatusOr<RecvFromResult>>(
        [&](auto cb) { fd_.AsyncRecvFrom(p, flags, std::move(cb)); },
        [&] { return fd_.RecvFrom(p, flags); });
  }
  absl::Status WaitReadable() override {
    return Do<absl::Status>(
        [&](auto cb) { fd_.AsyncWaitReadable(std::move(cb)); },
        [&] { return fd_.WaitReadable(); });
  }
  absl::Status WaitWritable() override {
    return Do<absl::Status>(
        [&](auto cb) { fd_.AsyncWaitWritable(std::move(cb)); },
        [&] { return fd_.WaitWritable(); });
  }
  absl::Status Close() override { return fd_.Close(); }
  absl::Status SetDeadline(absl::Time t) override { return fd_.SetDeadline(t); }
  absl::Status SetReadDeadline(absl::Time t) override {
    return fd_.SetReadDeadline(t);
  }
  absl::Status SetWriteDeadline(absl::Time t) override {
    return fd_.SetWriteDeadline(t);
  }

 private:
  // Starts the operation in this Conn's form and waits for its result.
  template <typename R, typename StartCb, typename MakeAwaitable>
  R Do(StartCb start, MakeAwaitable make) {
    auto slot = std::make_shared<Slot<R>>();
    if (coroutine_) {
      runner_->loop().Spawn(CoAwait<R>(make(), slot));
    } else {
      start(absl::AnyInvocable<void(R) &&>(
          [slot](R r) { slot->Set(std::move(r)); }));
    }
    return slot->Wait();
  }

  std::shared_ptr<LoopRunner> runner_;  // declared first: dies last
  AsyncFd fd_;
  bool coroutine_;
};

class LoopForm final : public Form {
 public:
  explicit LoopForm(bool coroutine)
      : runner_(std::make_shared<LoopRunner>()), coroutine_(coroutine) {}
  absl::StatusOr<std::unique_ptr<Conn>> Wrap(Sysfd s, FdKind kind) override {
    absl::StatusOr<AsyncFd> a = runner_->loop().Adopt(s, kind);
    if (!a.ok()) return a.status();
    return std::unique_ptr<Conn>(
        new LoopConn(s, runner_, std::move(*a), coroutine_));
  }

 private:
  std::shared_ptr<LoopRunner> runner_;
  bool coroutine_;
};

}  // namespace

const char* Name(FormKind f) {
  switch (f) {
    case FormKind::kBlockingInterruptible:
      return "BlockingInterruptible";
    case FormKind::kBlockingPoller:
      return "BlockingPoller";
    case FormKind::kLoopCallback:
      return "LoopCallback";
    case FormKind::kLoopCoroutine:
      return "LoopCoroutine";
    case FormKind::kAfterLoop:
      return "AfterLoop";
  }
  return "?";
}

std::vector<FormKind> SupportedForms() {
  std::vector<FormKind> v = {FormKind::kBlockingInterruptible,
                             FormKind::kBlockingPoller, FormKind::kLoopCallback,
                             FormKind::kLoopCoroutine, FormKind::kAfterLoop};
  for (FormKind r : RefusedForms()) std::erase(v, r);
  return v;
}

std::vector<FormKind> RefusedForms() {
#if defined(_WIN32)
  // fd.h: kInterruptibleCall is POSIX only.
  return {FormKind::kBlockingInterruptible};
#elif defined(GOPOLL_CONFORMANCE_NO_POLLER)
  // fd.h: plan9_stub has no OS poller, so no kPoller.
  return {FormKind::kBlockingPoller};
#else
  return {};
#endif
}

std::unique_ptr<Form> Form::Make(FormKind f) {
  switch (f) {
    case FormKind::kBlockingInterruptible:
      return std::make_unique<BlockingForm>(WaitStrategy::kInterruptibleCall);
    case FormKind::kBlockingPoller:
      return std::make_unique<BlockingForm>(WaitStrategy::kPoller);
    case FormKind::kLoopCallback:
      return std::make_unique<LoopForm>(false);
    case FormKind::kLoopCoroutine:
      return std::make_unique<LoopForm>(true);
    case FormKind::kAfterLoop:
      return std::make_unique<AfterLoopForm>();
  }
  return nullptr;
}

absl::StatusOr<Pair> MakePair(Form& form, Transport t) {
  absl::StatusOr<RawPair> raw = MakeRawPair(t);
  if (!raw.ok()) return raw.status();
  Pair p;
  absl::StatusOr<std::unique_ptr<Conn>> a = form.Wrap(raw->a, raw->kind);
  absl::StatusOr<std::unique_ptr<Conn>> b = form.Wrap(raw->b, raw->kind);
  if (!a.ok() || !b.ok()) return !a.ok() ? a.status() : b.status();
  p.a = std::move(*a);
  p.b = std::move(*b);
  return p;
}

}  // namespace gopoll::conformance
