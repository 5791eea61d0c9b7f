// bench/report.h
//
// What the benchmark binaries share: a console reporter that keeps every
// repetition (and shows only medians and the coefficient of variation when
// repeating), and the main() body that applies the default repetitions
// (shuffled, so a slow phase of a shared VM hits FD and raw runs alike).
#ifndef BENCH_REPORT_H_
#define BENCH_REPORT_H_

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
