// SPDX-License-Identifier: BSD-3-Clause
#include "bench/bodies.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/file_pattern.h"
#include "poll/fd.h"
#include "poll/posix/read_spin_budget.h"

namespace gopoll::bench {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "bench: %s failed: errno %d\n", what, errno);
  std::abort();
}

std::unique_ptr<FD> Wrap(int fd, FdKind kind,
                         WaitStrategy strategy = WaitStrategy::kAuto) {
  auto f = std::make_unique<FD>(fd);
  if (!f->Init(kind, /*pollable=*/true, strategy).ok()) Die("FD::Init");
  return f;
}

// Idle and memory figures are about FDs registered with the OS poller.
WaitStrategy Registered() {
  return HasPoller() ? WaitStrategy::kPoller : WaitStrategy::kAuto;
}

double Seconds(const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; }

double ProcessCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return Seconds(u.ru_utime) + Seconds(u.ru_stime);
}

double ClockSeconds(clockid_t c) {
  timespec ts;
  if (clock_gettime(c, &ts) != 0) return 0;
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// The CPUs this process may run on, in order.
std::vector<int> AllowedCpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) Die("sched_setaffinity");
}

// One byte through a blocking raw descriptor or an FD. A read deadline, if
// asked for, is set (one second ahead) before every read attempt; a read
// that outlives it (a very loaded machine) is simply retried.
bool ReadByte(FD* f, int raw, bool deadline, char* c) {
  if (f == nullptr) {
    ssize_t n;
    do {
      n = ::read(raw, c, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1;
  }
  for (;;) {
    if (deadline && !f->SetReadDeadline(absl::Now() + absl::Seconds(1)).ok()) {
      return false;
    }
    absl::StatusOr<size_t> n = f->Read(absl::MakeSpan(c, 1));
    if (n.ok()) return *n == 1;
    if (!deadline || !IsDeadlineExceeded(n.status())) return false;
  }
}

bool WriteByte(FD* f, int raw, char c) {
  if (f == nullptr) {
    ssize_t n;
    do {
      n = ::write(raw, &c, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1;
  }
  return f->Write(absl::MakeConstSpan(&c, 1)).ok();
}

}  // namespace

// --- File reads -------------------------------------------------------

struct FileReader::Impl {
  std::unique_ptr<FD> fd;
  std::vector<char> buf = std::vector<char>(kBlock);
  int64_t pread_raw = 0;
  int64_t pread_fd = 0;
};

FileReader::FileReader(size_t size) : impl_(new Impl), size_(size) {
  if (size == 0 || size % kBlock != 0) Die("FileReader size");
  char path[] = "/tmp/poll_bench_XXXXXX";
  int w = mkstemp(path);
  if (w < 0) Die("mkstemp");
  std::vector<char> data(size);
  for (size_t i = 0; i < size; ++i) data[i] = PatternByte(i);
  if (::write(w, data.data(), size) != static_cast<ssize_t>(size)) {
    Die("write");
  }
  ::close(w);
  raw_ = ::open(path, O_RDONLY | O_CLOEXEC);
  int f = ::open(path, O_RDONLY | O_CLOEXEC);
  if (raw_ < 0 || f < 0) Die("open");
  ::unlink(path);
  impl_->fd = Wrap(f, FdKind::kFile);
  // Page the file in before anything is timed.
  for (int i = 0; i < static_cast<int>(size / kBlock); ++i) PreadRaw(1);
  impl_->pread_raw = 0;
}

FileReader::~FileReader() { ::close(raw_); }

void FileReader::Check(const char* buf, size_t n, int64_t off) {
  if (!MatchesPattern(buf, n, off)) ++mismatches_;
}

int64_t FileReader::ReadRaw(int blocks) {
  int64_t total = 0;
  char* buf = impl_->buf.data();
  for (int i = 0; i < blocks; ++i) {
    if (raw_off_ == static_cast<int64_t>(size_)) {
      if (::lseek(raw_, 0, SEEK_SET) != 0) Die("lseek");
      raw_off_ = 0;
    }
    ssize_t n = ::read(raw_, buf, kBlock);
    if (n <= 0) Die("read");
    Check(buf, static_cast<size_t>(n), raw_off_);
    raw_off_ += n;
    total += n;
  }
  return total;
}

int64_t FileReader::ReadFd(int blocks) {
  int64_t total = 0;
  FD& fd = *impl_->fd;
  absl::Span<char> buf = absl::MakeSpan(impl_->buf);
  for (int i = 0; i < blocks; ++i) {
    if (fd_off_ == static_cast<int64_t>(size_)) {
      if (!fd.Seek(0, 0).ok()) Die("FD::Seek");
      fd_off_ = 0;
    }
    absl::StatusOr<size_t> n = fd.Read(buf);
    if (!n.ok()) Die("FD::Read");
    Check(buf.data(), *n, fd_off_);
    fd_off_ += static_cast<int64_t>(*n);
    total += static_cast<int64_t>(*n);
  }
  return total;
}

int64_t FileReader::PreadRaw(int blocks) {
  int64_t total = 0;
  char* buf = impl_->buf.data();
  for (int i = 0; i < blocks; ++i) {
    int64_t off = impl_->pread_raw;
    impl_->pread_raw = (off + kBlock) % static_cast<int64_t>(size_);
    ssize_t n = ::pread(raw_, buf, kBlock, off);
    if (n <= 0) Die("pread");
    Check(buf, static_cast<size_t>(n), off);
    total += n;
  }
  return total;
}

int64_t FileReader::PreadFd(int blocks) {
  int64_t total = 0;
  FD& fd = *impl_->fd;
  absl::Span<char> buf = absl::MakeSpan(impl_->buf);
  for (int i = 0; i < blocks; ++i) {
    int64_t off = impl_->pread_fd;
    impl_->pread_fd = (off + kBlock) % static_cast<int64_t>(size_);
    absl::StatusOr<size_t> n = fd.Pread(buf, off);
    if (!n.ok()) Die("FD::Pread");
    Check(buf.data(), *n, off);
    total += static_cast<int64_t>(*n);
  }
  return total;
}

// --- Idle FDs -----------------------------------------------------------

bool HasPoller() {
  static const bool has = [] {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) Die("pipe2");
    FD r(p[0]), w(p[1]);
    return r.Init(FdKind::kPipe, true, WaitStrategy::kPoller).ok();
  }();
  return has;
}

void SetIdleFds(int n) {
  static auto* idle = new std::vector<std::unique_ptr<FD>>();
  while (static_cast<int>(idle->size()) < n) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) Die("pipe2");
    idle->push_back(Wrap(p[0], FdKind::kPipe, Registered()));
    idle->push_back(Wrap(p[1], FdKind::kPipe, Registered()));
  }
  while (static_cast<int>(idle->size()) > n) idle->pop_back();
}

