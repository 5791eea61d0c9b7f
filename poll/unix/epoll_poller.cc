// SPDX-License-Identifier: BSD-3-Clause
#include "poll/unix/epoll_poller.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "poll/errors.h"
#include "poll/internal/perturb.h"
#include "poll/internal/poll_desc.h"

namespace gopoll {
namespace {

// The eventfd's epoll token: an index no slot ever has.
constexpr uint64_t kEventfdToken = ~uint64_t{0};

uint64_t Token(uint32_t index, uint32_t gen) {
  return (uint64_t{gen} << 32) | index;
}

}  // namespace

EpollPoller& EpollPoller::Default() {
  static EpollPoller* p = new EpollPoller();
  return *p;
}

EpollPoller::EpollPoller(bool loop_owned) {
  if (loop_owned) {
    // Opened now, so that an Interrupt() that comes before the loop's first
    // Poll() is not lost. If this fails the poller can never be woken:
    // open_status() says so, and no loop is made with it (NewLoopPoller).
    absl::MutexLock l(&mu_);
    open_status_ = EnsureOpen();
    lf_.ReserveLeadership();
  }
}

EpollPoller::~EpollPoller() {
  absl::MutexLock l(&mu_);
  if (epfd_ >= 0) ::close(epfd_);
  if (evfd_ >= 0) ::close(evfd_);
}

absl::Status EpollPoller::EnsureOpen() {
  if (epfd_ >= 0) return absl::OkStatus();
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return ErrnoError("epoll_create1", errno);
  int ev = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ev < 0) {
    int err = errno;
    ::close(ep);
    return ErrnoError("eventfd", err);
  }
  epoll_event e{};
  e.events = EPOLLIN | EPOLLET;
  e.data.u64 = kEventfdToken;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) < 0) {
    int err = errno;
    ::close(ep);
    ::close(ev);
    return ErrnoError("epoll_ctl", err);
  }
  epfd_ = ep;
  evfd_ = ev;
  epfd_fast_.store(ep);
  evfd_fast_.store(ev);
  return absl::OkStatus();
}

absl::Status EpollPoller::Register(intptr_t sysfd, internal::PollDesc* pd) {
  return RegisterWith(sysfd, pd, /*dormant=*/false);
}

absl::Status EpollPoller::RegisterDormant(intptr_t sysfd,
                                          internal::PollDesc* pd) {
  return RegisterWith(sysfd, pd, /*dormant=*/true);
}

namespace {
// EPOLLPRI: TCP's urgent data (a read stops at the urgent mark) shows in
// the edge, which then ends the read shortcut (PollDesc::read_drained).
constexpr uint32_t kAllEvents =
    EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;

int SockOpt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (::getsockopt(fd, level, name, &v, &len) < 0) return -1;
  return v;
}
}  // namespace

bool EpollPoller::ShortReadDrains(intptr_t sysfd, FdKind kind) {
  // Only TCP: tcp_recvmsg copies until its receive queue is empty, except
  // at the urgent mark (EPOLLPRI). Pipes and Unix stream sockets cannot be
  // told apart from their packet forms by the reader: a pipe's writer may
  // switch packet mode on (O_DIRECT on its end only), and a Unix stream
  // read stops after bytes that carried descriptors (SCM_RIGHTS) or came
  // from another writer with SO_PASSCRED; their short reads prove nothing.
  if (kind != FdKind::kNet) return false;
  const int fd = static_cast<int>(sysfd);
  if (SockOpt(fd, SOL_SOCKET, SO_TYPE) != SOCK_STREAM) return false;
  if (SockOpt(fd, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_TCP) return false;
  const int domain = SockOpt(fd, SOL_SOCKET, SO_DOMAIN);
  if (domain != AF_INET && domain != AF_INET6) return false;
  // An upper-layer protocol (kernel TLS) reads in records: a short read
  // may stop at a record boundary.
  char ulp[16];
  socklen_t len = sizeof(ulp);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &len) < 0 || len != 0) {
    return false;
  }
  return true;
}

void EpollPoller::Activate(intptr_t sysfd, internal::PollDesc* pd) {
  {
    absl::ReaderMutexLock l(&reg_mu_);
    uint32_t i = static_cast<uint32_t>(pd->poller_data);
    if (i >= slots_.size() || slots_[i].pd != pd || slots_[i].active) return;
  }
  absl::MutexLock l(&reg_mu_);
  uint32_t i = static_cast<uint32_t>(pd->poller_data);
  if (i >= slots_.size() || slots_[i].pd != pd || slots_[i].active) return;
  // A new generation: an event epoll_wait collected while the slot was
  // dormant (a lone EPOLLERR or EPOLLHUP) but that Dispatch sees only after
  // this, fails the generation check instead of passing for readiness of
  // the active slot. The MOD reports the descriptor's current state anew.
  const uint32_t gen = slots_[i].gen + 1;
  epoll_event e{};
  e.events = kAllEvents;
  e.data.u64 = Token(i, gen);
  if (::epoll_ctl(epfd_fast_.load(), EPOLL_CTL_MOD, static_cast<int>(sysfd),
                  &e) == 0) {
    slots_[i].gen = gen;
    slots_[i].active = true;
  }
}

