// SPDX-License-Identifier: BSD-3-Clause
// The delays of poll/internal/perturb.h. Empty unless GOPOLL_PERTURB is
// defined.
#include "poll/internal/perturb.h"

#ifdef GOPOLL_PERTURB

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace gopoll::perturb_internal {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t HashName(const char* s) {  // FNV-1a
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s != '\0'; ++s)
    h = (h ^ static_cast<unsigned char>(*s)) * 0x100000001b3ull;
  return h;
}

std::atomic<uint64_t> thread_count{0};

uint64_t NextRandom() {
  thread_local uint64_t state =
      Mix(Seed() ^ Mix(thread_count.fetch_add(1) + 1));
  state = Mix(state);
  return state;
}

}  // namespace

uint64_t Seed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("GOPOLL_PERTURB_SEED");
    return env == nullptr ? uint64_t{0} : std::strtoull(env, nullptr, 10);
  }();
  return seed;
}

Site::Site(const char* name) : one_in_(0), max_delay_ns_(0) {
  if (Seed() == 0) return;
  const uint64_t h = Mix(Seed() ^ HashName(name));
  static constexpr uint32_t kOneIn[] = {0, 2, 4, 8, 16};
  static constexpr uint32_t kMaxNs[] = {0, 20'000, 200'000, 2'000'000};
  one_in_ = kOneIn[h % 5];
  max_delay_ns_ = kMaxNs[(h >> 8) % 4];
}

void Site::Hit() {
  if (one_in_ == 0) return;
  const uint64_t r = NextRandom();
  if (r % one_in_ != 0) return;
  if (max_delay_ns_ == 0) {
    std::this_thread::yield();
    return;
  }
  std::this_thread::sleep_for(
      std::chrono::nanoseconds((r >> 16) % max_delay_ns_ + 1));
}

}  // namespace gopoll::perturb_internal

#endif  // GOPOLL_PERTURB
