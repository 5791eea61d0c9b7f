// SPDX-License-Identifier: BSD-3-Clause
#include "bench/loop_bodies.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
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

void MakePipe(int p[2]) {
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) Die("pipe2");
}

// A loopback TCP connection as a one-way channel: p[0] reads, p[1] writes.
void MakeTcp(int p[2]) {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0) Die("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::listen(l, 1) != 0 ||
      ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    Die("listen");
  }
  p[1] = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (p[1] < 0 ||
      ::connect(p[1], reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    Die("connect");
  }
  p[0] = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  if (p[0] < 0) Die("accept4");
  ::close(l);
  const int one = 1;
  for (int fd : {p[0], p[1]}) {
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
  }
}

}  // namespace

struct LoopPingPong::Impl {
  LoopForm form;
  int p1[2], p2[2];  // A -> B, B -> A
  int64_t bad = 0;

  // kRawEpoll
  int ep = -1;
  // kRawUring
  io_uring ring{};
  bool ring_ok = false;
  // Loop forms
  std::unique_ptr<Loop> loop;
  AsyncFd a_out, a_in, b_in, b_out;

  Impl(LoopForm f, LoopBackend backend, LoopTransport transport) : form(f) {
    const bool tcp = transport == LoopTransport::kTcp;
    if (tcp) {
      MakeTcp(p1);
      MakeTcp(p2);
    } else {
      MakePipe(p1);
      MakePipe(p2);
    }
    if (form == LoopForm::kRawUring) {
      // Blocking pipes: the ring waits for them itself.
      for (int fd : {p1[0], p1[1], p2[0], p2[1]}) ::fcntl(fd, F_SETFL, 0);
      unsigned flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
      int r = io_uring_queue_init(8, &ring, flags);
      if (r == -EINVAL) r = io_uring_queue_init(8, &ring, 0);
      ring_ok = r == 0;
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
    LoopOptions o;
    o.backend = backend;
    loop = std::make_unique<Loop>(o);
    auto adopt = [&](int fd) {
      absl::StatusOr<AsyncFd> a =
          loop->Adopt(fd, tcp ? FdKind::kNet : FdKind::kPipe);
      if (!a.ok()) Die("Adopt");
      return *a;
    };
    b_in = adopt(p1[0]);
    a_out = adopt(p1[1]);
    a_in = adopt(p2[0]);
    b_out = adopt(p2[1]);
  }

  ~Impl() {
    if (form == LoopForm::kRawUring) {
      if (ring_ok) io_uring_queue_exit(&ring);
      for (int fd : {p1[0], p1[1], p2[0], p2[1]}) ::close(fd);
    }
    if (ep >= 0) {
      ::close(ep);
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

  // The raw liburing loop: a read pending on each pipe; a completed read
  // queues the write (and, on B, the next read) for the next turn.
  enum : uint64_t { kReadB = 1, kReadA = 2, kWrite = 3 };
  void Queue(uint64_t tag, int fd, char* buf, unsigned len, bool write) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) Die("io_uring_get_sqe");
    if (write) {
      io_uring_prep_write(sqe, fd, buf, len, static_cast<uint64_t>(-1));
    } else {
      io_uring_prep_read(sqe, fd, buf, len, static_cast<uint64_t>(-1));
    }
    io_uring_sqe_set_data64(sqe, tag);
  }
  int64_t RunRawUring(int64_t rounds) {
    char a_buf[kReadBuf], b_buf[kReadBuf], b_echo = 0, sent = 0, next = 0;
    int64_t done = 0;
    Queue(kReadB, p1[0], b_buf, kReadBuf, false);
    Queue(kReadA, p2[0], a_buf, kReadBuf, false);
    sent = next++;
    Queue(kWrite, p1[1], &sent, 1, true);
    while (done < rounds) {
      if (io_uring_submit_and_wait(&ring, 1) < 0) Die("io_uring_submit");
      unsigned head, n = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++n;
        const uint64_t tag = cqe->user_data;
        if (tag == kWrite) {
          if (cqe->res != 1) Die("ring write");
        } else if (tag == kReadB) {
          if (cqe->res != 1) Die("ring read B");
          b_echo = b_buf[0];
          Queue(kWrite, p2[1], &b_echo, 1, true);
          Queue(kReadB, p1[0], b_buf, kReadBuf, false);
        } else {
          if (cqe->res != 1) Die("ring read A");
          if (a_buf[0] != sent) ++bad;
          if (++done < rounds) {
            sent = next++;
            Queue(kWrite, p1[1], &sent, 1, true);
            Queue(kReadA, p2[0], a_buf, kReadBuf, false);
          }
        }
      }
      io_uring_cq_advance(&ring, n);
    }
    // B's last read stays pending: cancel it so the next run starts clean.
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_cancel64(sqe, kReadB, 0);
    io_uring_sqe_set_data64(sqe, 0);
    for (int seen = 0; seen < 2;) {
      if (io_uring_submit_and_wait(&ring, 1) < 0) Die("io_uring_submit");
      unsigned head, n = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++n;
        if (cqe->user_data == kReadB || cqe->user_data == 0) ++seen;
      }
      io_uring_cq_advance(&ring, n);
    }
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

LoopPingPong::LoopPingPong(LoopForm form, LoopBackend backend,
                           LoopTransport transport)
    : impl_(std::make_unique<Impl>(form, backend, transport)) {}

bool LoopPingPong::ok() const {
  return impl_->form != LoopForm::kRawUring || impl_->ring_ok;
}
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
