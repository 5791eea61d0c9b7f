// SPDX-License-Identifier: BSD-3-Clause
// The rule table and the __wrap_* entry points of fault_injection.h. The
// linker (-Wl,--wrap=read) sends the binary's calls of read() to
// __wrap_read(), and __real_read() to the C library's read().
#include "poll/testing/fault_injection.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "absl/base/const_init.h"
#include "absl/synchronization/mutex.h"

extern "C" {
ssize_t __real_read(int, void*, size_t);
ssize_t __real_write(int, const void*, size_t);
ssize_t __real_readv(int, const iovec*, int);
ssize_t __real_writev(int, const iovec*, int);
ssize_t __real_pread(int, void*, size_t, off_t);
ssize_t __real_pwrite(int, const void*, size_t, off_t);
ssize_t __real_recvmsg(int, msghdr*, int);
ssize_t __real_sendmsg(int, const msghdr*, int);
ssize_t __real_recvfrom(int, void*, size_t, int, sockaddr*, socklen_t*);
ssize_t __real_send(int, const void*, size_t, int);
ssize_t __real_sendto(int, const void*, size_t, int, const sockaddr*,
                      socklen_t);
int __real_accept4(int, sockaddr*, socklen_t*, int);
int __real_connect(int, const sockaddr*, socklen_t);
int __real_shutdown(int, int);
int __real_close(int);
int __real_poll(pollfd*, nfds_t, int);
int __real_epoll_wait(int, epoll_event*, int, int);
int __real_epoll_create1(int);
int __real_eventfd(unsigned int, int);
int __real_io_uring_queue_init(unsigned, io_uring*, unsigned);
int __real_io_uring_submit(io_uring*);
int __real_io_uring_submit_and_wait(io_uring*, unsigned);
int __real_io_uring_submit_and_wait_timeout(io_uring*, io_uring_cqe**, unsigned,
                                            __kernel_timespec*, sigset_t*);
int __real_io_uring_submit_and_get_events(io_uring*);
}

