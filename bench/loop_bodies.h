// SPDX-License-Identifier: BSD-3-Clause
// bench/loop_bodies.h
//
// Single-thread event-loop ping-pong over two pipes: one round
// trip is a byte written to pipe 1, read by side B, written back on pipe 2
// and read by side A (each read asks for up to 64 bytes and gets the one
// byte). The forms do the same work: a raw epoll_wait + read/write loop
// and a raw liburing loop (reads and writes submitted to the ring, one
// io_uring_submit_and_wait per turn, SINGLE_ISSUER | DEFER_TASKRUN) written
// here, and gopoll::Loop with callbacks and with coroutines, on the loop
// backend given (epoll or io_uring). Shared by the benchmark binary and the
// bench_smoke test, which checks the bytes.
#ifndef BENCH_LOOP_BODIES_H_
#define BENCH_LOOP_BODIES_H_

#include <cstdint>
#include <memory>

#include "poll/internal/poller.h"

namespace gopoll::bench {

enum class LoopForm { kRawEpoll, kRawUring, kCallback, kCoroutine };
// What the two sides talk over: two pipes, or two loopback TCP connections
// (TCP_NODELAY), each used in one direction.
enum class LoopTransport { kPipe, kTcp };

class LoopPingPong {
 public:
  // `backend`: the Loop's (callback and coroutine forms).
  explicit LoopPingPong(LoopForm form,
                        LoopBackend backend = LoopBackend::kDefault,
                        LoopTransport transport = LoopTransport::kPipe);
  // False if the form cannot run here (kRawUring without io_uring).
  bool ok() const;
  ~LoopPingPong();
  LoopPingPong(const LoopPingPong&) = delete;
  LoopPingPong& operator=(const LoopPingPong&) = delete;

  // Runs `rounds` round trips on the calling thread. Returns the number of
  // echoed bytes that differed from what was sent (must be 0).
  int64_t Run(int64_t rounds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gopoll::bench

#endif  // BENCH_LOOP_BODIES_H_
