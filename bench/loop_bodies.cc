// SPDX-License-Identifier: BSD-3-Clause
#include "bench/loop_bodies.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>

#include "poll/loop/loop.h"

namespace gopoll::bench {
namespace {

[[noreturn]] void Die(const char* what) {
  std::perror(what);
  std::abort();
}

// Both sides read into a buffer larger than the 1-byte message, as servers
// do (the raw loop too: same work).
constexpr size_t kReadBuf = 64;

void MakePipe(int p[2], bool nonblock = true) {
  if (pipe2(p, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0)) != 0) Die("pipe2");
}

// The raw io_uring loop's ring: SINGLE_ISSUER + DEFER_TASKRUN (kernel 6.1+)
// where the kernel takes them, plain otherwise. Returns -errno on failure.
int InitRing(io_uring* ring) {
  io_uring_params p;
  memset(&p, 0, sizeof(p));
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int r = io_uring_queue_init_params(8, ring, &p);
  if (r == -EINVAL) {
    memset(&p, 0, sizeof(p));
    r = io_uring_queue_init_params(8, ring, &p);
  }
  return r;
}

// user_data of the raw io_uring loop's operations.
enum UringOp : uint64_t { kBRead = 1, kARead, kAWrite, kBWrite };

}  // namespace

bool RawUringAvailable() {
  io_uring ring;
  if (InitRing(&ring) != 0) return false;
  io_uring_queue_exit(&ring);
  return true;
}

struct LoopPingPong::Impl {
  LoopForm form;
  int p1[2], p2[2];  // A -> B, B -> A
  int64_t bad = 0;

  // kRawEpoll
  int ep = -1;
  // kRawUring: the ring; whether each side's read is in flight (a Run ends
  // with B's next read submitted; the next Run goes on from there).
  io_uring ring{};
  bool uring = false, a_read_armed = false, b_read_armed = false;
  char ua_buf[kReadBuf], ub_buf[kReadBuf], ub_echo = 0, u_sent = 0, u_next = 0;
  // Loop forms
  std::unique_ptr<Loop> loop;
  AsyncFd a_out, a_in, b_in, b_out;

