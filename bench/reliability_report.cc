// SPDX-License-Identifier: BSD-3-Clause
// bench/reliability_report.cc: a report tool (not a test), RELIABILITY.md.
//   (a) Close -> return latency of a pending operation, per kind, strategy
//       and form (blocking FD: interruptible call and kPoller; loop:
//       callback and coroutine);
//   (b) lateness of many concurrent random deadlines (0-50 ms): never
//       early, p50/p99, per strategy and for the loop.
// Run: ./bazelw run -c opt //bench:reliability_report
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "poll/errors.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"

namespace gopoll {
namespace {

void Pipe(int p[2]) {
  if (pipe2(p, O_CLOEXEC) != 0) std::abort();
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

void Row(const char* what, const std::vector<double>& us, int bad) {
  std::printf("%-44s n=%6zu p50=%8.1f us p99=%8.1f us max=%9.1f us bad=%d\n",
              what, us.size(), Pct(us, 0.5), Pct(us, 0.99), Pct(us, 1.0), bad);
}

enum Kind { kPipeRead, kSockRead, kPipeWriteFull, kAccept };
const char* kKindName[] = {"read pipe", "read socket", "write full pipe",
                           "accept"};

// Makes the FD under test (and a peer kept open) for one kind.
void Make(Kind k, int* test, int* peer) {
  int p[2];
  if (k == kPipeRead || k == kPipeWriteFull) {
    Pipe(p);
    *test = k == kPipeRead ? p[0] : p[1];
    *peer = k == kPipeRead ? p[1] : p[0];
    if (k == kPipeWriteFull) fcntl(*test, F_SETPIPE_SZ, 4096);
  } else if (k == kSockRead) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) != 0)
      std::abort();
    *test = p[0];
    *peer = p[1];
  } else {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;  // autobind: an abstract address
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(sa_family_t));
    listen(s, 8);
    *test = s;
    *peer = -1;
  }
}

absl::Status Op(FD& fd, Kind k) {
  static char big[1 << 16];
  char c;
  switch (k) {
    case kPipeRead:
    case kSockRead:
      return fd.Read(absl::MakeSpan(&c, 1)).status();
    case kPipeWriteFull:
      return fd.Write(absl::MakeConstSpan(big, sizeof(big))).status();
    case kAccept:
      return fd.Accept().status();
  }
  return absl::OkStatus();
}

void CloseBlocking(Kind k, WaitStrategy s, const char* sname, int n) {
  std::vector<double> us;
  int bad = 0;
  for (int i = 0; i < n; ++i) {
    int t, peer;
    Make(k, &t, &peer);
    FD fd(t);
    fd.Init(k == kAccept || k == kSockRead ? FdKind::kNet : FdKind::kPipe, true,
            s)
        .IgnoreError();
    std::atomic<int64_t> done_ns{0};
    absl::Status st;
    std::thread th([&] {
      st = Op(fd, k);
      done_ns = absl::GetCurrentTimeNanos();
    });
    absl::SleepFor(absl::Milliseconds(2));  // let it block
    const int64_t t0 = absl::GetCurrentTimeNanos();
    fd.Close().IgnoreError();
    th.join();
    if (!IsClosing(st)) ++bad;
    us.push_back((done_ns - t0) / 1e3);
    if (peer >= 0) close(peer);
  }
  char what[96];
  std::snprintf(what, sizeof(what), "close: %s, %s", kKindName[k], sname);
  Row(what, us, bad);
}

Task<void> CoRead(AsyncFd fd, std::atomic<int64_t>* done, absl::Status* st) {
  char c;
  absl::StatusOr<size_t> r = co_await fd.Read(absl::MakeSpan(&c, 1));
  *st = r.status();
  *done = absl::GetCurrentTimeNanos();
}

