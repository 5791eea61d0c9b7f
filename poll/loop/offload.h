// SPDX-License-Identifier: BSD-3-Clause
// poll/loop/offload.h
//
// Offload runs a function on a helper thread: event loops use it for
// operations their thread must not block on (FDs their poller cannot watch,
// and every FD on backends without a readiness poller). Each call gets a
// thread of its own for as long as it runs (the operation may block until a
// deadline or Close), reusing idle threads; a thread idle for 10 s exits.
#ifndef POLL_LOOP_OFFLOAD_H_
#define POLL_LOOP_OFFLOAD_H_

#include "absl/functional/any_invocable.h"

namespace gopoll {

void Offload(absl::AnyInvocable<void() &&> fn);

}  // namespace gopoll

#endif  // POLL_LOOP_OFFLOAD_H_
