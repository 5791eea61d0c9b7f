// SPDX-License-Identifier: BSD-3-Clause
#include "poll/unix/uring_poller.h"

#include <errno.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/base/const_init.h"
#include "absl/base/internal/raw_logging.h"
#include "absl/synchronization/mutex.h"
#include "poll/errors.h"
#include "poll/internal/poll_desc.h"

namespace gopoll {

std::atomic<uint64_t> IoUringLoopPoller::cq_overflows{0};
std::atomic<uint64_t> IoUringLoopPoller::sq_full_flushes{0};
std::atomic<uint64_t> IoUringLoopPoller::wait_failures{0};
std::atomic<uint64_t> IoUringLoopPoller::cancels_lost{0};

namespace {

// user_data of the ring's own requests (operations are UringOp pointers,
// never this small).
constexpr uint64_t kEpollTag = 1;
constexpr uint64_t kCancelTag = 2;

// Waits after a failed io_uring_enter / io_uring_submit that is retried
// (bounded by the caller's timeout): never a busy loop.
void BackOff(int timeout_ms) {
  if (timeout_ms == 0) return;
  timespec ts{0, 1000000};  // 1 ms
  ::nanosleep(&ts, nullptr);
}

// What the kernel offers, probed until the answer is known: whether a ring
// can be set up and whether it has every opcode we use. A resource error of
// the probe's own ring (EMFILE, ENOMEM) decides nothing: the next call
// probes again (each Create reports its own ring's error).
absl::Mutex support_mu(absl::kConstInit);
bool support_known ABSL_GUARDED_BY(support_mu) = false;
absl::Status* support ABSL_GUARDED_BY(support_mu) = nullptr;

// The probe's verdict, or nullopt-like false if it could not tell.
bool ProbeSupport(absl::Status* out) {
  io_uring ring;
  int r = io_uring_queue_init(4, &ring, 0);
  if (r == -EMFILE || r == -ENFILE || r == -ENOMEM || r == -EAGAIN) {
    *out = ErrnoError("io_uring_setup", -r);
    return false;
  }
  if (r < 0) {
    *out = ErrnoError("io_uring_setup", -r);  // ENOSYS, EPERM: for good
    return true;
  }
  io_uring_queue_exit(&ring);
  io_uring_probe* probe = io_uring_get_probe();
  if (probe == nullptr) {
    *out = absl::UnavailableError("io_uring: no opcode probe");
    return false;
  }
  *out = absl::OkStatus();
  for (int op :
       {IORING_OP_READ, IORING_OP_WRITE, IORING_OP_SEND, IORING_OP_ACCEPT,
        IORING_OP_ASYNC_CANCEL, IORING_OP_POLL_ADD}) {
    if (!io_uring_opcode_supported(probe, op)) {
      *out = absl::UnavailableError("io_uring: opcode " + std::to_string(op) +
                                    " unsupported");
      break;
    }
  }
  io_uring_free_probe(probe);
  return true;
}

}  // namespace

absl::Status IoUringLoopPoller::Available() {
  absl::MutexLock l(&support_mu);
  if (support_known) return *support;
  absl::Status s;
  support_known = ProbeSupport(&s);
  if (support_known) support = new absl::Status(s);
  return s;
}

std::unique_ptr<IoUringLoopPoller> IoUringLoopPoller::Create(
    unsigned entries, absl::Status* why) {
  absl::Status s = Available();
  if (!s.ok()) {
    if (why != nullptr) *why = s;
    return nullptr;
  }
  if (s = internal::CheckRingEntries(entries); !s.ok()) {
    if (why != nullptr) *why = s;
    return nullptr;
  }
  std::unique_ptr<IoUringLoopPoller> p(new IoUringLoopPoller());
  // The ring's own wake-up path (its epoll instance and eventfd) first: a
  // ring nobody can interrupt would never see Post or Stop.
  s = p->epoll_.open_status();
  if (!s.ok()) {
    if (why != nullptr) *why = s;
    return nullptr;
  }
  // The probe may be older than a seccomp filter or sysctl change: this
  // ring is the real test. No setup flags: any thread may enter the ring
  // (see the header).
  int r = io_uring_queue_init(entries == 0 ? kDefaultEntries : entries,
                              &p->ring_, 0);
  if (r < 0) {
    if (why != nullptr) *why = ErrnoError("io_uring_setup", -r);
    return nullptr;  // ~IoUringLoopPoller leaves the zeroed ring alone
  }
  p->ring_ok_ = true;
  return p;
}

IoUringLoopPoller::~IoUringLoopPoller() {
  if (ring_ok_) io_uring_queue_exit(&ring_);
}

absl::Status IoUringLoopPoller::Register(intptr_t sysfd,
                                         internal::PollDesc* pd) {
  // A regular file's reads and writes go to the ring alone: readiness means
  // nothing for it (epoll refuses most, and calls the rest always ready).
  struct stat st;
  if (::fstat(static_cast<int>(sysfd), &st) == 0 && S_ISREG(st.st_mode)) {
    pd->poller_data = kRingOnlyData;
    return absl::OkStatus();
  }
  return epoll_.RegisterDormant(sysfd, pd);
}

void IoUringLoopPoller::Unregister(intptr_t sysfd, internal::PollDesc* pd) {
  if (RingOnly(*pd)) return;
  epoll_.Unregister(sysfd, pd);
}

io_uring_sqe* IoUringLoopPoller::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    // The submission queue is full: hand it to the kernel now (a cancel
    // must never wait for the end of the turn, and must never be dropped).
    sq_full_flushes.fetch_add(1, std::memory_order_relaxed);
    int r = io_uring_submit(&ring_);
    if (r < 0 && r != -EINTR) {
      // EBUSY: completions must be taken first (an overflowed queue);
      // EAGAIN: the kernel is short of memory for now. Collect, and try
      // again (after a pause if it was not the completion queue).
      if (r != -EBUSY) {
        wait_failures.fetch_add(1, std::memory_order_relaxed);
        BackOff(1);
      }
      io_uring_get_events(&ring_);
      Reap();
    }
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

UringOp* IoUringLoopPoller::NewOp(internal::Waiter* completion) {
  auto* op = new UringOp;
  op->waiter = completion;
  return op;
}

void IoUringLoopPoller::Submit(UringOp* op) {
  io_uring_sqe* sqe = GetSqe();
  posix::AsyncCall& c = op->call;
  switch (c.op) {
    case posix::AsyncCall::Op::kRead:
      io_uring_prep_read(sqe, c.fd, c.buf, static_cast<unsigned>(c.len),
                         static_cast<uint64_t>(c.off));
      break;
    case posix::AsyncCall::Op::kWrite:
      io_uring_prep_write(sqe, c.fd, c.buf, static_cast<unsigned>(c.len),
                          static_cast<uint64_t>(c.off));
      break;
    case posix::AsyncCall::Op::kSend:
      io_uring_prep_send(sqe, c.fd, c.buf, c.len, c.flags);
      break;
    case posix::AsyncCall::Op::kAccept:
      io_uring_prep_accept(sqe, c.fd, c.addr.get(), &c.addrlen, c.flags);
      break;
    case posix::AsyncCall::Op::kPoll:
      io_uring_prep_poll_add(sqe, c.fd, static_cast<unsigned>(c.flags));
      break;
    case posix::AsyncCall::Op::kNone:
      ABSL_RAW_LOG(FATAL, "poll: io_uring: an operation without a call");
  }
  if (c.never_inline) sqe->flags |= IOSQE_ASYNC;
  io_uring_sqe_set_data(sqe, op);
  op->prev = nullptr;
  op->next = inflight_;
  if (inflight_ != nullptr) inflight_->prev = op;
  inflight_ = op;
}

void IoUringLoopPoller::Cancel(UringOp* op) {
  if (op->done || op->cancel_sent) return;
  op->cancel_sent = true;
  io_uring_sqe* sqe = GetSqe();
  if (op->done) {  // GetSqe collected its completion meanwhile
    io_uring_prep_nop(sqe);
  } else {
    io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(op), 0);
  }
  io_uring_sqe_set_data64(sqe, kCancelTag);
}

