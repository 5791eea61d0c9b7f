// SPDX-License-Identifier: BSD-3-Clause
// tools/fuzz/fd_ops_fuzzer.cc: a libFuzzer target (tools/fuzz/README.md).
//
// The input bytes drive a random sequence of operations over three pairs of
// descriptors (a pipe, a stream socketpair, a seqpacket socketpair) whose
// ends each wait one way: the interruptible call, the process-wide poller,
// or an event loop (callback and coroutine forms). A second thread makes
// blocking calls, the loop may be destroyed midway, ends may be closed or
// shut down while operations are pending. Also the awkward cases of the
// contract: another thread moving a deadline between past and future while
// operations wait, a reader of a dup'd descriptor on another thread
// competing for the bytes of a loop's read. Per input it checks:
//   - no hang: every operation that can wait has a deadline (the harness
//     sets a near one where the input cleared it), and every wait of the
//     harness itself is bounded (an overrun aborts: a hang is a crash);
//   - no descriptor leak: /proc/self/fd counts before and after;
//   - data: stream bytes arrive in order, never duplicated or invented,
//     and, where nothing was lost on purpose (shutdown, unknown partial
//     writes), all of them; seqpacket messages arrive whole or truncated to
//     the buffer, in order, none lost;
//   - errors: only the statuses the contract allows; after Close every
//     operation fails with IsClosing; a past deadline always fails the
//     operation; a timed-out call never returns before its deadline.
// The loop is made, run and destroyed under pressure too: created with the
// memlock limit used up (its ring falls back to epoll) or with only a few
// free descriptors (Loop::Create reports EMFILE and a loop without an OS
// poller runs instead), run for a turn on another thread (also with the
// memlock limit used up: a thread move must not need a new ring), and
// destroyed on another thread with operations in flight.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"
#include "tools/fuzz/fuzz_util.h"

namespace gopoll::fuzz {
namespace {

enum class Mode { kInterruptible, kPoller, kLoop };
enum class PairType { kPipe, kStream, kSeqpacket };
enum class Dl { kClear, kNear, kPast };

// Lowers a resource limit's soft value for its lifetime (the loop's
// creation or a turn under exhaustion).
class ScopedLimit {
 public:
  ScopedLimit(int resource, rlim_t soft) : resource_(resource) {
    getrlimit(resource_, &old_);
    rlimit now = old_;
    now.rlim_cur = soft < old_.rlim_max ? soft : old_.rlim_max;
    setrlimit(resource_, &now);
  }
  ~ScopedLimit() { setrlimit(resource_, &old_); }

