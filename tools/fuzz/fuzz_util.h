// SPDX-License-Identifier: BSD-3-Clause
// tools/fuzz/fuzz_util.h: the fuzz target's checks. Failed checks abort
// (libFuzzer then saves the input as a crash): Require/Fail; byte patterns
// that make lost, duplicated, reordered or invented data visible (a stream
// byte is a hash of its offset; a message carries its number and length);
// descriptor counting for the per-input leak check.
#ifndef TOOLS_FUZZ_FUZZ_UTIL_H_
#define TOOLS_FUZZ_FUZZ_UTIL_H_

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "poll/fd.h"
#include "poll/loop/loop.h"

namespace gopoll::fuzz {

[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "fd_ops_fuzzer: CHECK FAILED: %s\n", what.c_str());
  std::abort();
}

inline void Require(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

// FUZZ_TRACE=1 in the environment: print every step (to read a crash).
inline bool Trace() {
  static const bool on = getenv("FUZZ_TRACE") != nullptr;
  return on;
}

inline uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline char StreamByte(uint32_t salt, uint64_t off) {
  return static_cast<char>(Mix((uint64_t{salt} << 40) ^ off));
}

inline void FillStream(uint32_t salt, uint64_t off, absl::Span<char> buf) {
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = StreamByte(salt, off + i);
}

inline void CheckStream(uint32_t salt, uint64_t off,
                        absl::Span<const char> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] != StreamByte(salt, off + i)) {
      Fail("stream: wrong byte at offset " + std::to_string(off + i) +
           " (lost, duplicated or reordered data)");
    }
  }
}

// A message: 8 bytes of its number, 4 of its length, then a pattern.
inline constexpr size_t kMsgHeader = 12;

inline char MsgByte(uint32_t salt, uint64_t seq, size_t i) {
  return static_cast<char>(Mix((uint64_t{salt} << 40) ^ (seq << 20) ^ i));
}

inline void FillMessage(uint32_t salt, uint64_t seq, absl::Span<char> buf) {
  const uint32_t len = static_cast<uint32_t>(buf.size());
  std::memcpy(buf.data(), &seq, 8);
  std::memcpy(buf.data() + 8, &len, 4);
  for (size_t i = kMsgHeader; i < buf.size(); ++i) {
    buf[i] = MsgByte(salt, seq, i);
  }
}

// Checks a received message (read with a buffer of `cap` bytes); returns
// its number.
inline int64_t CheckMessage(uint32_t salt, absl::Span<const char> data,
                            size_t cap) {
  Require(data.size() >= kMsgHeader, "seqpacket: message without header");
  uint64_t seq;
  uint32_t len;
  std::memcpy(&seq, data.data(), 8);
  std::memcpy(&len, data.data() + 8, 4);
  Require(len >= kMsgHeader && seq < (uint64_t{1} << 40),
          "seqpacket: garbled header");
  Require(data.size() == std::min<size_t>(len, cap),
          "seqpacket: message of " + std::to_string(len) + " bytes came as " +
              std::to_string(data.size()) + " (buffer " + std::to_string(cap) +
              ")");
  for (size_t i = kMsgHeader; i < data.size(); ++i) {
    Require(data[i] == MsgByte(salt, seq, i), "seqpacket: garbled message");
  }
  return static_cast<int64_t>(seq);
}

inline int CountOpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n - 3;  // ".", ".." and the DIR's own descriptor
}

// Fails unless the count comes back to `before` (a descriptor may be open
// for a moment, e.g. on another thread: allow it a second to settle).
inline void ExpectFdCount(int before) {
  int now = CountOpenFds();
  for (int i = 0; i < 100 && now != before; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    now = CountOpenFds();
  }
  Require(now == before, "descriptor leak: " + std::to_string(before) +
                             " open before the input, " + std::to_string(now) +
                             " after");
}

// Starts the process-wide machinery (deadline thread, epoll instance,
// signal handler) before the first count.
inline void WarmUp() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) Fail("pipe2");
  FD r(p[0]);
  FD w(p[1]);
  Require(r.Init(FdKind::kPipe, true, WaitStrategy::kPoller).ok(), "init");
  Require(w.Init(FdKind::kPipe, true).ok(), "init");
  Require(r.SetReadDeadline(absl::Now() - absl::Seconds(1)).ok(), "dl");
  Require(w.SetWriteDeadline(absl::Now() + absl::Milliseconds(1)).ok(), "dl");
  char c = 0;
  (void)r.Read(absl::MakeSpan(&c, 1));
  Loop loop;
  loop.RunOnce(absl::ZeroDuration());
}

}  // namespace gopoll::fuzz

#endif  // TOOLS_FUZZ_FUZZ_UTIL_H_