namespace gopoll::testing {
namespace {

struct Entry {
  int id;
  Rule rule;
  int64_t seen = 0;   // matching calls so far
  int64_t fired = 0;  // times it fired
};

absl::Mutex mu(absl::kConstInit);
std::vector<Entry>* rules ABSL_GUARDED_BY(mu) = nullptr;
int next_id ABSL_GUARDED_BY(mu) = 1;
uint64_t seed ABSL_GUARDED_BY(mu) = 0x9e3779b97f4a7c15ull;
// Fast path: no rule, no lock.
std::atomic<int> active{0};

uint64_t Mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// What the rules decided for one call.
struct Decision {
  int err = 0;
  size_t max_bytes = 0;  // 0: no cap
  int64_t delay_us = 0;
};

Decision Decide(uint32_t call, int fd) {
  Decision d;
  if (active.load(std::memory_order_acquire) == 0) return d;
  absl::MutexLock l(&mu);
  if (rules == nullptr) return d;
  for (Entry& e : *rules) {
    const Rule& r = e.rule;
    if ((r.calls & call) == 0 || (r.fd >= 0 && r.fd != fd)) continue;
    if (r.times >= 0 && e.fired >= r.times) continue;
    const uint64_t h = Mix(seed ^ Mix(static_cast<uint64_t>(e.id) << 32 ^
                                      static_cast<uint64_t>(e.seen++)));
    if (r.one_in > 1 && h % r.one_in != 0) continue;
    ++e.fired;
    if (r.delay_max_us > 0) {
      d.delay_us += static_cast<int64_t>(
          (h >> 8) % static_cast<uint64_t>(r.delay_max_us + 1));
    }
    if (r.max_bytes > 0) {
      d.max_bytes =
          d.max_bytes == 0 ? r.max_bytes : std::min(d.max_bytes, r.max_bytes);
    }
    if (r.err != 0 && d.err == 0) d.err = r.err;
  }
  return d;
}

void Delay(int64_t us) {
  if (us <= 0) return;
  timespec ts{static_cast<time_t>(us / 1000000),
              static_cast<long>(us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

// Applies the delay; true (and errno set) if the call must fail instead.
bool Fail(const Decision& d) {
  Delay(d.delay_us);
  if (d.err == 0) return false;
  errno = d.err;
  return true;
}

size_t Cap(const Decision& d, size_t n) {
  return d.max_bytes > 0 ? std::min(n, d.max_bytes) : n;
}

// The first buffers of `iov` holding at most `max` bytes (max 0: all).
std::vector<iovec> CapIov(const iovec* iov, int cnt, size_t max) {
  std::vector<iovec> out;
  size_t left = max;
  for (int i = 0; i < cnt; ++i) {
    iovec v = iov[i];
    if (max > 0) {
      if (left == 0) break;
      v.iov_len = std::min(v.iov_len, left);
      left -= v.iov_len;
    }
    out.push_back(v);
  }
  if (out.empty() && cnt > 0) out.push_back({iov[0].iov_base, 0});
  return out;
}

}  // namespace

const char* CallName(uint32_t call) {
  switch (call) {
    case kRead:
      return "read";
    case kWrite:
      return "write";
    case kReadv:
      return "readv";
    case kWritev:
      return "writev";
    case kPread:
      return "pread";
    case kPwrite:
      return "pwrite";
    case kRecvmsg:
      return "recvmsg";
    case kSendmsg:
      return "sendmsg";
    case kRecvfrom:
      return "recvfrom";
    case kSendto:
      return "sendto";
    case kAccept4:
      return "accept4";
    case kConnect:
      return "connect";
    case kShutdown:
      return "shutdown";
    case kClose:
      return "close";
    case kPoll:
      return "poll";
    case kEpollWait:
      return "epoll_wait";
    case kEpollCreate:
      return "epoll_create1";
    case kEventfd:
      return "eventfd";
    case kIoUringSetup:
      return "io_uring_setup";
    case kIoUringEnter:
      return "io_uring_enter";
    default:
      return "?";
  }
}

int AddRule(const Rule& rule) {
  absl::MutexLock l(&mu);
  if (rules == nullptr) rules = new std::vector<Entry>();
  const int id = next_id++;
  rules->push_back(Entry{id, rule});
  active.store(static_cast<int>(rules->size()), std::memory_order_release);
  return id;
}

void RemoveRule(int id) {
  absl::MutexLock l(&mu);
  if (rules == nullptr) return;
  rules->erase(std::remove_if(rules->begin(), rules->end(),
                              [&](const Entry& e) { return e.id == id; }),
               rules->end());
  active.store(static_cast<int>(rules->size()), std::memory_order_release);
}

void ClearRules() {
  absl::MutexLock l(&mu);
  if (rules != nullptr) rules->clear();
  active.store(0, std::memory_order_release);
}

int64_t Fired(int id) {
  absl::MutexLock l(&mu);
  if (rules == nullptr) return 0;
  for (const Entry& e : *rules) {
    if (e.id == id) return e.fired;
  }
  return 0;
}

void SeedFaults(uint64_t s) {
  absl::MutexLock l(&mu);
  seed = Mix(s);
}

}  // namespace gopoll::testing

namespace t = gopoll::testing;

extern "C" {

ssize_t __wrap_read(int fd, void* buf, size_t n) {
  t::Decision d = t::Decide(t::kRead, fd);
  if (t::Fail(d)) return -1;
  return __real_read(fd, buf, t::Cap(d, n));
}

ssize_t __wrap_write(int fd, const void* buf, size_t n) {
  t::Decision d = t::Decide(t::kWrite, fd);
  if (t::Fail(d)) return -1;
  return __real_write(fd, buf, t::Cap(d, n));
}

ssize_t __wrap_readv(int fd, const iovec* iov, int cnt) {
  t::Decision d = t::Decide(t::kReadv, fd);
  if (t::Fail(d)) return -1;
  if (d.max_bytes == 0) return __real_readv(fd, iov, cnt);
  std::vector<iovec> v = t::CapIov(iov, cnt, d.max_bytes);
  return __real_readv(fd, v.data(), static_cast<int>(v.size()));
}

ssize_t __wrap_writev(int fd, const iovec* iov, int cnt) {
  t::Decision d = t::Decide(t::kWritev, fd);
  if (t::Fail(d)) return -1;
  if (d.max_bytes == 0) return __real_writev(fd, iov, cnt);
  std::vector<iovec> v = t::CapIov(iov, cnt, d.max_bytes);
  return __real_writev(fd, v.data(), static_cast<int>(v.size()));
}

ssize_t __wrap_pread(int fd, void* buf, size_t n, off_t off) {
  t::Decision d = t::Decide(t::kPread, fd);
  if (t::Fail(d)) return -1;
  return __real_pread(fd, buf, t::Cap(d, n), off);
}

ssize_t __wrap_pwrite(int fd, const void* buf, size_t n, off_t off) {
  t::Decision d = t::Decide(t::kPwrite, fd);
  if (t::Fail(d)) return -1;
  return __real_pwrite(fd, buf, t::Cap(d, n), off);
}

ssize_t __wrap_recvmsg(int fd, msghdr* h, int flags) {
  t::Decision d = t::Decide(t::kRecvmsg, fd);
  if (t::Fail(d)) return -1;
  if (d.max_bytes == 0) return __real_recvmsg(fd, h, flags);
  std::vector<iovec> v =
      t::CapIov(h->msg_iov, static_cast<int>(h->msg_iovlen), d.max_bytes);
  iovec* saved = h->msg_iov;
  size_t saved_len = h->msg_iovlen;
  h->msg_iov = v.data();
  h->msg_iovlen = v.size();
  ssize_t r = __real_recvmsg(fd, h, flags);
  const int e = errno;
  h->msg_iov = saved;
  h->msg_iovlen = saved_len;
  errno = e;
  return r;
}

ssize_t __wrap_sendmsg(int fd, const msghdr* h, int flags) {
  t::Decision d = t::Decide(t::kSendmsg, fd);
  if (t::Fail(d)) return -1;
  if (d.max_bytes == 0) return __real_sendmsg(fd, h, flags);
  std::vector<iovec> v =
      t::CapIov(h->msg_iov, static_cast<int>(h->msg_iovlen), d.max_bytes);
  msghdr c = *h;
  c.msg_iov = v.data();
  c.msg_iovlen = v.size();
  return __real_sendmsg(fd, &c, flags);
}

ssize_t __wrap_recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* a,
                        socklen_t* al) {
  t::Decision d = t::Decide(t::kRecvfrom, fd);
  if (t::Fail(d)) return -1;
  return __real_recvfrom(fd, buf, t::Cap(d, n), flags, a, al);
}

ssize_t __wrap_send(int fd, const void* buf, size_t n, int flags) {
  t::Decision d = t::Decide(t::kSend, fd);
  if (t::Fail(d)) return -1;
  return __real_send(fd, buf, t::Cap(d, n), flags);
}

ssize_t __wrap_sendto(int fd, const void* buf, size_t n, int flags,
                      const sockaddr* a, socklen_t al) {
  t::Decision d = t::Decide(t::kSendto, fd);
  if (t::Fail(d)) return -1;
  return __real_sendto(fd, buf, t::Cap(d, n), flags, a, al);
}

int __wrap_accept4(int fd, sockaddr* a, socklen_t* al, int flags) {
  if (t::Fail(t::Decide(t::kAccept4, fd))) return -1;
  return __real_accept4(fd, a, al, flags);
}

int __wrap_connect(int fd, const sockaddr* a, socklen_t al) {
  if (t::Fail(t::Decide(t::kConnect, fd))) return -1;
  return __real_connect(fd, a, al);
}

int __wrap_shutdown(int fd, int how) {
  if (t::Fail(t::Decide(t::kShutdown, fd))) return -1;
  return __real_shutdown(fd, how);
}

// Linux releases the descriptor even when close fails (EINTR, EIO): an
// injected error is reported after the real close, as the kernel would.
int __wrap_close(int fd) {
  t::Decision d = t::Decide(t::kClose, fd);
  t::Delay(d.delay_us);
  const int r = __real_close(fd);
  if (d.err != 0) {
    errno = d.err;
    return -1;
  }
  return r;
}

int __wrap_poll(pollfd* fds, nfds_t n, int timeout) {
  if (t::Fail(t::Decide(t::kPoll, n == 1 ? fds[0].fd : -1))) return -1;
  return __real_poll(fds, n, timeout);
}

int __wrap_epoll_wait(int epfd, epoll_event* ev, int max, int timeout) {
  if (t::Fail(t::Decide(t::kEpollWait, epfd))) return -1;
  return __real_epoll_wait(epfd, ev, max, timeout);
}

int __wrap_epoll_create1(int flags) {
  if (t::Fail(t::Decide(t::kEpollCreate, -1))) return -1;
  return __real_epoll_create1(flags);
}

int __wrap_eventfd(unsigned int initval, int flags) {
  if (t::Fail(t::Decide(t::kEventfd, -1))) return -1;
  return __real_eventfd(initval, flags);
}

// liburing's calls return -errno instead of setting errno.
int __wrap_io_uring_queue_init(unsigned entries, io_uring* ring,
                               unsigned flags) {
  t::Decision d = t::Decide(t::kIoUringSetup, -1);
  t::Delay(d.delay_us);
  if (d.err != 0) return -d.err;
  return __real_io_uring_queue_init(entries, ring, flags);
}

namespace {
int EnterFault(io_uring* ring) {
  t::Decision d = t::Decide(t::kIoUringEnter, ring->ring_fd);
  t::Delay(d.delay_us);
  return -d.err;
}
}  // namespace

int __wrap_io_uring_submit(io_uring* ring) {
  if (int e = EnterFault(ring)) return e;
  return __real_io_uring_submit(ring);
}

int __wrap_io_uring_submit_and_wait(io_uring* ring, unsigned n) {
  if (int e = EnterFault(ring)) return e;
  return __real_io_uring_submit_and_wait(ring, n);
}

int __wrap_io_uring_submit_and_wait_timeout(io_uring* ring, io_uring_cqe** c,
                                            unsigned n, __kernel_timespec* ts,
                                            sigset_t* sig) {
  if (int e = EnterFault(ring)) return e;
  return __real_io_uring_submit_and_wait_timeout(ring, c, n, ts, sig);
}

int __wrap_io_uring_submit_and_get_events(io_uring* ring) {
  if (int e = EnterFault(ring)) return e;
  return __real_io_uring_submit_and_get_events(ring);
}

}  // extern "C"