absl::Status EpollPoller::RegisterWith(intptr_t sysfd, internal::PollDesc* pd,
                                       bool dormant) {
  {
    absl::MutexLock l(&mu_);
    absl::Status s = EnsureOpen();
    if (!s.ok()) return s;
  }
  absl::MutexLock l(&reg_mu_);
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[index];
  epoll_event e{};
  // Dormant: no interest (epoll still checks that the descriptor can be
  // polled; only hang-ups and errors are reported, which wake nobody
  // for long: a woken waiter re-checks).
  e.events = dormant ? EPOLLET : kAllEvents;
  e.data.u64 = Token(index, slot.gen);
  if (::epoll_ctl(epfd_fast_.load(), EPOLL_CTL_ADD, static_cast<int>(sysfd),
                  &e) < 0) {
    int err = errno;
    free_.push_back(index);
    return ErrnoError("epoll_ctl", err);
  }
  slot.pd = pd;
  slot.active = !dormant;
  pd->poller_data = index;
  ++registered_;
  return absl::OkStatus();
}

void EpollPoller::Unregister(intptr_t sysfd, internal::PollDesc* pd) {
  ::epoll_ctl(epfd_fast_.load(), EPOLL_CTL_DEL, static_cast<int>(sysfd),
              nullptr);
  absl::MutexLock l(&reg_mu_);
  uint32_t i = static_cast<uint32_t>(pd->poller_data);
  if (i >= slots_.size() || slots_[i].pd != pd) return;
  slots_[i].pd = nullptr;
  ++slots_[i].gen;
  free_.push_back(i);
  --registered_;
}

size_t EpollPoller::registered() const {
  absl::MutexLock l(&reg_mu_);
  return registered_;
}

std::atomic<uint64_t> EpollPoller::wait_failures{0};

absl::Status EpollPoller::open_status() const {
  absl::MutexLock l(&mu_);
  return open_status_;
}

namespace {
// After a failed epoll_wait (not EINTR), retried by the caller: a pause,
// so that a lasting failure is no busy loop (never longer than the wait
// that was asked for).
void BackOff(int timeout_ms) {
  EpollPoller::wait_failures.fetch_add(1, std::memory_order_relaxed);
  if (timeout_ms == 0) return;
  timespec ts{0, 1000000};  // 1 ms
  ::nanosleep(&ts, nullptr);
}
}  // namespace

void EpollPoller::Interrupt() {
  const int evfd = evfd_fast_.load();
  if (evfd < 0) return;  // never opened: nothing waits on it
  uint64_t one = 1;
  ssize_t r;
  // EINTR would lose the wake (and hang the leader): retry it. EAGAIN: the
  // counter is already non-zero, the wake is pending.
  do {
    r = ::write(evfd, &one, sizeof(one));
  } while (r < 0 && errno == EINTR);
}

int EpollPoller::PollCount(int timeout_ms) {
  if (epfd_fast_.load() < 0) {
    absl::MutexLock l(&mu_);
    if (!EnsureOpen().ok()) {
      BackOff(timeout_ms);  // NewLoopPoller never hands out such a poller
      return 0;
    }
  }
  epoll_event events[kMaxEvents];
  GOPOLL_PERTURB_POINT("epoll.before_poll");
  int n = ::epoll_wait(epfd_fast_.load(), events, kMaxEvents, timeout_ms);
  if (n < 0) {
    // EINTR; or ENOMEM, EBADF...: the next turn waits again (counted).
    if (errno != EINTR) BackOff(timeout_ms);
    return 0;
  }
  Dispatch(events, n, nullptr);
  return n;
}

void EpollPoller::OnOrphan() { lf_.ReleaseLeadership(); }

void EpollPoller::Park(internal::ThreadWaiter& w) {
  // A loop's poller: until Orphan(), the loop thread polls and wakes us like
  // any other waiter (we only follow).
  lf_.Park(w, this, [&] {
    epoll_event events[kMaxEvents];
    GOPOLL_PERTURB_POINT("epoll.before_park_wait");
    int n = ::epoll_wait(epfd_fast_.load(), events, kMaxEvents, -1);
    if (n < 0) {
      // The leader waits again (a pause first unless EINTR: counted).
      if (errno != EINTR) BackOff(-1);
      return;
    }
    Dispatch(events, n, &w);
  });
}

void EpollPoller::Dispatch(const void* evs, int n,
                           internal::ThreadWaiter* self) {
  const auto* events = static_cast<const epoll_event*>(evs);
  absl::ReaderMutexLock l(&reg_mu_);
  for (int i = 0; i < n; ++i) {
    const epoll_event& e = events[i];
    if (e.data.u64 == kEventfdToken) {
      uint64_t v;
      while (::read(evfd_fast_.load(), &v, sizeof(v)) > 0) {
      }
      continue;
    }
    uint32_t index = static_cast<uint32_t>(e.data.u64);
    uint32_t gen = static_cast<uint32_t>(e.data.u64 >> 32);
    if (index >= slots_.size()) continue;
    const Slot& slot = slots_[index];
    if (slot.gen != gen || slot.pd == nullptr) continue;  // unregistered
    // A dormant descriptor (RegisterDormant) still gets hang-ups and errors
    // from epoll, alone: taken as readiness, a lone EPOLLERR would mark the
    // FD "error only" and its reads would fail as not pollable without
    // trying the call. Nobody waits on it through epoll yet; Activate
    // re-evaluates its state (EPOLL_CTL_MOD) when someone does.
    if (!slot.active) continue;
    bool r = e.events & (EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLHUP | EPOLLERR);
    bool wr = e.events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
    // epoll reports the descriptor's state when it collects the event: a
    // FIN or error that came before shows here; one after brings an edge.
    bool hangup = e.events & (EPOLLRDHUP | EPOLLPRI | EPOLLHUP | EPOLLERR);
    internal::PollDesc::Woken woken =
        slot.pd->NetpollReady(r, wr, e.events == EPOLLERR, hangup);
    for (internal::Waiter* wt : {woken.r, woken.w}) {
      if (wt == nullptr) continue;
      if (wt == self) {
        self->MarkWoken();
      } else {
        wt->Wake();
      }
    }
  }
}

}  // namespace gopoll
