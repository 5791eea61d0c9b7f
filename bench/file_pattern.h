// SPDX-License-Identifier: BSD-3-Clause
// bench/file_pattern.h
//
// The byte pattern of the benchmarks' test files, shared by the Linux and
// Windows file readers: byte `off` of a file is PatternByte(off), and a
// block read at `off` is checked by its first and last byte.
#ifndef BENCH_FILE_PATTERN_H_
#define BENCH_FILE_PATTERN_H_

#include <cstddef>
#include <cstdint>

namespace gopoll::bench {

inline char PatternByte(int64_t off) {
  return static_cast<char>((off * 131) ^ (off >> 12));
}

// True if the `n` bytes at `buf`, read from offset `off`, start and end
// with the pattern's bytes (an empty read matches).
inline bool MatchesPattern(const char* buf, size_t n, int64_t off) {
  if (n == 0) return true;
  return buf[0] == PatternByte(off) &&
         buf[n - 1] == PatternByte(off + static_cast<int64_t>(n) - 1);
}

}  // namespace gopoll::bench

#endif  // BENCH_FILE_PATTERN_H_
