// What the FD layer costs: every FD path beside the raw system calls doing
// the same work, in the same run, then a table of ratios against the goals.
//
//   ./bazelw run -c opt //bench:fd_vs_raw
//   ./bazelw run -c opt //bench:fd_vs_raw -- --benchmark_filter=PingPong
#include <sys/resource.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/bodies.h"
#include "benchmark/benchmark.h"

namespace gopoll::bench {
namespace {

void BM_FileRead4K_Raw(benchmark::State& state) {
  static FileReader* r = new FileReader(1 << 20);
  for (auto _ : state) benchmark::DoNotOptimize(r->ReadRaw(1));
  state.SetBytesProcessed(state.iterations() * 4096);
}
void BM_FileRead4K_FD(benchmark::State& state) {
  static FileReader* r = new FileReader(1 << 20);
  for (auto _ : state) benchmark::DoNotOptimize(r->ReadFd(1));
  state.SetBytesProcessed(state.iterations() * 4096);
}
BENCHMARK(BM_FileRead4K_Raw);
BENCHMARK(BM_FileRead4K_FD);

// One benchmark iteration = a batch of kBatch round trips, timed inside
// PingPong (manual time: pipe, FD and thread setup are not counted). The
// console shows the time per batch; the table below divides by kBatch.
constexpr int64_t kBatch = 2000;
void RunPingPong(benchmark::State& state, PingPongOptions o) {
  int64_t rounds = 0, bad = 0;
  double cpu = 0;
  for (auto _ : state) {
    PingPongResult r = PingPong(o, kBatch);
    state.SetIterationTime(r.wall_seconds);
    rounds += r.rounds;
    bad += r.bad_bytes;
    cpu += r.cpu_seconds;
  }
  if (bad != 0) state.SkipWithError("echoed bytes differ");
  state.counters["cpu_us_per_rt"] =
      benchmark::Counter(rounds ? cpu * 1e6 / rounds : 0);
}

#define PING_PONG(name, ...)                          \
  void BM_PingPong_##name(benchmark::State& state) {  \
    RunPingPong(state, PingPongOptions{__VA_ARGS__}); \
  }                                                   \
  BENCHMARK(BM_PingPong_##name)->UseManualTime()->MinTime(0.3);

//        name                 fd     deadline pinned busy   idle
PING_PONG(Raw_Quiet, false, false, false, false, 0)
PING_PONG(FD_Quiet, true, false, false, false, 0)
PING_PONG(Raw_Busy, false, false, false, true, 0)
PING_PONG(FD_Busy, true, false, false, true, 0)
PING_PONG(FD_Deadline_Quiet, true, true, false, false, 0)
PING_PONG(FD_Deadline_Busy, true, true, false, true, 0)
PING_PONG(Raw_Pinned, false, false, true, false, 0)
PING_PONG(FD_Pinned, true, false, true, false, 0)
PING_PONG(FD_10kIdle_Quiet, true, false, false, false, 10000)

void BM_SetReadDeadline_Rearm_10kArmed(benchmark::State& state) {
  static ArmedDeadlines* d = new ArmedDeadlines(10000);
  int64_t i = 0;
  for (auto _ : state) d->Rearm(i++);
  state.counters["armed"] = d->size();
}
BENCHMARK(BM_SetReadDeadline_Rearm_10kArmed);

void BM_MemoryPerIdleFd(benchmark::State& state) {
  double bytes = 0;
  for (auto _ : state) bytes = BytesPerIdleFd(2000);
  state.counters["bytes_per_fd"] = bytes;
}
BENCHMARK(BM_MemoryPerIdleFd)->Iterations(1);

// Collects results while the console reporter prints them.
class Collector : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      Result& res = results[r.benchmark_name()];
      res.ns = r.GetAdjustedRealTime();
      // Ping-pong iterations are batches: report per round trip.
      if (r.benchmark_name().rfind("BM_PingPong", 0) == 0) res.ns /= kBatch;
      for (const auto& [k, v] : r.counters) res.counters[k] = v.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  struct Result {
    double ns = 0;
    std::map<std::string, double> counters;
  };
  std::map<std::string, Result> results;
};

void PrintTable(const Collector& c) {
  auto get = [&](const std::string& n) -> const Collector::Result* {
    for (const auto& [name, r] : c.results) {
      if (name.rfind(n, 0) == 0) return &r;
    }
    return nullptr;
  };
  struct Row {
    const char* what;
    const char* fd;
    const char* ref;
    double goal;
  };
  const Row rows[] = {
      {"4 KiB pread of a cached file", "BM_FileRead4K_FD", "BM_FileRead4K_Raw",
       1.03},
      {"pipe ping-pong, other core idle", "BM_PingPong_FD_Quiet",
       "BM_PingPong_Raw_Quiet", 1.15},
      {"pipe ping-pong, other core busy", "BM_PingPong_FD_Busy",
       "BM_PingPong_Raw_Busy", 1.15},
      {"  + read deadline per read, idle", "BM_PingPong_FD_Deadline_Quiet",
       "BM_PingPong_Raw_Quiet", 1.25},
      {"  + read deadline per read, busy", "BM_PingPong_FD_Deadline_Busy",
       "BM_PingPong_Raw_Busy", 1.25},
      {"pipe ping-pong, both on one CPU", "BM_PingPong_FD_Pinned",
       "BM_PingPong_Raw_Pinned", 1.15},
      {"ping-pong with 10k idle FDs vs none", "BM_PingPong_FD_10kIdle_Quiet",
       "BM_PingPong_FD_Quiet", 1.05},
  };
  std::printf("\n%-38s %12s %12s %7s %6s %s\n", "FD vs reference", "FD ns",
              "ref ns", "ratio", "goal", "");
  for (const Row& row : rows) {
    const Collector::Result* f = get(row.fd);
    const Collector::Result* r = get(row.ref);
    if (f == nullptr || r == nullptr || r->ns == 0) continue;
    double ratio = f->ns / r->ns;
    std::printf("%-38s %12.0f %12.0f %6.2fx %5.2fx %s\n", row.what, f->ns,
                r->ns, ratio, row.goal, ratio <= row.goal ? "met" : "NOT met");
  }
  std::printf("\nCPU time (user+sys, both threads) per round trip:\n");
  for (const auto& [name, r] : c.results) {
    auto it = r.counters.find("cpu_us_per_rt");
    if (it == r.counters.end()) continue;
    std::printf("  %-40s %7.2f us (wall %7.2f us)\n", name.c_str(), it->second,
                r.ns / 1000);
  }
  if (const auto* r = get("BM_SetReadDeadline_Rearm_10kArmed")) {
    std::printf(
        "\nSetReadDeadline re-arm, 10,000 armed: %.0f ns/op (goal <= "
        "100 ns) %s\n",
        r->ns, r->ns <= 100 ? "met" : "NOT met");
  }
  if (const auto* r = get("BM_MemoryPerIdleFd")) {
    double b = r->counters.at("bytes_per_fd");
    std::printf("memory per registered idle FD: %.0f bytes (goal <= 256) %s\n",
                b, b <= 256 ? "met" : "NOT met");
  }
}

}  // namespace
}  // namespace gopoll::bench

int main(int argc, char** argv) {
  // 10,000 idle FDs plus the rest need more than the usual 1024 descriptors.
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  gopoll::bench::Collector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);
  gopoll::bench::PrintTable(collector);
  benchmark::Shutdown();
  return 0;
}
