// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/unread_bytes.h
//
// Internal (not for applications; see API_STABILITY.md).
//
// UnreadBytes: data the OS handed to a read whose consumer was gone by the
// time it completed, kept for the FD's next read. On a completion backend
// (io_uring, IOCP) an event loop's read is in the kernel's hands; when the
// coroutine awaiting it is destroyed (Loop destruction, a Task destroyed
// while suspended), the loop cancels it, but the cancel can lose the race:
// the kernel already copied bytes into the buffer. FD keeps those bytes
// here and its next read of any form (Read, ReadV, ReadMsg, RecvFrom, a
// loop read) returns them before asking the OS again, so abandoning a read
// never loses data. (A read on a helper thread, poll/loop/offload.h, keeps
// its bytes here when it was abandoned while it ran; one abandoned after it
// returned, before the loop took the result, drops them.)
// The kept bytes carry no sender and no control data (ReadMsg, RecvFrom),
// and MSG_PEEK or other flags do not apply to them.
//
// A stream's bytes are returned over as many reads as they need. On a
// message socket (datagram, seqpacket) each kept read is one message: a
// read returns one, truncated to its buffer as the OS would truncate it. A
// message the abandoned read itself truncated (its buffer was shorter)
// stays truncated: the OS dropped the rest then.
//
// Not synchronized: FD touches it only under its read lock.
#ifndef POLL_INTERNAL_UNREAD_BYTES_H_
#define POLL_INTERNAL_UNREAD_BYTES_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <string>

#include "absl/types/span.h"

namespace gopoll::internal {

class UnreadBytes {
 public:
  bool empty() const { return q_ == nullptr || q_->chunks.empty(); }
  // Bytes kept (what a stream's position is ahead of its reader).
  size_t size() const;
  void Clear() { q_.reset(); }
  // Appends `data` (one message if `message`).
  void Keep(absl::Span<const char> data, bool message);
  // Moves kept bytes into `bufs`, in order; returns how many. For a message
  // longer than `bufs`, sets *truncated (if given) and drops the rest.
  size_t Take(absl::Span<const absl::Span<char>> bufs,
              bool* truncated = nullptr);
  size_t Take(absl::Span<char> buf, bool* truncated = nullptr) {
    return Take(absl::MakeConstSpan(&buf, 1), truncated);
  }

 private:
  struct Queue {
    std::deque<std::string> chunks;
    size_t off = 0;  // consumed bytes of chunks.front() (streams)
    bool message = false;
  };
  std::unique_ptr<Queue> q_;  // null until the first Keep (FD stays small)
};

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_UNREAD_BYTES_H_