void IoUringLoopPoller::Free(UringOp* op) { delete op; }

void IoUringLoopPoller::ArmEpoll() {
  int epfd = epoll_.epoll_fd();
  if (epfd < 0) return;
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_poll_multishot(sqe, epfd, POLLIN);
  io_uring_sqe_set_data64(sqe, kEpollTag);
  epoll_armed_ = true;
}

void IoUringLoopPoller::Complete(uint64_t data, int32_t res, uint32_t flags) {
  if (data == kCancelTag) {  // the cancelled operation reports
    if (res == -ENOENT || res == -EALREADY) {
      cancels_lost.fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  if (data == kEpollTag) {
    if (!(flags & IORING_CQE_F_MORE)) epoll_armed_ = false;
    // Readiness and Interrupt(). Events left in epoll's ready list would
    // not wake the ring's poll again: take them all.
    while (epoll_.PollCount(0) == EpollPoller::kMaxEvents) {
    }
    return;
  }
  auto* op = reinterpret_cast<UringOp*>(data);
  if (op->prev != nullptr) {
    op->prev->next = op->next;
  } else {
    inflight_ = op->next;
  }
  if (op->next != nullptr) op->next->prev = op->prev;
  op->prev = op->next = nullptr;
  op->call.res = res;
  op->done = true;
  op->waiter->Wake();  // queues the AsyncOp on the loop (no user code)
}

void IoUringLoopPoller::CollectPosted() {
  unsigned head;
  io_uring_cqe* cqe;
  unsigned n = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    Complete(cqe->user_data, cqe->res, cqe->flags);
    ++n;
  }
  io_uring_cq_advance(&ring_, n);
}

void IoUringLoopPoller::Reap() {
  for (;;) {
    CollectPosted();
    if (!(IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW)) {
      return;
    }
    // The kernel kept completions that did not fit: flush them in.
    cq_overflows.fetch_add(1, std::memory_order_relaxed);
    io_uring_get_events(&ring_);
  }
}

void IoUringLoopPoller::Poll(int timeout_ms) {
  if (!epoll_armed_) ArmEpoll();
  int r;
  if (timeout_ms == 0) {
    r = io_uring_submit_and_get_events(&ring_);
  } else if (timeout_ms < 0) {
    r = io_uring_submit_and_wait(&ring_, 1);
  } else {
    __kernel_timespec ts{};
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
    io_uring_cqe* cqe = nullptr;
    r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  if (r < 0 && r != -EINTR && r != -ETIME && r != -EBUSY) {
    // Nothing the loop can fix (EAGAIN or ENOMEM for now, or a broken
    // ring): what was posted is still collected, the next turn tries
    // again, after a pause (no busy loop). Counted, never fatal. (EBUSY:
    // the completions Reap takes make room.)
    wait_failures.fetch_add(1, std::memory_order_relaxed);
    BackOff(timeout_ms);
  }
  Reap();
}

absl::StatusOr<std::unique_ptr<internal::Poller>> internal::NewLoopPoller(
    LoopBackend backend, unsigned ring_entries) {
  if (backend == LoopBackend::kDefault) {
    const char* env = std::getenv("GOPOLL_LOOP_BACKEND");
    std::string_view want = env != nullptr ? env : "";
    backend = want == "epoll" ? LoopBackend::kEpoll : LoopBackend::kIoUring;
  }
  if (backend != LoopBackend::kEpoll) {
    // Any refusal (io_uring disabled, EMFILE, ENOMEM at the memlock limit,
    // EINVAL) falls back to epoll; backend_name() tells.
    std::unique_ptr<IoUringLoopPoller> p =
        IoUringLoopPoller::Create(ring_entries, nullptr);
    if (p != nullptr) return p;
  }
  auto p = std::make_unique<EpollPoller>(/*loop_owned=*/true);
  absl::Status s = p->open_status();
  if (!s.ok()) return s;  // nothing could wake the loop
  return p;
}

}  // namespace gopoll