// --- Ping-pong ----------------------------------------------------------

struct PingPong::Impl {
  PingPongOptions o;
  int a[2] = {-1, -1};  // main -> echo
  int b[2] = {-1, -1};  // echo -> main
  std::unique_ptr<FD> ar, aw, br, bw;
  int cpu0 = -1;  // where pinned threads run
  int cpu1 = -1;  // where the spinner runs
  cpu_set_t saved_affinity;
  std::thread echo;
  std::thread spinner;
  std::atomic<bool> stop_spin{false};
  std::atomic<bool> spinning{false};
  std::atomic<bool> echo_ready{false};
  clockid_t spin_clock = 0;
  absl::Duration saved_spin;

  int64_t rounds = 0;
  int64_t bad = 0;
  std::chrono::steady_clock::time_point t0;
  double cpu_start = 0;
  double spin_start = 0;

  double SpinnerCpu() const {
    return spinner.joinable() ? ClockSeconds(spin_clock) : 0;
  }
};

PingPong::PingPong(const PingPongOptions& o) : impl_(new Impl) {
  Impl& m = *impl_;
  m.o = o;
  m.saved_spin = ReadSpinBudget();
  if (!o.read_spin) SetReadSpinBudget(absl::ZeroDuration());
  SetIdleFds(o.idle_fds);
  std::vector<int> cpus = AllowedCpus();
  if (cpus.empty()) Die("sched_getaffinity");
  m.cpu0 = cpus[0];
  m.cpu1 = cpus.size() > 1 ? cpus[1] : -1;

  if (pipe2(m.a, O_CLOEXEC) != 0 || pipe2(m.b, O_CLOEXEC) != 0) Die("pipe2");
  if (o.use_fd) {
    m.ar = Wrap(m.a[0], FdKind::kPipe, o.strategy);
    m.aw = Wrap(m.a[1], FdKind::kPipe, o.strategy);
    m.br = Wrap(m.b[0], FdKind::kPipe, o.strategy);
    m.bw = Wrap(m.b[1], FdKind::kPipe, o.strategy);
  }

  if (o.busy_other) {
    m.spinner = std::thread([&m] {
      if (m.cpu1 >= 0) PinTo(m.cpu1);
      m.spinning = true;
      m.spinning.notify_one();
      while (!m.stop_spin.load(std::memory_order_relaxed)) {
      }
    });
    m.spinning.wait(false);
    if (pthread_getcpuclockid(m.spinner.native_handle(), &m.spin_clock) != 0) {
      Die("pthread_getcpuclockid");
    }
  }

  m.echo = std::thread([&m] {
    if (m.o.pinned) PinTo(m.cpu0);
    m.echo_ready = true;
    m.echo_ready.notify_one();
    char c;
    // Ends when the main thread closes its write end (end of stream).
    while (ReadByte(m.ar.get(), m.a[0], m.o.deadline, &c) &&
           WriteByte(m.bw.get(), m.b[1], c)) {
    }
  });
  m.echo_ready.wait(false);
  if (o.pinned) {
    sched_getaffinity(0, sizeof(m.saved_affinity), &m.saved_affinity);
    PinTo(m.cpu0);
  }
}

