// SPDX-License-Identifier: BSD-3-Clause
// The plan9_stub backend's part of FD (Go's fd_plan9 model): no OS poller;
// every pollable FD uses the interruptible-call strategy shared with the
// epoll backend (poll/posix/interruptible.h): descriptors stay blocking and
// a deadline or Close interrupts the blocked call. The system calls
// themselves are in poll/posix/fd_posix.cc.
#include "poll/fd.h"
#include "poll/internal/poller.h"
#include "poll/posix/interruptible.h"
#include "poll/posix/posix_calls.h"

namespace gopoll {

// No readiness poller: event loops run blocking operations on helper
// threads (poll/loop/offload.h).
absl::StatusOr<std::unique_ptr<internal::Poller>> internal::NewLoopPoller(
    LoopBackend, unsigned /*ring_entries*/) {
  return std::unique_ptr<internal::Poller>();
}

absl::Status FD::InitBackend(bool pollable, WaitStrategy strategy,
                             internal::Poller* loop_poller) {
  // An explicit request for a poller is refused; an event loop's poller (a
  // loop never has one here) is ignored, as fd.h says.
  if (pollable && strategy == WaitStrategy::kPoller && loop_poller == nullptr) {
    return absl::UnimplementedError(
        "poll: plan9_stub has no OS poller (WaitStrategy::kPoller)");
  }
  absl::Status s = posix::InitKind(sysfd_, kind_, &zero_read_is_eof_);
  if (!s.ok()) return s;
  if (pollable) {
    absl::StatusOr<bool> p = posix::InitInterruptible(*this);
    if (!p.ok()) return p.status();
    pollable = *p;
  }
  // Blocked calls can be interrupted, so Close waits for them.
  blocking_.store(!pollable);
  return absl::OkStatus();
}

absl::StatusOr<size_t> FD::ExecIO(
    internal::Dir d, const char* syscall,
    absl::FunctionRef<IoResult(void* ctx)> attempt) {
  return posix::ExecInterruptible(*this, d, syscall, attempt);
}

absl::Status FD::ConnectImpl(const SockAddr& addr) {
  return posix::ConnectInterruptible(*this, addr);
}

absl::Status FD::RawIOImpl(internal::Dir d, absl::FunctionRef<bool(Sysfd)> f) {
  return posix::RawIOInterruptible(*this, d, f);
}

// No readiness poller: loops run every operation on a helper thread.
bool FD::AsyncNative(internal::Poller* /*loop_poller*/, bool /*resumable*/) {
  return false;
}

void FD::CancelAsync(void* /*backend_op*/) {}
void FD::FreeAsync(void* /*backend_op*/) {}
bool FD::OneLoopOpAtATime() const { return false; }
bool FD::LoopRunsItsCalls() const { return false; }
void FD::KeepAbandonedRead(void* /*backend_op*/,
                           absl::Span<const char> /*buf*/) {}
void FD::KeepUnread(absl::Span<const char> buf) {
  unread_.Keep(buf, posix::IsMessageSocket(sysfd_, kind_));
}

}  // namespace gopoll
