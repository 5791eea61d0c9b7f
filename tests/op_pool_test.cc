// SPDX-License-Identifier: BSD-3-Clause
// The event loop's operation memory (poll/loop/op_pool.h): blocks are
// usable and distinct while live, reused after free where pooling is on,
// may be freed on another thread, and survive thread exit (the leak check
// of the asan leg and the tsan leg run this too).
#include "poll/loop/op_pool.h"

#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "poll/internal/sanitizers.h"

namespace gopoll::op_pool {
namespace {

TEST(OpPool, LiveBlocksAreDistinctAndWritable) {
  std::vector<void*> blocks;
  std::set<void*> seen;
  for (int i = 0; i < 200; ++i) {
    void* p = Allocate(kBlockSize - (i % 7));
    std::memset(p, i, kBlockSize - (i % 7));
    EXPECT_TRUE(seen.insert(p).second);
    blocks.push_back(p);
  }
  for (int i = 0; i < 200; ++i) Free(blocks[i], kBlockSize - (i % 7));
}

TEST(OpPool, FreedBlockIsReusedWherePoolingIsOn) {
  void* p = Allocate(kBlockSize);
  Free(p, kBlockSize);
  void* q = Allocate(kBlockSize);
#if defined(_WIN32) || defined(GOPOLL_NO_OP_POOL)
  constexpr bool kPooling = false;
#else
  constexpr bool kPooling = !internal::kAnySanitizer;
#endif
  if (kPooling) {
    EXPECT_EQ(q, p);  // the thread's cache hands it back
  }
  Free(q, kBlockSize);
}

TEST(OpPool, LargeRequestsGoToTheAllocator) {
  void* p = Allocate(kBlockSize * 4);
  std::memset(p, 1, kBlockSize * 4);
  Free(p, kBlockSize * 4);
}

TEST(OpPool, FreedOnAnotherThreadAndThreadsExit) {
  std::vector<void*> blocks(100);
  std::thread a([&] {
    for (void*& p : blocks) {
      p = Allocate(64);
      std::memset(p, 2, 64);
    }
  });
  a.join();
  std::thread b([&] {
    for (void* p : blocks) Free(p, 64);  // into b's cache, freed at b's exit
    void* q = Allocate(64);              // from b's cache where pooling is on
    std::memset(q, 3, 64);
    Free(q, 64);
  });
  b.join();
}

}  // namespace
}  // namespace gopoll::op_pool
