// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/detached_thread.h
//
// SpawnDetached() runs a function on a new thread that nobody joins (helper
// threads whose work may block for an unknown time). The thread is created
// detached, through the pthread attribute, and never detached after it
// started: with mingw-w64's winpthreads, pthread_detach() (what
// std::thread::detach() calls) on a thread that has already finished races
// with that thread's exit, and the thread record can end up handed to two
// later threads (seen under Wine: a new thread started with a null argument
// and crashed, about once in 25 runs of a test that makes many short-lived
// helper threads).
#ifndef POLL_INTERNAL_DETACHED_THREAD_H_
#define POLL_INTERNAL_DETACHED_THREAD_H_

#include "absl/functional/any_invocable.h"

namespace gopoll::internal {

// Starts `fn` on a new detached thread. False if no thread could be created
// (`fn` is then destroyed without running).
bool SpawnDetached(absl::AnyInvocable<void() &&> fn);

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_DETACHED_THREAD_H_
