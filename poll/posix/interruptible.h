// SPDX-License-Identifier: BSD-3-Clause
// poll/posix/interruptible.h
//
// The interruptible-call waiting strategy (Go's fd_plan9 model), shared by
// the POSIX backends: the descriptor stays in blocking mode, the calling
// thread makes the one blocking system call, and a deadline or Close that
// passes meanwhile interrupts it (SyscallInterrupter, interrupter.h). An
// operation costs exactly the raw system call plus a few atomics; there is
// no EAGAIN round trip and no poller wake-up.
//
// plan9_stub uses it for every pollable FD; the epoll backend for FDs
// initialised with WaitStrategy::kInterruptibleCall (its default for
// blocking callers). An FD on this strategy has a PollDesc opened without a
// poller (pollable() is true, poll_desc().poller() is null).
//
// Threads making these calls must not block the interrupt signal (SIGURG).
#ifndef POLL_POSIX_INTERRUPTIBLE_H_
#define POLL_POSIX_INTERRUPTIBLE_H_

#include <cstddef>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "poll/fd.h"

namespace gopoll::posix {

// Sets the FD up for the strategy: regular files and directories stay
// non-pollable (their calls do not block indefinitely; deadlines report
// IsNoDeadline), everything else is put in blocking mode and its PollDesc
// opened without a poller. Returns whether the FD became pollable.
absl::StatusOr<bool> InitInterruptible(FD& fd);

// FD::ExecIO for the strategy: runs `attempt` as the blocking call with the
// thread's interrupter armed for direction `d`; EINTR caused by a deadline
// or Close becomes its error, any other EINTR retries. EAGAIN (the
// description is non-blocking after all, or MSG_DONTWAIT) waits for
// readiness and retries, unless `wait_on_eagain` is false.
absl::StatusOr<size_t> ExecInterruptible(
    FD& fd, internal::Dir d, const char* syscall,
    absl::FunctionRef<IoResult(void* ctx)> attempt, bool wait_on_eagain = true);

// FD::ConnectImpl for the strategy: a connect interrupted part way goes on
// in the background, so the call waits for it (poll) inside the window.
absl::Status ConnectInterruptible(FD& fd, const SockAddr& addr);

// FD::RawIOImpl for the strategy: runs f until it returns true, waiting for
// readiness with an interruptible poll(2) in between.
absl::Status RawIOInterruptible(FD& fd, internal::Dir d,
                                absl::FunctionRef<bool(Sysfd)> f);

}  // namespace gopoll::posix

#endif  // POLL_POSIX_INTERRUPTIBLE_H_