void CloseLoop(bool coroutine, int n) {
  std::vector<double> us;
  int bad = 0;
  Loop loop;
  std::thread runner([&] { loop.Run(); });
  for (int i = 0; i < n; ++i) {
    int p[2];
    Pipe(p);
    AsyncFd r = *loop.Adopt(p[0], FdKind::kPipe);
    std::atomic<int64_t> done{0};
    absl::Status st;
    char c;
    if (coroutine) {
      loop.Spawn(CoRead(r, &done, &st));
    } else {
      r.AsyncRead(absl::MakeSpan(&c, 1), [&](absl::StatusOr<size_t> x) {
        st = x.status();
        done = absl::GetCurrentTimeNanos();
      });
    }
    absl::SleepFor(absl::Milliseconds(2));
    const int64_t t0 = absl::GetCurrentTimeNanos();
    r.Close().IgnoreError();
    while (done.load() == 0) absl::SleepFor(absl::Microseconds(20));
    if (!IsClosing(st)) ++bad;
    us.push_back((done - t0) / 1e3);
    close(p[1]);
  }
  loop.Stop();
  runner.join();
  Row(coroutine ? "close: read pipe, loop coroutine"
                : "close: read pipe, loop callback",
      us, bad);
}

// (b): `conc` threads, each reading a silent pipe under random deadlines.
void Deadlines(WaitStrategy s, const char* sname, int total, int conc) {
  std::vector<std::vector<double>> lat(conc);
  std::atomic<int> early{0};
  std::vector<std::thread> ths;
  for (int t = 0; t < conc; ++t) {
    ths.emplace_back([&, t] {
      int p[2];
      Pipe(p);
      FD r(p[0]);
      r.Init(FdKind::kPipe, true, s).IgnoreError();
      std::mt19937 rng(t);
      char c;
      for (int i = 0; i < total / conc; ++i) {
        const absl::Time dl = absl::Now() + absl::Microseconds(rng() % 50'000);
        r.SetReadDeadline(dl).IgnoreError();
        absl::Status st = r.Read(absl::MakeSpan(&c, 1)).status();
        const absl::Time now = absl::Now();
        if (!IsDeadlineExceeded(st) || now < dl) ++early;
        lat[t].push_back(absl::ToDoubleMicroseconds(now - dl));
      }
      close(p[1]);
    });
  }
  for (auto& th : ths) th.join();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  char what[96];
  std::snprintf(what, sizeof(what), "deadline lateness: %s, %d concurrent",
                sname, conc);
  Row(what, all, early);
}

void DeadlinesLoop(int total, int conc) {
  Loop loop;
  std::vector<double> all;
  int early = 0;
  std::vector<int> writers;
  std::vector<AsyncFd> fds;
  for (int i = 0; i < conc; ++i) {
    int p[2];
    Pipe(p);
    fds.push_back(*loop.Adopt(p[0], FdKind::kPipe));
    writers.push_back(p[1]);
  }
  std::mt19937 rng(1);
  int started = 0, finished = 0;
  char c[1024];
  std::function<void(int)> start = [&](int i) {
    if (started >= total) return;
    ++started;
    const absl::Time dl = absl::Now() + absl::Microseconds(rng() % 50'000);
    fds[i].SetReadDeadline(dl).IgnoreError();
    fds[i].AsyncRead(absl::MakeSpan(&c[i], 1),
                     [&, i, dl](absl::StatusOr<size_t> r) {
                       const absl::Time now = absl::Now();
                       if (!IsDeadlineExceeded(r.status()) || now < dl) ++early;
                       all.push_back(absl::ToDoubleMicroseconds(now - dl));
                       ++finished;
                       start(i);
                     });
  };
  for (int i = 0; i < conc; ++i) start(i);
  while (finished < total) loop.RunOnce(absl::Milliseconds(100));
  for (int w : writers) close(w);
  char what[96];
  std::snprintf(what, sizeof(what), "deadline lateness: loop, %d concurrent",
                conc);
  Row(what, all, early);
}

}  // namespace
}  // namespace gopoll

int main(int argc, char** argv) {
  using namespace gopoll;
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  const int deadlines = argc > 2 ? std::atoi(argv[2]) : 100'000;
  std::printf("(a) Close -> pending operation returns (bad: not IsClosing)\n");
  for (Kind k : {kPipeRead, kSockRead, kPipeWriteFull, kAccept}) {
    CloseBlocking(k, WaitStrategy::kInterruptibleCall, "interruptible", n);
    CloseBlocking(k, WaitStrategy::kPoller, "poller", n);
  }
  CloseLoop(false, n);
  CloseLoop(true, n);
  std::printf("(b) deadlines 0-50 ms (bad: early or not a timeout)\n");
  Deadlines(WaitStrategy::kInterruptibleCall, "interruptible", deadlines, 200);
  Deadlines(WaitStrategy::kPoller, "poller", deadlines, 200);
  DeadlinesLoop(deadlines, 200);
  return 0;
}
