// SPDX-License-Identifier: BSD-3-Clause
// bench/report.h
//
// What the benchmark binaries share: a console reporter that keeps every
// repetition (and shows only medians and the coefficient of variation when
// repeating), and the main() body that applies the default repetitions
// (shuffled, so a slow phase of a shared VM hits FD and raw runs alike).
#ifndef BENCH_REPORT_H_
#define BENCH_REPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"

namespace gopoll::bench {

class Collector : public benchmark::ConsoleReporter {
 public:
  explicit Collector(bool show_each) : show_each_(show_each) {}

  void ReportRuns(const std::vector<Run>& runs) override;

  // Medians over the repetitions; -1 if the benchmark did not run.
  // Wall ns per iteration.
  double Ns(const std::string& name) const;
  // CPU ns of the benchmark's own thread per iteration.
  double CpuNs(const std::string& name) const;
  // A user counter (0 where a repetition lacks it).
  double Counter(const std::string& name, const std::string& counter) const;

 private:
  struct Sample {
    double ns = 0;
    double cpu_ns = 0;
    std::map<std::string, double> counters;
  };
  template <typename F>
  double Med(const std::string& name, F f) const;

  bool show_each_;
  std::map<std::string, std::vector<Sample>> samples_;
};

// FD reads and the raw reads doing the same work, interleaved in one
// benchmark: each iteration runs a batch of each (alternating which goes
// first) and times every batch with `now_ns` (a clock in ns: the thread's
// CPU time where the platform has a fine one). Drift of the machine between
// two separate benchmarks then hits both sides alike. Sets the counters
// fd_ns and raw_ns (per read) and ratio; `read_fd(n)` / `read_raw(n)` read
// n blocks.
template <typename ReadFd, typename ReadRaw, typename Clock>
void RunInterleaved(benchmark::State& state, ReadFd read_fd, ReadRaw read_raw,
                    Clock now_ns, int batch = 64) {
  double raw_ns = 0, fd_ns = 0;
  int64_t batches = 0;
  for (auto _ : state) {
    const bool raw_first = (batches++ & 1) == 0;
    for (int side = 0; side < 2; ++side) {
      const bool raw = (side == 0) == raw_first;
      const double t0 = now_ns();
      benchmark::DoNotOptimize(raw ? read_raw(batch) : read_fd(batch));
      (raw ? raw_ns : fd_ns) += now_ns() - t0;
    }
  }
  const double reads = static_cast<double>(batches) * batch;
  state.counters["raw_ns"] = raw_ns / reads;
  state.counters["fd_ns"] = fd_ns / reads;
  state.counters["ratio"] = raw_ns > 0 ? fd_ns / raw_ns : 0;
}

// Median of `v` (0 for an empty vector).
double Median(std::vector<double> v);

// Initialises Google Benchmark with `default_reps` shuffled repetitions
// unless the command line sets --benchmark_repetitions or
// --benchmark_enable_random_interleaving itself, runs `register_all`, the
// benchmarks, then `print_table`. Returns main()'s exit code.
int RunBenchmarks(int argc, char** argv, int default_reps,
                  void (*register_all)(),
                  void (*print_table)(const Collector&));

}  // namespace gopoll::bench

#endif  // BENCH_REPORT_H_
