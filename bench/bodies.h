// bench/bodies.h
//
// The work of each Linux benchmark, shared by the benchmark binary and by
// the bench_smoke test (which runs each body a few rounds and checks the
// bytes): every FD path has a raw-syscall twin doing the same work.
#ifndef BENCH_BODIES_H_
#define BENCH_BODIES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace gopoll::bench {

// A cached regular file of `size` bytes; reads `rounds` 4 KiB blocks at
// cycling offsets through FD::Pread or pread(2). Returns bytes read.
class FileReader {
 public:
  explicit FileReader(size_t size);
  ~FileReader();
  int64_t ReadRaw(int rounds);
  int64_t ReadFd(int rounds);
  // Checksum of what a ReadFd/ReadRaw pass saw, to compare both.
  uint64_t last_sum() const { return sum_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t sum_ = 0;
};

// Options of a two-thread 1-byte ping-pong over two pipes.
struct PingPongOptions {
  bool use_fd = true;       // FD::Read/Write, else blocking read/write
  bool deadline = false;    // SetReadDeadline(now + 1 s) before each read
  bool pinned = false;      // both threads on CPU 0
  bool busy_other = false;  // a thread spins on the other CPU meanwhile
  int idle_fds = 0;         // registered idle FDs kept open meanwhile
};

struct PingPongResult {
  int64_t rounds = 0;
  int64_t bad_bytes = 0;    // echoes that did not match (must be 0)
  double cpu_seconds = 0;   // user+sys of the two ping-pong threads
  double wall_seconds = 0;  // the round trips only (no setup/teardown)
};

// Runs `rounds` round trips; the echo thread sends back each byte.
PingPongResult PingPong(const PingPongOptions& o, int64_t rounds);

// Holds `n` pipe FDs (n/2 pipes), each read end with an armed read
// deadline one hour away. Rearm() moves deadline i (cycling) later.
class ArmedDeadlines {
 public:
  explicit ArmedDeadlines(int n);
  ~ArmedDeadlines();
  void Rearm(int64_t i);
  int size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Bytes of heap per registered idle FD (pipe end wrapped and Init'ed),
// measured over `n` FDs, plus sizeof(FD).
double BytesPerIdleFd(int n);

}  // namespace gopoll::bench

#endif  // BENCH_BODIES_H_
