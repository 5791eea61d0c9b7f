// SPDX-License-Identifier: BSD-3-Clause
// Runs ROUNDS round trips of one loop ping-pong form (bench/loop_bodies.h)
// and nothing else, for instruction counting: bench/loop_cost.sh runs it
// under callgrind at two round counts and prints the difference per round
// trip, which leaves out setup and teardown.
//
//   loop_cost raw_epoll|raw_io_uring|callback|coroutine ROUNDS
// Exit status 3: the form cannot run here (raw_io_uring without io_uring).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/loop_bodies.h"

int main(int argc, char** argv) {
  using gopoll::bench::LoopForm;
  if (argc != 3) {
    std::fprintf(stderr,
                 "usage: %s raw_epoll|raw_io_uring|callback|coroutine ROUNDS\n",
                 argv[0]);
    return 2;
  }
  LoopForm form;
  if (std::strcmp(argv[1], "raw_epoll") == 0) {
    form = LoopForm::kRawEpoll;
  } else if (std::strcmp(argv[1], "raw_io_uring") == 0) {
    form = LoopForm::kRawUring;
  } else if (std::strcmp(argv[1], "callback") == 0) {
    form = LoopForm::kCallback;
  } else if (std::strcmp(argv[1], "coroutine") == 0) {
    form = LoopForm::kCoroutine;
  } else {
    std::fprintf(stderr, "unknown form %s\n", argv[1]);
    return 2;
  }
  long rounds = std::atol(argv[2]);
  if (rounds <= 0) {
    std::fprintf(stderr, "bad ROUNDS\n");
    return 2;
  }
  gopoll::bench::LoopPingPong p(form);
  if (!p.ok()) {
    std::fprintf(stderr, "%s cannot run here (no io_uring)\n", argv[1]);
    return 3;
  }
  int64_t bad = p.Run(rounds);
  if (bad != 0) {
    std::fprintf(stderr, "%lld echoed bytes differed\n",
                 static_cast<long long>(bad));
    return 1;
  }
  return 0;
}