 private:
  int resource_;
  rlimit old_;
};

// The highest open descriptor.
int HighestFd() {
  int high = 2;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return 1024;
  while (dirent* e = readdir(d)) {
    const int fd = std::atoi(e->d_name);
    if (fd > high) high = fd;
  }
  closedir(d);
  return high;
}

// One direction of a pair: written by end `w`, read by the other end.
struct Channel {
  uint32_t salt = 0;
  std::atomic<uint64_t> written{0};  // stream: bytes known written
  uint64_t read = 0;                 // stream: bytes read and checked
  bool offsets_known = true;         // false: a write of unknown size
  bool complete = true;              // false: bytes may be lost on purpose
  // Seqpacket: messages are numbered; `ok` records which writes succeeded.
  uint64_t next_seq = 0;
  std::vector<uint8_t> ok;  // per seq: 0 pending/failed/unknown, 1 sent
  int64_t last_read_seq = -1;
  // A read abandoned with this buffer size may have taken the next message
  // (the kernel truncated it to that buffer); the FD keeps it for the next
  // read (poll/internal/unread_bytes.h). 0: none.
  size_t abandoned_cap = 0;
};

struct End {
  Mode mode = Mode::kInterruptible;
  std::unique_ptr<FD> fd;  // kInterruptible, kPoller
  AsyncFd afd;             // kLoop
  bool closed = false;
  bool busy[2] = {false, false};  // [0] read, [1] write: op pending
  Dl dl[2] = {Dl::kClear, Dl::kClear};
  absl::Time dl_at[2];
  uint64_t dl_epoch[2] = {0, 0};  // bumped by every deadline change
  FD& f() { return mode == Mode::kLoop ? afd.fd() : *fd; }
};

struct Pair {
  PairType type;
  End end[2];
  Channel ch[2];  // ch[i]: written by end i
  FdKind kind() const {
    return type == PairType::kPipe ? FdKind::kPipe : FdKind::kNet;
  }
  bool CanWrite(int e) const { return type != PairType::kPipe || e == 1; }
};

// An asynchronous operation (callback or coroutine) or the second thread's
// blocking one: its result is applied to the model by the main thread.
struct Pending {
  int pair = 0;
  int end = 0;
  bool write = false;
  std::vector<char> buf;
  uint64_t seq = 0;  // seqpacket write: its message number
  std::atomic<bool> done{false};
  std::atomic<bool> ended{false};  // coroutine frame gone (maybe abandoned)
  absl::StatusOr<size_t> result = absl::UnknownError("not run");
  size_t written = 0;  // blocking writes report partial progress
  bool partial_known = false;
  absl::Time deadline;  // blocking ops: the deadline they ran under
  bool deadline_set = false;
  uint64_t dl_epoch = 0;
  absl::Time returned;       // when a blocking call returned
  bool after_close = false;  // started on a closed end: must fail closing
  bool coroutine = false;
};

// Marks the operation ended when the coroutine frame holding it goes, also
// a frame destroyed before it ever ran (a parameter: it lives in the frame;
// the moved-from argument marks nothing).
class EndMarker {
 public:
  explicit EndMarker(Pending* p) : p_(p) {}
  EndMarker(EndMarker&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  EndMarker& operator=(EndMarker&&) = delete;
  ~EndMarker() {
    if (p_ != nullptr) p_->ended.store(true);
  }

 private:
  Pending* p_;
};

Task<void> CoOp(AsyncFd fd, std::shared_ptr<Pending> p, EndMarker) {
  absl::StatusOr<size_t> r =
      p->write ? co_await fd.Write(absl::MakeConstSpan(p->buf))
               : co_await fd.Read(absl::MakeSpan(p->buf));
  p->result = std::move(r);
  p->done.store(true);
}

class Run {
 public:
  explicit Run(FuzzedDataProvider& in) : in_(in) {}
  void Go();

 private:
  void Setup();
  void Step();
  void Finish();

  End& E(int p, int e) { return pairs_[p].end[e]; }
  bool LoopMode(const End& e) const { return e.mode == Mode::kLoop && loop_; }
  void EnsureBounded(int p, int e, bool write);
  absl::Time NearDeadline();
  void SetDl(int p, int e, bool write, Dl kind);
  std::vector<char> MakeWrite(int p, int e, size_t n, uint64_t* seq);
  void CheckRead(int p, int e, absl::Span<const char> data, bool truncated_ok,
                 size_t cap);
  void ApplyWrite(int p, int e, uint64_t seq, const absl::Status& s,
                  size_t written, bool known);
  void ExpectAllowed(const absl::Status& s, int p, int e, bool write,
                     bool after_close, const char* what);
  void ExpectDeadlineNotEarly(const absl::Status& s, const Pending& op);
  void Apply(Pending& op);
  void Collect(bool all);
  void StartAsync(int p, int e, bool write, bool coroutine, size_t n);
  void Blocking(int p, int e, bool write, size_t n);
  void StartBg(int p, int e, bool write, size_t n);
  void JoinBg();
  void DestroyLoop(bool on_other_thread = false);
  std::unique_ptr<Loop> MakeLoop();
  void TurnOnOtherThread(bool memlock_exhausted);
  void FlipDeadline(int p, int e, bool write);
  void CompetingReader(int p, int e);
  void Drain(int p, int reader);

