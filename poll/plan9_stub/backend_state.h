// SPDX-License-Identifier: BSD-3-Clause
// poll/plan9_stub/backend_state.h (included as "poll/backend_state.h")
//
// Per-FD state of the plan9_stub backend: none. Interrupting a blocked call
// is per thread (see interrupter.h), deadlines and closing are in PollDesc.
#ifndef POLL_PLAN9_STUB_BACKEND_STATE_H_
#define POLL_PLAN9_STUB_BACKEND_STATE_H_

namespace gopoll {

struct BackendState {};

}  // namespace gopoll

#endif  // POLL_PLAN9_STUB_BACKEND_STATE_H_
