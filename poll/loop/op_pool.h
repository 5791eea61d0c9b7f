// SPDX-License-Identifier: BSD-3-Clause
// poll/loop/op_pool.h
//
// OpPool: the memory of event-loop operations (AsyncOp and its subclasses,
// one per read or write). A loop allocates and frees one per operation, so
// each thread keeps up to 64 freed blocks of kBlockSize bytes for reuse
// instead of going through malloc and free. Larger requests, and all of
// them under the sanitizers, with -DGOPOLL_NO_OP_POOL (Valgrind) and on
// Windows, go to the global allocator. Blocks have the default new
// alignment (over-aligned ops do not compile: AsyncOp deletes that form). A
// block may be freed on another thread than the one that allocated it; it then
// joins that thread's cache. A thread's cache is released when the thread
// exits.
#ifndef POLL_LOOP_OP_POOL_H_
#define POLL_LOOP_OP_POOL_H_

#include <cstddef>

namespace gopoll::op_pool {

inline constexpr size_t kBlockSize = 256;

void* Allocate(size_t size);
void Free(void* p, size_t size);

}  // namespace gopoll::op_pool

#endif  // POLL_LOOP_OP_POOL_H_