  FuzzedDataProvider& in_;
  std::unique_ptr<Loop> loop_;
  Pair pairs_[3];
  std::vector<std::shared_ptr<Pending>> pending_;
  std::thread bg_;
  std::shared_ptr<Pending> bg_op_;
};

absl::Time Run::NearDeadline() {
  // Mostly within a millisecond: deadlines that race with the call.
  return absl::Now() + absl::Microseconds(in_.ConsumeIntegral<uint8_t>() * 4);
}

void Run::SetDl(int p, int e, bool write, Dl kind) {
  End& end = E(p, e);
  absl::Time t = kind == Dl::kClear  ? absl::InfiniteFuture()
                 : kind == Dl::kPast ? absl::Now() - absl::Seconds(1)
                                     : NearDeadline();
  absl::Status s =
      write ? end.f().SetWriteDeadline(t) : end.f().SetReadDeadline(t);
  if (end.closed) {
    Require(IsClosing(s), "SetDeadline after Close: " + s.ToString());
    return;
  }
  Require(s.ok() || IsClosing(s), "SetDeadline: " + s.ToString());
  if (!s.ok()) return;
  end.dl[write] = kind;
  end.dl_at[write] = t;
  ++end.dl_epoch[write];
}

void Run::EnsureBounded(int p, int e, bool write) {
  if (E(p, e).dl[write] == Dl::kClear) SetDl(p, e, write, Dl::kNear);
}

void Run::Setup() {
  for (int i = 0; i < 3; ++i) {
    Pair& pr = pairs_[i];
    pr.type = static_cast<PairType>(i);
    pr.ch[0].salt = 0x1000u * (i + 1);
    pr.ch[1].salt = 0x1000u * (i + 1) + 1;
    int fds[2];
    int rc =
        i == 0
            ? pipe2(fds, O_CLOEXEC)
            : socketpair(AF_UNIX,
                         (i == 1 ? SOCK_STREAM : SOCK_SEQPACKET) | SOCK_CLOEXEC,
                         0, fds);
    Require(rc == 0, "pipe/socketpair failed");
    for (int e = 0; e < 2; ++e) {
      End& end = pr.end[e];
      end.mode = static_cast<Mode>(in_.ConsumeIntegralInRange<int>(0, 2));
      if (end.mode == Mode::kLoop) {
        if (!loop_) loop_ = MakeLoop();
        absl::StatusOr<AsyncFd> a = loop_->Adopt(fds[e], pr.kind());
        Require(a.ok(), "Adopt: " + a.status().ToString());
        end.afd = *a;
      } else {
        end.fd = std::make_unique<FD>(fds[e]);
        absl::Status s = end.fd->Init(pr.kind(), true,
                                      end.mode == Mode::kPoller
                                          ? WaitStrategy::kPoller
                                          : WaitStrategy::kInterruptibleCall);
        Require(s.ok(), "Init: " + s.ToString());
      }
    }
  }
}

std::vector<char> Run::MakeWrite(int p, int e, size_t n, uint64_t* seq) {
  Pair& pr = pairs_[p];
  Channel& ch = pr.ch[e];
  std::vector<char> buf(n);
  if (pr.type == PairType::kSeqpacket) {
    *seq = ch.next_seq++;
    ch.ok.push_back(0);
    FillMessage(ch.salt, *seq, absl::MakeSpan(buf));
  } else {
    // Stream bytes are numbered from where the channel's writes stand now
    // (one writer per channel at a time).
    FillStream(ch.salt, ch.written.load(), absl::MakeSpan(buf));
  }
  return buf;
}

void Run::CheckRead(int p, int e, absl::Span<const char> data,
                    bool truncated_ok, size_t cap) {
  Pair& pr = pairs_[p];
  if (!pr.CanWrite(1 - e)) return;
  Channel& ch = pr.ch[1 - e];
  if (pr.type == PairType::kSeqpacket) {
    if (ch.abandoned_cap != 0 && data.size() == ch.abandoned_cap) {
      cap = std::min(cap, ch.abandoned_cap);  // the kept, truncated one
    }
    ch.abandoned_cap = 0;
    int64_t seq = CheckMessage(ch.salt, data, cap);
    Require(seq > ch.last_read_seq,
            "seqpacket: message duplicated or "
            "reordered");
    Require(seq < static_cast<int64_t>(ch.ok.size()),
            "seqpacket: message never written");
    for (int64_t s = ch.last_read_seq + 1; s < seq; ++s) {
      Require(ch.ok[s] == 0 || !ch.complete,
              "seqpacket: message " + std::to_string(s) + " lost");
    }
    ch.last_read_seq = seq;
    (void)truncated_ok;
    return;
  }
  if (!ch.offsets_known) return;
  CheckStream(ch.salt, ch.read, data);
  ch.read += data.size();
}

void Run::ApplyWrite(int p, int e, uint64_t seq, const absl::Status& s,
                     size_t written, bool known) {
  Pair& pr = pairs_[p];
  Channel& ch = pr.ch[e];
  if (pr.type == PairType::kSeqpacket) {
    // A message goes out whole or not at all; a failed write whose outcome
    // is unknown (loop write errors carry no count) might still have sent.
    if (s.ok()) ch.ok[seq] = 1;
    return;
  }
  if (!known) {
    ch.offsets_known = false;
    ch.complete = false;
    return;
  }
  ch.written.fetch_add(written);
}

void Run::ExpectAllowed(const absl::Status& s, int p, int e, bool write,
                        bool after_close, const char* what) {
  if (after_close) {
    Require(IsClosing(s) || absl::IsCancelled(s),
            std::string(what) + " after Close: " + s.ToString());
    return;
  }
  if (s.ok() || IsClosing(s) || IsDeadlineExceeded(s) || IsEof(s) ||
      absl::IsCancelled(s)) {
    return;
  }
  const int64_t code = OsErrorCode(s);
  if (code == EPIPE || code == ECONNRESET) return;
  if (!pairs_[p].CanWrite(write ? e : 1 - e)) {
    // The wrong end of a pipe: EBADF from the OS, or, for a read of the
    // write end after the poller reported EPOLLERR alone (the reader is
    // gone), Go's ErrNotPollable without the call.
    if (code == EBADF) return;
    if (!write && IsNotPollable(s)) return;
  }
  Fail(std::string(what) + ": unexpected status " + s.ToString());
}

void Run::ExpectDeadlineNotEarly(const absl::Status& s, const Pending& op) {
  if (!IsDeadlineExceeded(s) || !op.deadline_set) return;
  // A deadline changed while the call ran may end it sooner.
  if (E(op.pair, op.end).dl_epoch[op.write] != op.dl_epoch) return;
  const absl::Time now = op.returned;
  Require(now >= op.deadline,
          "deadline early by " + absl::FormatDuration(op.deadline - now));
}

void Run::Apply(Pending& op) {
  End& end = E(op.pair, op.end);
  end.busy[op.write] = false;
  const bool abandoned = !op.done.load();  // a coroutine destroyed waiting
  if (op.write) {
    if (abandoned) {
      ApplyWrite(op.pair, op.end, op.seq, absl::UnknownError("abandoned"), 0,
                 false);
      return;
    }
    ExpectAllowed(op.result.status(), op.pair, op.end, true, op.after_close,
                  "write");
    size_t w = op.result.ok() ? *op.result : op.written;
    ApplyWrite(op.pair, op.end, op.seq, op.result.status(), w,
               op.result.ok() || op.partial_known);
    if (op.result.ok()) {
      Require(*op.result == op.buf.size(), "write: short without error");
    }
    ExpectDeadlineNotEarly(op.result.status(), op);
    return;
  }
  if (abandoned) {
    // Nothing was read, or what was read comes with the next read.
    Pair& pr = pairs_[op.pair];
    if (pr.type == PairType::kSeqpacket && pr.CanWrite(1 - op.end)) {
      pr.ch[1 - op.end].abandoned_cap = op.buf.size();
    }
    return;
  }
  ExpectAllowed(op.result.status(), op.pair, op.end, false, op.after_close,
                "read");
  ExpectDeadlineNotEarly(op.result.status(), op);
  if (!op.result.ok()) return;
  Require(*op.result > 0 && *op.result <= op.buf.size(), "read: bad count");
  CheckRead(op.pair, op.end, absl::MakeConstSpan(op.buf.data(), *op.result),
            true, op.buf.size());
}

void Run::Collect(bool all) {
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  for (;;) {
    for (size_t i = 0; i < pending_.size();) {
      Pending& op = *pending_[i];
      if (op.done.load() || op.ended.load()) {
        Apply(op);
        pending_[i] = std::move(pending_.back());
        pending_.pop_back();
      } else {
        ++i;
      }
    }
    if (!all || pending_.empty()) return;
    Require(loop_ != nullptr, "pending loop operations without a loop");
    loop_->RunOnce(absl::Milliseconds(1));
    Require(absl::Now() < give_up, "hang: loop operations still pending");
  }
}

void Run::StartAsync(int p, int e, bool write, bool coroutine, size_t n) {
  End& end = E(p, e);
  if (end.busy[write]) return;  // one operation per direction in the model
  if (!end.closed) EnsureBounded(p, e, write);
  auto op = std::make_shared<Pending>();
  op->pair = p;
  op->end = e;
  op->write = write;
  op->after_close = end.closed;
  if (write) {
    op->buf = MakeWrite(p, e, n, &op->seq);
  } else {
    op->buf.resize(n);
  }
  end.busy[write] = true;
  pending_.push_back(op);
  if (coroutine && loop_) {
    op->coroutine = true;
    loop_->Spawn(CoOp(end.afd, op, EndMarker(op.get())));
    return;
  }
  auto cb = [op](absl::StatusOr<size_t> r) {
    op->result = std::move(r);
    op->done.store(true);
  };
  if (write) {
    end.afd.AsyncWrite(absl::MakeConstSpan(op->buf), std::move(cb));
  } else {
    end.afd.AsyncRead(absl::MakeSpan(op->buf), std::move(cb));
  }
  if (!loop_) Require(op->done.load(), "async op after the loop: not at once");
}

// A blocking call; `op` gets its result (runs on either thread).
void RunBlocking(FD& fd, Pending& op) {
  if (op.write) {
    op.partial_known = true;
    absl::StatusOr<size_t> r =
        fd.Write(absl::MakeConstSpan(op.buf), &op.written);
    op.result = std::move(r);
  } else {
    op.result = fd.Read(absl::MakeSpan(op.buf));
  }
  op.returned = absl::Now();
  op.done.store(true);
}

void Run::Blocking(int p, int e, bool write, size_t n) {
  End& end = E(p, e);
  if (end.busy[write]) return;
  if (LoopMode(end)) {
    // The main thread is the loop's thread: it never blocks on the loop's
    // FDs; the callback form instead.
    StartAsync(p, e, write, false, n);
    return;
  }
  if (!end.closed) EnsureBounded(p, e, write);
  Pending op;
  op.pair = p;
  op.end = e;
  op.write = write;
  op.after_close = end.closed;
  if (write) {
    op.buf = MakeWrite(p, e, n, &op.seq);
  } else {
    op.buf.resize(n);
  }
  op.deadline_set = end.dl[write] != Dl::kClear;
  op.deadline = end.dl_at[write];
  op.dl_epoch = end.dl_epoch[write];
  const Dl dl = end.dl[write];
  end.busy[write] = true;
  RunBlocking(end.f(), op);
  if (dl == Dl::kPast && !end.closed) {
    Require(IsDeadlineExceeded(op.result.status()),
            "past deadline did not fail the call: " +
                op.result.status().ToString());
  }
  Apply(op);
}

void Run::StartBg(int p, int e, bool write, size_t n) {
  JoinBg();
  End& end = E(p, e);
  if (end.busy[write]) return;
  if (!end.closed) EnsureBounded(p, e, write);
  auto op = std::make_shared<Pending>();
  op->pair = p;
  op->end = e;
  op->write = write;
  op->after_close = end.closed;
  if (write) {
    op->buf = MakeWrite(p, e, n, &op->seq);
  } else {
    op->buf.resize(n);
  }
  op->deadline_set = end.dl[write] != Dl::kClear;
  op->deadline = end.dl_at[write];
  op->dl_epoch = end.dl_epoch[write];
  end.busy[write] = true;
  bg_op_ = op;
  FD* fd = &end.f();
  bg_ = std::thread([fd, op] { RunBlocking(*fd, *op); });
}

void Run::JoinBg() {
  if (!bg_op_) return;
  // The call is bounded unless the input cleared its deadline meanwhile:
  // then end it with a past deadline. Meanwhile the loop runs (the call
  // may wait for the loop's poller to report readiness).
  const absl::Time start = absl::Now();
  bool forced = false;
  while (!bg_op_->done.load()) {
    if (loop_) {
      loop_->RunOnce(absl::Milliseconds(1));
    } else {
      absl::SleepFor(absl::Microseconds(200));
    }
    const absl::Duration waited = absl::Now() - start;
    if (!forced && waited > absl::Milliseconds(20)) {
      forced = true;
      Pending& op = *bg_op_;
      FD& fd = E(op.pair, op.end).f();
      (op.write ? fd.SetWriteDeadline(absl::Now())
                : fd.SetReadDeadline(absl::Now()))
          .IgnoreError();
      End& end = E(op.pair, op.end);
      end.dl[op.write] = Dl::kNear;
      end.dl_at[op.write] = absl::Now();
      ++end.dl_epoch[op.write];
    }
    Require(waited < absl::Seconds(5),
            "hang: blocking call on the second "
            "thread did not return");
  }
  bg_.join();
  Apply(*bg_op_);
  bg_op_.reset();
}

std::unique_ptr<Loop> Run::MakeLoop() {
  switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
    case 1: {
      // The memlock limit used up: the ring cannot be charged (ENOMEM).
      ScopedLimit l(RLIMIT_MEMLOCK, 0);
      absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create();
      Require(loop.ok(),
              "Loop::Create at the memlock limit: " + loop.status().ToString());
      return *std::move(loop);
    }
    case 2: {
      // Only a few descriptors free: a loop wakes or is not created.
      const int k = in_.ConsumeIntegralInRange<int>(0, 3);
      ScopedLimit l(RLIMIT_NOFILE, static_cast<rlim_t>(HighestFd() + 1 + k));
      absl::StatusOr<std::unique_ptr<Loop>> loop = Loop::Create();
      if (loop.ok()) return *std::move(loop);
      Require(OsErrorCode(loop.status()) == EMFILE,
              "Loop::Create with few descriptors: " + loop.status().ToString());
      return std::make_unique<Loop>();  // maybe without an OS poller
    }
    default:
      return std::make_unique<Loop>();
  }
}

void Run::TurnOnOtherThread(bool memlock_exhausted) {
  if (!loop_) return;
  std::thread([&] {
    std::optional<ScopedLimit> l;
    if (memlock_exhausted) l.emplace(RLIMIT_MEMLOCK, 0);
    loop_->RunOnce(absl::Microseconds(500));
  }).join();
}

void Run::DestroyLoop(bool on_other_thread) {
  if (!loop_) return;
  // Pending callbacks complete (Cancelled) inside the destructor; pending
  // coroutines are destroyed (their operations abandoned). Any thread
  // that does not run the loop may destroy it (loop.h).
  if (on_other_thread) {
    std::thread([&] { loop_.reset(); }).join();
  } else {
    loop_.reset();
  }
  // An operation the loop had handed to a helper thread (offload.h; e.g.
  // one started after its FD was closed: the FD is no longer on the
  // loop's poller) completes on that thread when it returns (loop.h).
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  for (auto& op : pending_) {
    while (!op->done.load() && !op->ended.load() && absl::Now() < give_up) {
      absl::SleepFor(absl::Microseconds(100));
    }
    Require(op->done.load() || op->ended.load(),
            "an operation survived its loop's destruction (pair " +
                std::to_string(op->pair) + " end " + std::to_string(op->end) +
                (op->write ? " write" : " read") +
                (op->coroutine ? " coroutine" : " callback") + ")");
  }
  Collect(false);
}

// Another thread moves the deadline between past and far future while the
// loop runs; it ends past or near, as the model then knows it.
void Run::FlipDeadline(int p, int e, bool write) {
  End& end = E(p, e);
  if (end.closed) return;
  const int flips = 1 + in_.ConsumeIntegralInRange<int>(0, 63);
  const Dl last = in_.ConsumeBool() ? Dl::kPast : Dl::kNear;
  FD* fd = &end.f();
  std::atomic<bool> done{false};
  absl::Status bad;
  std::thread t([fd, write, flips, &done, &bad] {
    for (int i = 0; i < flips && bad.ok(); ++i) {
      for (absl::Time at :
           {absl::Now() - absl::Seconds(1), absl::Now() + absl::Hours(1)}) {
        absl::Status s =
            write ? fd->SetWriteDeadline(at) : fd->SetReadDeadline(at);
        if (!s.ok()) bad = s;
      }
    }
    done.store(true);
  });
  // Operations that wait see the flips (on the loop's thread meanwhile).
  while (!done.load()) {
    if (loop_) {
      loop_->RunOnce(absl::ZeroDuration());
    } else {
      std::this_thread::yield();
    }
  }
  t.join();
  Require(bad.ok(), "SetDeadline from another thread: " + bad.ToString());
  SetDl(p, e, write, last);
}

// A reader of a dup of end `e`'s descriptor, on another thread, takes some
// of the bytes meant for `e` (they leave the model: the channel is no longer
// complete, stream offsets unknown). Operations of `e` that wait meanwhile
// must still end by their deadline or Close. Only ends in non-blocking mode
// (the loop's, the poller's): a blocking read could wait forever for bytes
// another reader took.
void Run::CompetingReader(int p, int e) {
  Pair& pr = pairs_[p];
  End& end = pr.end[e];
  if (end.closed || !pr.CanWrite(1 - e)) return;
  const int fd = static_cast<int>(end.f().sysfd());
  const int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || (fl & O_NONBLOCK) == 0) return;
  const int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  Require(dup_fd >= 0, "dup failed");
  Channel& ch = pr.ch[1 - e];
  ch.offsets_known = false;
  ch.complete = false;
  const int reads = 1 + in_.ConsumeIntegralInRange<int>(0, 7);
  std::atomic<bool> done{false};
  std::thread t([dup_fd, reads, &done] {
    char buf[2048];
    for (int i = 0; i < reads; ++i) {
      pollfd pfd{dup_fd, POLLIN, 0};
      if (::poll(&pfd, 1, 2) == 1) (void)!::read(dup_fd, buf, sizeof(buf));
    }
    done.store(true);
  });
  while (!done.load()) {
    if (loop_) {
      loop_->RunOnce(absl::Microseconds(200));
    } else {
      std::this_thread::yield();
    }
  }
  t.join();
  ::close(dup_fd);
}

void Run::Step() {
  const int p = in_.ConsumeIntegralInRange<int>(0, 2);
  const int e = in_.ConsumeIntegralInRange<int>(0, 1);
  const uint8_t op = in_.ConsumeIntegral<uint8_t>() % 16;
  if (Trace()) {
    std::fprintf(stderr, "step: pair %d end %d (mode %d%s) op %d\n", p, e,
                 static_cast<int>(E(p, e).mode),
                 E(p, e).closed ? ", closed" : "", op);
  }
  const bool seq = pairs_[p].type == PairType::kSeqpacket;
  // Sizes: reads of seqpacket messages hold at least their header.
  auto size = [&](bool write) -> size_t {
    if (write && in_.ConsumeIntegralInRange<int>(0, 7) == 0 && !seq) {
      return 300 * 1024;  // fills any pipe or socket buffer
    }
    size_t n = 1 + in_.ConsumeIntegralInRange<size_t>(0, 2047);
    if (seq) n = std::max<size_t>(n, kMsgHeader);
    return n;
  };
  End& end = E(p, e);
  switch (op) {
    case 0:
    case 1:
      Blocking(p, e, op == 1, size(op == 1));
      break;
    case 2:
    case 3: {
      Dl kind = static_cast<Dl>(in_.ConsumeIntegralInRange<int>(0, 2));
      SetDl(p, e, op == 3, kind);
      break;
    }
    case 4: {
      absl::Status s = end.f().Close();
      if (end.closed) {
        Require(IsClosing(s), "second Close: " + s.ToString());
      } else {
        Require(s.ok(), "Close: " + s.ToString());
      }
      if (!end.closed) {
        // Bytes in flight towards a closed reader are gone; a closed writer
        // loses nothing written before.
        pairs_[p].ch[1 - e].complete = false;
      }
      end.closed = true;
      break;
    }
    case 5: {
      const int how = in_.ConsumeIntegralInRange<int>(0, 2);
      absl::Status s = end.f().Shutdown(how);
      // The argument checks come first (a pipe is never a socket), then
      // the closed check.
      if (pairs_[p].type == PairType::kPipe) {
        Require(absl::IsInvalidArgument(s),
                "Shutdown of a pipe: " + s.ToString());
      } else if (end.closed) {
        Require(IsClosing(s), "Shutdown after Close: " + s.ToString());
      } else {
        Require(s.ok() || OsErrorCode(s) == ENOTCONN,
                "Shutdown: " + s.ToString());
        pairs_[p].ch[0].complete = false;
        pairs_[p].ch[1].complete = false;
      }
      break;
    }
    case 6:
    case 7:
    case 8:
    case 9:
      if (end.mode != Mode::kLoop) {
        Blocking(p, e, op & 1, size(op & 1));
      } else {
        StartAsync(p, e, op & 1, op >= 8 && loop_, size(op & 1));
      }
      break;
    case 10:
    case 11:
      StartBg(p, e, op == 11, size(op == 11));
      break;
    case 12:
      if (loop_) loop_->RunOnce(absl::Microseconds(500));
      break;
    case 13:
      JoinBg();
      break;
    case 14: {
      const int what = in_.ConsumeIntegralInRange<int>(0, 7);
      if (Trace()) std::fprintf(stderr, "  loop/flip/dup: %d\n", what);
      switch (what) {
        case 0:
          DestroyLoop();
          break;
        case 1:
          DestroyLoop(/*on_other_thread=*/true);
          break;
        case 2:
          TurnOnOtherThread(/*memlock_exhausted=*/false);
          break;
        case 3:
          TurnOnOtherThread(/*memlock_exhausted=*/true);
          break;
        case 4:
          FlipDeadline(p, e, in_.ConsumeBool());
          break;
        case 5:
          CompetingReader(p, e);
          break;
        default:
          break;
      }
      break;
    }
    default:
      if (loop_) loop_->RunOnce(absl::ZeroDuration());
      break;
  }
  Collect(false);
}

// Reads everything the channel towards `reader` still holds, up to EOF,
// after the writer end was closed; checks nothing was lost.
void Run::Drain(int p, int reader) {
  Pair& pr = pairs_[p];
  Channel& ch = pr.ch[1 - reader];
  End& end = pr.end[reader];
  int resets = 0;
  for (int i = 0; i < 100000; ++i) {
    auto op = std::make_shared<Pending>();
    op->pair = p;
    op->end = reader;
    op->buf.resize(64 * 1024);
    end.f().SetReadDeadline(absl::Now() + absl::Seconds(2)).IgnoreError();
    end.dl[0] = Dl::kNear;
    if (LoopMode(end)) {
      StartAsync(p, reader, false, false, op->buf.size());
      op = pending_.back();
      Collect(true);
    } else {
      end.busy[0] = true;
      RunBlocking(end.f(), *op);
      Apply(*op);
    }
    if (!op->result.ok()) {
      // A socket whose peer was closed with data unread reports ECONNRESET
      // once (Linux: a stream socket after the data left, a seqpacket one
      // before its queued messages), then the rest, then EOF.
      if (pr.type != PairType::kPipe &&
          OsErrorCode(op->result.status()) == ECONNRESET && ++resets < 2) {
        continue;
      }
      Require(IsEof(op->result.status()),
              "drain: " + op->result.status().ToString());
      break;
    }
  }
  if (pr.type == PairType::kSeqpacket) {
    for (size_t s = ch.last_read_seq + 1; s < ch.ok.size(); ++s) {
      Require(ch.ok[s] == 0, "seqpacket: message lost at the end");
    }
  } else if (ch.offsets_known) {
    Require(ch.read == ch.written.load(),
            "stream: read " + std::to_string(ch.read) + " of " +
                std::to_string(ch.written.load()) + " bytes written");
  }
}

void Run::Finish() {
  JoinBg();
  // End pending loop operations: a past deadline on every busy direction.
  for (auto& op : pending_) {
    FD& fd = E(op->pair, op->end).f();
    (op->write ? fd.SetWriteDeadline(absl::Now() - absl::Seconds(1))
               : fd.SetReadDeadline(absl::Now() - absl::Seconds(1)))
        .IgnoreError();
  }
  if (!pending_.empty() && !loop_) Fail("pending operations without a loop");
  Collect(true);
  for (int p = 0; p < 3; ++p) {
    Pair& pr = pairs_[p];
    for (int w = 0; w < 2; ++w) {
      const int r = 1 - w;
      if (!pr.CanWrite(w) || !pr.ch[w].complete || pr.end[r].closed) continue;
      if (!pr.end[w].closed && pr.type == PairType::kPipe) {
        Require(pr.end[w].f().Close().ok(), "Close of the writer");
        pr.end[w].closed = true;
      } else if (!pr.end[w].closed) {
        // Sockets: shut the writer's side down, so that the other
        // direction can be drained too (a close with unread data would
        // reset it).
        absl::Status s = pr.end[w].f().Shutdown(1);
        Require(s.ok(), "Shutdown of the writer: " + s.ToString());
      }
      if (LoopMode(pr.end[w])) {
        loop_->RunOnce(absl::ZeroDuration());  // finish the deferred close
      }
      Drain(p, r);
    }
  }
  for (auto& pr : pairs_) {
    for (End& end : pr.end) {
      if (!end.closed) Require(end.f().Close().ok(), "final Close");
      end.closed = true;
    }
  }
  DestroyLoop();
  for (auto& pr : pairs_) {
    for (End& end : pr.end) {
      end.fd.reset();
      end.afd = AsyncFd();
    }
  }
}

void Run::Go() {
  Setup();
  int steps = 0;
  while (in_.remaining_bytes() > 0 && steps++ < 200) Step();
  Finish();
}

}  // namespace
}  // namespace gopoll::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gopoll::fuzz::WarmUp();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int before = gopoll::fuzz::CountOpenFds();
  {
    FuzzedDataProvider in(data, size);
    gopoll::fuzz::Run run(in);
    run.Go();
  }
  gopoll::fuzz::ExpectFdCount(before);
  return 0;
}