PingPong::~PingPong() {
  Impl& m = *impl_;
  if (!m.o.read_spin) SetReadSpinBudget(m.saved_spin);
  // End of stream for the echo thread.
  if (m.aw != nullptr) {
    m.aw->Close().IgnoreError();
  } else {
    ::close(m.a[1]);
  }
  m.echo.join();
  if (m.o.pinned) {
    sched_setaffinity(0, sizeof(m.saved_affinity), &m.saved_affinity);
  }
  m.stop_spin = true;
  if (m.spinner.joinable()) m.spinner.join();
  if (!m.o.use_fd) {
    for (int fd : {m.a[0], m.b[0], m.b[1]}) ::close(fd);
  }
}

void PingPong::Begin() {
  Impl& m = *impl_;
  m.rounds = 0;
  m.bad = 0;
  m.spin_start = m.SpinnerCpu();
  m.cpu_start = ProcessCpuSeconds();
  m.t0 = std::chrono::steady_clock::now();
}

bool PingPong::RoundTrip(char c) {
  Impl& m = *impl_;
  char got = static_cast<char>(~c);
  bool ok = WriteByte(m.aw.get(), m.a[1], c) &&
            ReadByte(m.br.get(), m.b[0], m.o.deadline, &got);
  if (!ok) Die("ping-pong I/O");
  ++m.rounds;
  if (got != c) ++m.bad;
  return got == c;
}

PingPongStats PingPong::End() {
  Impl& m = *impl_;
  PingPongStats s;
  s.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - m.t0)
          .count();
  s.cpu_seconds = ProcessCpuSeconds() - m.cpu_start;
  s.cpu_seconds -= m.SpinnerCpu() - m.spin_start;
  if (s.cpu_seconds < 0) s.cpu_seconds = 0;
  s.rounds = m.rounds;
  s.bad_bytes = m.bad;
  return s;
}

PingPongStats PingPong::Run(const PingPongOptions& o, int64_t rounds) {
  PingPong p(o);
  p.Begin();
  for (int64_t i = 0; i < rounds; ++i) p.RoundTrip(static_cast<char>(i));
  return p.End();
}

// --- Deadline re-arm ----------------------------------------------------

struct ArmedDeadlines::Impl {
  std::vector<std::unique_ptr<FD>> fds;
  absl::Time base;
};

ArmedDeadlines::ArmedDeadlines(int n) : impl_(new Impl) {
  impl_->base = absl::Now() + absl::Hours(1);
  while (static_cast<int>(impl_->fds.size()) < n) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) Die("pipe2");
    impl_->fds.push_back(Wrap(p[0], FdKind::kPipe));
    impl_->fds.push_back(Wrap(p[1], FdKind::kPipe));
  }
  impl_->fds.resize(static_cast<size_t>(n));
  for (auto& f : impl_->fds) {
    if (!f->SetReadDeadline(impl_->base).ok()) Die("SetReadDeadline");
  }
}

ArmedDeadlines::~ArmedDeadlines() = default;

int ArmedDeadlines::size() const { return static_cast<int>(impl_->fds.size()); }

bool ArmedDeadlines::Rearm(int64_t i) {
  FD& f = *impl_->fds[static_cast<size_t>(i) % impl_->fds.size()];
  return f.SetReadDeadline(impl_->base + absl::Nanoseconds(i)).ok();
}

// --- Memory -------------------------------------------------------------

double HeapBytesPerIdleFd(int n) {
  std::vector<int> raw;
  while (static_cast<int>(raw.size()) < n) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) Die("pipe2");
    raw.push_back(p[0]);
    raw.push_back(p[1]);
  }
  std::vector<std::unique_ptr<FD>> fds;
  fds.reserve(raw.size());
  // Warm the poller (epoll instance, registry) with one FD first.
  fds.push_back(Wrap(raw[0], FdKind::kPipe, Registered()));
  size_t before = mallinfo2().uordblks;
  for (size_t i = 1; i < raw.size(); ++i) {
    fds.push_back(Wrap(raw[i], FdKind::kPipe, Registered()));
  }
  size_t after = mallinfo2().uordblks;
  return static_cast<double>(after - before) /
         static_cast<double>(raw.size() - 1);
}

}  // namespace gopoll::bench
