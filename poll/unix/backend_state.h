// SPDX-License-Identifier: BSD-3-Clause
// poll/unix/backend_state.h (included as "poll/backend_state.h")
//
// Per-FD state only the epoll backend needs. Everything else lives in the
// shared FD and PollDesc; epoll needs nothing more.
#ifndef POLL_UNIX_BACKEND_STATE_H_
#define POLL_UNIX_BACKEND_STATE_H_

namespace gopoll {

struct BackendState {};

}  // namespace gopoll

#endif  // POLL_UNIX_BACKEND_STATE_H_
