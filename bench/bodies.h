// SPDX-License-Identifier: BSD-3-Clause
// bench/bodies.h
//
// The work of each Linux benchmark, shared by the benchmark binary
// (bench/fd_vs_raw.cc) and by the bench_smoke test, which runs each body for
// a few rounds and checks the bytes. Every FD path has a raw-syscall twin
// doing the same work.
#ifndef BENCH_BODIES_H_
#define BENCH_BODIES_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "poll/fd.h"

namespace gopoll::bench {

// A page-cached regular file of `size` bytes (a multiple of 4 KiB) with a
// known pattern, opened twice: once raw, once wrapped in an FD (which epoll
// refuses, so the FD does plain blocking I/O, like Go's files).
class FileReader {
 public:
  static constexpr size_t kBlock = 4096;
  explicit FileReader(size_t size);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Each reads `blocks` blocks of 4 KiB and returns the bytes read.
  // Read*: sequential reads, rewinding (lseek / FD::Seek) at end of file.
  int64_t ReadRaw(int blocks);
  int64_t ReadFd(int blocks);
  // Pread*: reads at cycling offsets.
  int64_t PreadRaw(int blocks);
  int64_t PreadFd(int blocks);

  // Blocks read so far whose first or last byte was not the pattern's.
  int64_t mismatches() const { return mismatches_; }

 private:
  void Check(const char* buf, size_t n, int64_t off);

  int raw_ = -1;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  size_t size_ = 0;
  int64_t raw_off_ = 0;
  int64_t fd_off_ = 0;
  int64_t next_ = 0;
  int64_t mismatches_ = 0;
};

// A two-thread 1-byte ping-pong over two pipes.
struct PingPongOptions {
  bool use_fd = true;       // FD::Read/Write, else blocking read/write
  bool deadline = false;    // SetReadDeadline(now + 1 s) before each read
  bool pinned = false;      // both threads on one CPU (the first allowed)
  bool busy_other = false;  // a thread spins on another CPU meanwhile
  int idle_fds = 0;         // registered idle FDs kept open meanwhile
  // How the ping-pong's FDs wait (kAuto: the backend's default for blocking
  // callers; kPoller: epoll readiness).
  WaitStrategy strategy = WaitStrategy::kAuto;
  // The interruptible call's read spin (SetReadSpinBudget); false sets the
  // budget to zero while this ping-pong exists.
  bool read_spin = true;
};

// Whether this build's backend has an OS poller for WaitStrategy::kPoller
// (plan9_stub has not).
bool HasPoller();

// CPU time and wall time over a measured stretch of round trips.
struct PingPongStats {
  int64_t rounds = 0;
  int64_t bad_bytes = 0;  // echoes that did not match (must be 0)
  double wall_seconds = 0;
  // user+sys of the whole process (getrusage(RUSAGE_SELF)), minus the
  // spinning thread of the `busy_other` mode: the two ping-pong threads plus
  // whatever helper the FD layer uses (the deadline timer thread).
  double cpu_seconds = 0;
};

// Sets up the pipes (raw or wrapped), the echo thread, the idle FDs and the
// spinner; the destructor tears everything down. Between Begin() and End()
// the caller runs RoundTrip() as often as it likes.
class PingPong {
 public:
  explicit PingPong(const PingPongOptions& o);
  ~PingPong();
  PingPong(const PingPong&) = delete;
  PingPong& operator=(const PingPong&) = delete;

  void Begin();
  // Writes `c` to the echo thread and reads its echo; false if the echo
  // differs (counted in bad_bytes).
  bool RoundTrip(char c);
  PingPongStats End();

  // Runs `rounds` round trips between Begin() and End().
  static PingPongStats Run(const PingPongOptions& o, int64_t rounds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Makes exactly `n` idle registered FDs (pipe ends, wrapped and Init'ed on
// the poller where there is one) exist in the process, creating or
// destroying them as needed.
void SetIdleFds(int n);

// Holds `n` pipe FDs, each with an armed read deadline an hour away.
// Rearm(i) moves the deadline of FD i % n later (as a server does on every
// request).
class ArmedDeadlines {
 public:
  explicit ArmedDeadlines(int n);
  ~ArmedDeadlines();
  ArmedDeadlines(const ArmedDeadlines&) = delete;
  ArmedDeadlines& operator=(const ArmedDeadlines&) = delete;
  // False if SetReadDeadline failed.
  bool Rearm(int64_t i);
  int size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Heap bytes per registered idle FD: mallinfo2() delta over wrapping and
// Init'ing `n` pipe ends on the poller where there is one (the FD objects are
// heap-allocated, so the delta includes sizeof(FD) plus what Init allocates:
// poller registry slots).
double HeapBytesPerIdleFd(int n);

}  // namespace gopoll::bench

#endif  // BENCH_BODIES_H_
