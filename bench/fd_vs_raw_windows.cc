// SPDX-License-Identifier: BSD-3-Clause
// What the FD layer costs on Windows: 4 KiB reads of a cached regular file
// through an FD beside raw ReadFile doing the same work on an equivalent
// handle, in the same run, then a table of ratios against the goals of
// in BENCHMARKS.md ("Windows (under Wine)").
//
//   ./bazelw build -c opt --config=windows //bench:fd_vs_raw_windows
//   tools/wine/wine.sh bazel-bin/bench/fd_vs_raw_windows
//
// BM_ReadSync: a handle opened without FILE_FLAG_OVERLAPPED (FD: plain
// blocking ReadFile) vs ReadFile on such a handle. BM_ReadOverlapped: a
// handle opened with it (FD: lazily bound to the IOCP, skip-on-success, its
// own offset) vs ReadFile with an OVERLAPPED + event + GetOverlappedResult,
// and vs a handle bound to a private port with skip-on-success (what the FD
// does, without the FD). The table shows CPU time of the benchmark thread
// (the goal applies to it; the VM is shared) and wall time per read.
//
// By default each benchmark runs 5 times, the repetitions of all benchmarks
// shuffled (--benchmark_repetitions=5
// --benchmark_enable_random_interleaving=true); the console and the table
// show medians. Passing either flag yourself turns the defaults off.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/report.h"
#include "bench/windows_bodies.h"
#include "benchmark/benchmark.h"

namespace gopoll::bench {
namespace {

using Mode = WinFileReader::Mode;

WinFileReader& Reader(Mode m) {
  static WinFileReader* sync = new WinFileReader(1 << 20, Mode::kSync);
  static WinFileReader* ov = new WinFileReader(1 << 20, Mode::kOverlapped);
  return m == Mode::kSync ? *sync : *ov;
}

template <Mode kMode, int64_t (WinFileReader::*kRead)(int)>
void BM_Read(benchmark::State& state) {
  WinFileReader& r = Reader(kMode);
  const int64_t pending = r.raw_pending();
  for (auto _ : state) benchmark::DoNotOptimize((r.*kRead)(1));
  state.SetBytesProcessed(state.iterations() * WinFileReader::kBlock);
  // Raw overlapped reads that did not complete at once, per read.
  state.counters["pending"] = static_cast<double>(r.raw_pending() - pending) /
                              static_cast<double>(state.iterations());
  if (r.mismatches() != 0) state.SkipWithError("read the wrong bytes");
}

// BM_ReadSync with FD and raw reads interleaved in one benchmark
// (RunInterleaved, bench/report.h). Timed with the steady clock (the
// performance counter): a synchronous read of a cached file does not wait,
// so its wall time is its CPU time; the thread CPU clock is coarse here.
void BM_ReadSyncInterleaved(benchmark::State& state) {
  WinFileReader& r = Reader(Mode::kSync);
  RunInterleaved(
      state, [&](int n) { return r.ReadFd(n); },
      [&](int n) { return r.ReadRaw(n); },
      [] {
        return static_cast<double>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now().time_since_epoch())
                .count());
      });
  if (r.mismatches() != 0) state.SkipWithError("read the wrong bytes");
}

void RegisterAll() {
  auto reg = [](const char* name, void (*fn)(benchmark::State&)) {
    benchmark::RegisterBenchmark(name, fn)->UseRealTime()->MinTime(0.3);
  };
  reg("BM_ReadSync/raw", BM_Read<Mode::kSync, &WinFileReader::ReadRaw>);
  reg("BM_ReadSync/fd", BM_Read<Mode::kSync, &WinFileReader::ReadFd>);
  benchmark::RegisterBenchmark("BM_ReadSync/interleaved",
                               BM_ReadSyncInterleaved)
      ->MinTime(0.5);
  reg("BM_ReadOverlapped/raw_event",
      BM_Read<Mode::kOverlapped, &WinFileReader::ReadRaw>);
  reg("BM_ReadOverlapped/raw_iocp",
      BM_Read<Mode::kOverlapped, &WinFileReader::ReadRawIocp>);
  reg("BM_ReadOverlapped/fd",
      BM_Read<Mode::kOverlapped, &WinFileReader::ReadFd>);
}

// --- The ratio table.

void PrintTable(const Collector& c) {
  struct Pair {
    const char* what;
    const char* fd;
    const char* ref;
    double goal;  // 0: no goal, the ratio is information
  };
  const Pair pairs[] = {
      {"4 KiB read, sync handle: FD / ReadFile", "BM_ReadSync/fd",
       "BM_ReadSync/raw", 1.05},
      {"4 KiB read, overlapped: FD / ReadFile+event+wait",
       "BM_ReadOverlapped/fd", "BM_ReadOverlapped/raw_event", 0},
      {"4 KiB read, overlapped: FD / ReadFile on own IOCP, skip-on-success",
       "BM_ReadOverlapped/fd", "BM_ReadOverlapped/raw_iocp", 0},
  };
  std::printf(
      "\n| FD vs raw (medians) | FD cpu | raw cpu | cpu ratio | goal | | FD "
      "wall | raw wall | wall ratio |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const Pair& p : pairs) {
    double f = c.CpuNs(p.fd), r = c.CpuNs(p.ref);
    double fw = c.Ns(p.fd), rw = c.Ns(p.ref);
    if (f < 0 || r <= 0 || fw < 0 || rw <= 0) continue;
    double ratio = f / r;
    std::string goal =
        p.goal > 0 ? absl::StrFormat("<=%.2fx", p.goal) : std::string("-");
    const char* met = p.goal <= 0       ? ""
                      : ratio <= p.goal ? "met"
                                        : "**not met**";
    std::printf(
        "| %s | %.0f ns | %.0f ns | %.2fx | %s | %s | %.0f ns | %.0f "
        "ns | %.2fx |\n",
        p.what, f, r, ratio, goal.c_str(), met, fw, rw, fw / rw);
  }
  const double fi = c.Counter("BM_ReadSync/interleaved", "fd_ns");
  const double ri = c.Counter("BM_ReadSync/interleaved", "raw_ns");
  if (fi >= 0 && ri > 0) {
    std::printf(
        "| 4 KiB read, sync handle, interleaved with ReadFile (wall) | | | "
        "| <=1.05x | %s | %.0f ns | %.0f ns | %.2fx |\n",
        fi / ri <= 1.05 ? "met" : "**not met**", fi, ri, fi / ri);
  }
  std::printf(
      "\nPer 4 KiB read of a cached 1 MiB file. cpu: CPU time of the "
      "benchmark thread (the goal applies to it, as for Linux's file rows); "
      "wall: elapsed time, which for overlapped reads includes waiting for "
      "the completion.\n"
      "Under Wine these are Wine's costs (its wineserver does part of each "
      "call), not Windows'.\n");
}

}  // namespace
}  // namespace gopoll::bench

int main(int argc, char** argv) {
  return gopoll::bench::RunBenchmarks(argc, argv, /*default_reps=*/5,
                                      gopoll::bench::RegisterAll,
                                      gopoll::bench::PrintTable);
}
