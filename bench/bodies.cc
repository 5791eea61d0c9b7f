#include "bench/bodies.h"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "poll/fd.h"

namespace gopoll::bench {
namespace {

constexpr size_t kBlock = 4096;

double ThreadCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

void PinToCpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void Unpin() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

std::unique_ptr<FD> Wrap(int fd, FdKind kind) {
  auto f = std::make_unique<FD>(fd);
  if (!f->Init(kind, true).ok()) std::abort();
  return f;
}

}  // namespace

// --- File reads ---------------------------------------------------------

struct FileReader::Impl {
  int raw = -1;
  std::unique_ptr<FD> fd;
  size_t size = 0;
  std::vector<char> buf = std::vector<char>(kBlock);
  int64_t next = 0;
};

FileReader::FileReader(size_t size) : impl_(new Impl) {
  char path[] = "/tmp/poll_bench_XXXXXX";
  int w = mkstemp(path);
  if (w < 0) std::abort();
  std::vector<char> data(size);
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 131);
  if (write(w, data.data(), size) != static_cast<ssize_t>(size)) std::abort();
  close(w);
  // Two descriptors of the same (page-cached) file: one raw, one in an FD.
  impl_->raw = open(path, O_RDONLY | O_CLOEXEC);
  impl_->fd = Wrap(open(path, O_RDONLY | O_CLOEXEC), FdKind::kFile);
  unlink(path);
  impl_->size = size;
}

FileReader::~FileReader() { close(impl_->raw); }

int64_t FileReader::ReadRaw(int rounds) {
  int64_t total = 0;
  sum_ = 0;
  for (int i = 0; i < rounds; ++i) {
    off_t off = static_cast<off_t>((i * kBlock) % impl_->size);
    ssize_t n = pread(impl_->raw, impl_->buf.data(), kBlock, off);
    if (n <= 0) std::abort();
    total += n;
    sum_ += static_cast<unsigned char>(impl_->buf[n - 1]);
  }
  return total;
}

int64_t FileReader::ReadFd(int rounds) {
  int64_t total = 0;
  sum_ = 0;
  for (int i = 0; i < rounds; ++i) {
    int64_t off = static_cast<int64_t>((i * kBlock) % impl_->size);
    absl::StatusOr<size_t> n =
        impl_->fd->Pread(absl::MakeSpan(impl_->buf), off);
    if (!n.ok() || *n == 0) std::abort();
    total += static_cast<int64_t>(*n);
    sum_ += static_cast<unsigned char>(impl_->buf[*n - 1]);
  }
  return total;
}

// --- Ping-pong ------------------------------------------------------------

PingPongResult PingPong(const PingPongOptions& o, int64_t rounds) {
  int a[2], b[2];
  if (pipe2(a, O_CLOEXEC) != 0 || pipe2(b, O_CLOEXEC) != 0) std::abort();
  std::unique_ptr<FD> ar, aw, br, bw;
  if (o.use_fd) {
    ar = Wrap(a[0], FdKind::kPipe);
    aw = Wrap(a[1], FdKind::kPipe);
    br = Wrap(b[0], FdKind::kPipe);
    bw = Wrap(b[1], FdKind::kPipe);
  }
  std::vector<std::unique_ptr<FD>> idle;
  for (int i = 0; i + 1 < o.idle_fds; i += 2) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) std::abort();
    idle.push_back(Wrap(p[0], FdKind::kPipe));
    idle.push_back(Wrap(p[1], FdKind::kPipe));
  }
  std::atomic<bool> stop_spin{false};
  std::thread spinner;
  if (o.busy_other) {
    spinner = std::thread([&] {
      PinToCpu(1);
      while (!stop_spin.load(std::memory_order_relaxed)) {
      }
    });
  }
  auto read1 = [&](FD* f, int raw, char* c) {
    if (f == nullptr) return read(raw, c, 1) == 1;
    if (o.deadline) {
      f->SetReadDeadline(absl::Now() + absl::Seconds(1)).IgnoreError();
    }
    absl::StatusOr<size_t> n = f->Read(absl::MakeSpan(c, 1));
    return n.ok() && *n == 1;
  };
  auto write1 = [&](FD* f, int raw, char c) {
    if (f == nullptr) return write(raw, &c, 1) == 1;
    return f->Write(std::string_view(&c, 1)).ok();
  };
  std::atomic<double> echo_cpu{0};
  std::thread echo([&] {
    if (o.pinned) PinToCpu(0);
    double c0 = ThreadCpuSeconds();
    char c;
    for (int64_t i = 0; i < rounds; ++i) {
      if (!read1(ar.get(), a[0], &c) || !write1(bw.get(), b[1], c)) {
        std::abort();
      }
    }
    echo_cpu = ThreadCpuSeconds() - c0;
  });
  if (o.pinned) PinToCpu(0);
  double c0 = ThreadCpuSeconds();
  absl::Time t0 = absl::Now();
  PingPongResult r;
  for (int64_t i = 0; i < rounds; ++i) {
    char c = static_cast<char>(i), got = 0;
    if (!write1(aw.get(), a[1], c) || !read1(br.get(), b[0], &got)) {
      std::abort();
    }
    if (got != c) ++r.bad_bytes;
  }
  double mine = ThreadCpuSeconds() - c0;
  r.wall_seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  echo.join();
  if (o.pinned) Unpin();
  stop_spin = true;
  if (spinner.joinable()) spinner.join();
  r.rounds = rounds;
  r.cpu_seconds = mine + echo_cpu.load();
  if (!o.use_fd) {
    for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
  }
  return r;
}

// --- Deadline re-arm --------------------------------------------------------

struct ArmedDeadlines::Impl {
  std::vector<std::unique_ptr<FD>> fds;
  absl::Time base;
};

ArmedDeadlines::ArmedDeadlines(int n) : impl_(new Impl) {
  impl_->base = absl::Now() + absl::Hours(1);
  for (int i = 0; i + 1 < n + 1; i += 2) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) std::abort();
    impl_->fds.push_back(Wrap(p[0], FdKind::kPipe));
    impl_->fds.push_back(Wrap(p[1], FdKind::kPipe));
  }
  for (auto& f : impl_->fds) {
    if (!f->SetReadDeadline(impl_->base).ok()) std::abort();
  }
}

ArmedDeadlines::~ArmedDeadlines() = default;

int ArmedDeadlines::size() const { return static_cast<int>(impl_->fds.size()); }

void ArmedDeadlines::Rearm(int64_t i) {
  FD* f = impl_->fds[static_cast<size_t>(i) % impl_->fds.size()].get();
  f->SetReadDeadline(impl_->base + absl::Nanoseconds(i)).IgnoreError();
}

// --- Memory
// -------------------------------------------------------------------

double BytesPerIdleFd(int n) {
  std::vector<int> raw;
  for (int i = 0; i + 1 < n + 1; i += 2) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) std::abort();
    raw.push_back(p[0]);
    raw.push_back(p[1]);
  }
  std::vector<std::unique_ptr<FD>> fds;
  fds.reserve(raw.size());
  size_t before = mallinfo2().uordblks;
  for (int fd : raw) fds.push_back(Wrap(fd, FdKind::kPipe));
  size_t after = mallinfo2().uordblks;
  return static_cast<double>(after - before) / static_cast<double>(raw.size());
}

}  // namespace gopoll::bench