  explicit Impl(LoopForm f) : form(f) {
    // io_uring honours O_NONBLOCK (a read would end with -EAGAIN instead of
    // waiting in the kernel): its pipes block.
    MakePipe(p1, form != LoopForm::kRawUring);
    MakePipe(p2, form != LoopForm::kRawUring);
    if (form == LoopForm::kRawUring) {
      int r = InitRing(&ring);
      if (r != 0) {
        errno = -r;
        Die("io_uring_queue_init_params");
      }
      uring = true;
      return;
    }
    if (form == LoopForm::kRawEpoll) {
      ep = epoll_create1(EPOLL_CLOEXEC);
      if (ep < 0) Die("epoll_create1");
      for (int fd : {p1[0], p2[0]}) {
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.fd = fd;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0) Die("epoll_ctl");
      }
      return;
    }
    loop = std::make_unique<Loop>();
    auto adopt = [&](int fd) {
      absl::StatusOr<AsyncFd> a = loop->Adopt(fd, FdKind::kPipe);
      if (!a.ok()) Die("Adopt");
      return *a;
    };
    b_in = adopt(p1[0]);
    a_out = adopt(p1[1]);
    a_in = adopt(p2[0]);
    b_out = adopt(p2[1]);
  }

  ~Impl() {
    if (uring) io_uring_queue_exit(&ring);  // cancels the reads in flight
    if (ep >= 0 || uring) {
      if (ep >= 0) ::close(ep);
      for (int fd : {p1[0], p1[1], p2[0], p2[1]}) ::close(fd);
    }
    // Loop forms: the AsyncFds close their descriptors.
  }

  int64_t RunRaw(int64_t rounds) {
    char c = 0, sent = 0;
    int64_t done = 0;
    sent = c++;
    if (::write(p1[1], &sent, 1) != 1) Die("write");
    epoll_event evs[2];
    while (done < rounds) {
      int n = epoll_wait(ep, evs, 2, -1);
      for (int i = 0; i < n; ++i) {
        char b[kReadBuf];
        if (evs[i].data.fd == p1[0]) {  // side B: echo
          if (::read(p1[0], b, kReadBuf) != 1) Die("read");
          if (::write(p2[1], b, 1) != 1) Die("write");
        } else {  // side A: check, send the next
          if (::read(p2[0], b, kReadBuf) != 1) Die("read");
          if (b[0] != sent) ++bad;
          if (++done < rounds) {
            sent = c++;
            if (::write(p1[1], &sent, 1) != 1) Die("write");
          }
        }
      }
    }
    return bad;
  }

  io_uring_sqe* Sqe() {
    io_uring_sqe* e = io_uring_get_sqe(&ring);
    if (e == nullptr) Die("io_uring_get_sqe");
    return e;
  }
  void SubmitRead(int fd, char* buf, UringOp op) {
    io_uring_sqe* e = Sqe();
    io_uring_prep_read(e, fd, buf, kReadBuf, 0);
    io_uring_sqe_set_data64(e, op);
  }
  void SubmitWrite(int fd, const char* buf, UringOp op) {
    io_uring_sqe* e = Sqe();
    io_uring_prep_write(e, fd, buf, 1, 0);
    io_uring_sqe_set_data64(e, op);
  }

  int64_t RunRawUring(int64_t rounds) {
    int64_t done = 0;
    if (!b_read_armed) SubmitRead(p1[0], ub_buf, kBRead);
    if (!a_read_armed) SubmitRead(p2[0], ua_buf, kARead);
    b_read_armed = a_read_armed = true;
    u_sent = u_next++;
    SubmitWrite(p1[1], &u_sent, kAWrite);
    while (done < rounds) {
      if (io_uring_submit_and_wait(&ring, 1) < 0) Die("submit_and_wait");
      io_uring_cqe* cqe;
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++seen;
        const int res = cqe->res;
        switch (io_uring_cqe_get_data64(cqe)) {
          case kBRead:  // side B: echo, read again
            if (res != 1) Die("B read");
            ub_echo = ub_buf[0];
            SubmitWrite(p2[1], &ub_echo, kBWrite);
            SubmitRead(p1[0], ub_buf, kBRead);
            break;
          case kARead:  // side A: check, send the next
            a_read_armed = false;
            if (res != 1) Die("A read");
            if (ua_buf[0] != u_sent) ++bad;
            if (++done < rounds) {
              u_sent = u_next++;
              SubmitWrite(p1[1], &u_sent, kAWrite);
              SubmitRead(p2[0], ua_buf, kARead);
              a_read_armed = true;
            }
            break;
          default:  // a write
            if (res != 1) Die("write");
        }
      }
      io_uring_cq_advance(&ring, seen);
    }
    // Submit what the last turn prepared (B's next read, maybe its last
    // echo); their completions are reaped by the next Run.
    if (io_uring_submit(&ring) < 0) Die("submit");
    return bad;
  }

  // Callbacks: each side chains its next operation from the callback.
  int64_t RunCallback(int64_t rounds) {
    int64_t done = 0;
    char a_buf[kReadBuf], b_buf[kReadBuf], sent = 0, next = 0;
    bool failed = false;
    std::function<void()> b_read, a_read;
    b_read = [&] {
      b_in.AsyncRead(absl::MakeSpan(b_buf), [&](absl::StatusOr<size_t> n) {
        if (!n.ok() || *n != 1) {
          failed = true;
          return;
        }
        b_out.AsyncWrite(absl::string_view(b_buf, 1),
                         [&](absl::StatusOr<size_t> w) {
                           if (!w.ok()) failed = true;
                         });
        if (done + 1 < rounds) b_read();
      });
    };
    a_read = [&] {
      a_in.AsyncRead(absl::MakeSpan(a_buf), [&](absl::StatusOr<size_t> n) {
        if (!n.ok() || *n != 1) {
          failed = true;
          return;
        }
        if (a_buf[0] != sent) ++bad;
        if (++done < rounds) {
          sent = next++;
          a_out.AsyncWrite(absl::string_view(&sent, 1),
                           [&](absl::StatusOr<size_t> w) {
                             if (!w.ok()) failed = true;
                           });
          a_read();
        }
      });
    };
    b_read();
    a_read();
    sent = next++;
    a_out.AsyncWrite(absl::string_view(&sent, 1),
                     [&](absl::StatusOr<size_t> w) {
                       if (!w.ok()) failed = true;
                     });
    while (done < rounds && !failed) loop->RunOnce();
    while (loop->RunOnce(absl::ZeroDuration()) > 0) {
    }
    if (failed) Die("callback ping-pong failed");
    return bad;
  }

  static Task<void> SideB(AsyncFd in, AsyncFd out, int64_t rounds) {
    char b[kReadBuf];
    for (int64_t i = 0; i < rounds; ++i) {
      absl::StatusOr<size_t> n = co_await in.Read(absl::MakeSpan(b));
      if (!n.ok() || *n != 1) Die("B read");
      if (!(co_await out.Write(absl::string_view(b, 1))).ok()) Die("B write");
    }
  }

  static Task<void> SideA(AsyncFd out, AsyncFd in, int64_t rounds, int64_t* bad,
                          int64_t* done) {
    char c = 0, b[kReadBuf];
    for (int64_t i = 0; i < rounds; ++i) {
      char sent = c++;
      if (!(co_await out.Write(absl::string_view(&sent, 1))).ok()) {
        Die("A write");
      }
      absl::StatusOr<size_t> n = co_await in.Read(absl::MakeSpan(b));
      if (!n.ok() || *n != 1) Die("A read");
      if (b[0] != sent) ++*bad;
      ++*done;
    }
  }

  int64_t RunCoroutine(int64_t rounds) {
    int64_t done = 0;
    loop->Spawn(SideB(b_in, b_out, rounds));
    loop->Spawn(SideA(a_out, a_in, rounds, &bad, &done));
    while (done < rounds) loop->RunOnce();
    while (loop->RunOnce(absl::ZeroDuration()) > 0) {
    }
    return bad;
  }
};

LoopPingPong::LoopPingPong(LoopForm form)
    : impl_(std::make_unique<Impl>(form)) {}
LoopPingPong::~LoopPingPong() = default;

int64_t LoopPingPong::Run(int64_t rounds) {
  switch (impl_->form) {
    case LoopForm::kRawEpoll:
      return impl_->RunRaw(rounds);
    case LoopForm::kRawUring:
      return impl_->RunRawUring(rounds);
    case LoopForm::kCallback:
      return impl_->RunCallback(rounds);
    case LoopForm::kCoroutine:
      return impl_->RunCoroutine(rounds);
  }
  return -1;
}

}  // namespace gopoll::bench
