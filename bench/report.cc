// SPDX-License-Identifier: BSD-3-Clause
#include "bench/report.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace gopoll::bench {

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void Collector::ReportRuns(const std::vector<Run>& runs) {
  std::vector<Run> shown;
  for (const Run& r : runs) {
    if (r.run_type == Run::RT_Aggregate) {
      if (r.aggregate_name == "median" || r.aggregate_name == "cv") {
        shown.push_back(r);
      }
      continue;
    }
    if (show_each_) shown.push_back(r);
    if (r.error_occurred || r.iterations == 0) continue;
    Sample s;
    double it = static_cast<double>(r.iterations);
    s.ns = r.real_accumulated_time * 1e9 / it;
    s.cpu_ns = r.cpu_accumulated_time * 1e9 / it;
    for (const auto& [k, v] : r.counters) s.counters[k] = v.value;
    samples_[r.run_name.function_name].push_back(s);
  }
  if (!shown.empty()) ConsoleReporter::ReportRuns(shown);
}

template <typename F>
double Collector::Med(const std::string& name, F f) const {
  auto it = samples_.find(name);
  if (it == samples_.end() || it->second.empty()) return -1;
  std::vector<double> v;
  for (const Sample& s : it->second) v.push_back(f(s));
  return Median(v);
}

double Collector::Ns(const std::string& name) const {
  return Med(name, [](const Sample& s) { return s.ns; });
}

double Collector::CpuNs(const std::string& name) const {
  return Med(name, [](const Sample& s) { return s.cpu_ns; });
}

double Collector::Counter(const std::string& name,
                          const std::string& counter) const {
  return Med(name, [&](const Sample& s) {
    auto it = s.counters.find(counter);
    return it == s.counters.end() ? 0.0 : it->second;
  });
}

namespace {
bool HasFlag(int argc, char** argv, const char* flag) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0) return true;
  }
  return false;
}
}  // namespace

int RunBenchmarks(int argc, char** argv, int default_reps,
                  void (*register_all)(),
                  void (*print_table)(const Collector&)) {
  std::vector<char*> args(argv, argv + argc);
  std::string repeat =
      "--benchmark_repetitions=" + std::to_string(default_reps);
  std::string shuffle = "--benchmark_enable_random_interleaving=true";
  if (!HasFlag(argc, argv, "--benchmark_repetitions") &&
      !HasFlag(argc, argv, "--benchmark_enable_random_interleaving")) {
    args.push_back(repeat.data());
    args.push_back(shuffle.data());
  }
  int n = static_cast<int>(args.size());
  // With repetitions the console shows medians only.
  int reps = 1;
  for (int i = 1; i < n; ++i) {
    std::string_view a = args[static_cast<size_t>(i)];
    if (a.starts_with("--benchmark_repetitions=")) {
      reps = std::atoi(a.substr(a.find('=') + 1).data());
    }
  }
  args.push_back(nullptr);
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  register_all();
  Collector collector(/*show_each=*/reps <= 1);
  benchmark::RunSpecifiedBenchmarks(&collector);
  print_table(collector);
  benchmark::Shutdown();
  return 0;
}

}  // namespace gopoll::bench
