// SPDX-License-Identifier: BSD-3-Clause
#include "poll/loop/op_pool.h"

#include <new>

#include "poll/internal/sanitizers.h"

namespace gopoll::op_pool {
namespace {

// Not under the sanitizers (a reused block would hide a use after free, an
// uninitialised read or a race on the op), not with -DGOPOLL_NO_OP_POOL
// (Valgrind, debugging: the allocator's own checks then see every op), and
// not on Windows, where mingw's emulated TLS may free a thread's
// thread_locals before other thread-exit code runs (seen with ThreadWaiter).
#if defined(GOPOLL_NO_OP_POOL) || defined(_WIN32)
constexpr bool kPooling = false;
#else
constexpr bool kPooling = !internal::kAnySanitizer;
#endif

constexpr int kMaxCached = 64;

struct Cache {
  void* head = nullptr;  // freed blocks, linked through their first word
  int size = 0;
  ~Cache();
};

thread_local Cache t_cache;
// Set once the thread's cache is gone (thread exit): frees after that go to
// the global allocator. Trivially destructible, so readable to the end.
thread_local bool t_cache_gone = false;

Cache::~Cache() {
  t_cache_gone = true;
  while (head != nullptr) {
    void* next = *static_cast<void**>(head);
    ::operator delete(head, kBlockSize);
    head = next;
  }
  size = 0;
}

}  // namespace

void* Allocate(size_t size) {
  if (!kPooling || size > kBlockSize) return ::operator new(size);
  if (!t_cache_gone) {
    Cache& c = t_cache;
    if (void* p = c.head) {
      c.head = *static_cast<void**>(p);
      --c.size;
      return p;
    }
  }
  return ::operator new(kBlockSize);
}

void Free(void* p, size_t size) {
  if (p == nullptr) return;
  if (!kPooling || size > kBlockSize) {
    ::operator delete(p, size);
    return;
  }
  if (!t_cache_gone) {
    Cache& c = t_cache;
    if (c.size < kMaxCached) {
      *static_cast<void**>(p) = c.head;
      c.head = p;
      ++c.size;
      return;
    }
  }
  ::operator delete(p, kBlockSize);
}

}  // namespace gopoll::op_pool
