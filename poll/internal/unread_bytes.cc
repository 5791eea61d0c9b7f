// SPDX-License-Identifier: BSD-3-Clause
#include "poll/internal/unread_bytes.h"

#include <algorithm>
#include <cstring>

namespace gopoll::internal {

void UnreadBytes::Keep(absl::Span<const char> data, bool message) {
  if (data.empty() && !message)
    return;  // a stream's 0 bytes: EOF, kept by the OS
  if (q_ == nullptr) q_ = std::make_unique<Queue>();
  q_->message = message;
  q_->chunks.emplace_back(data.data(), data.size());
}

size_t UnreadBytes::size() const {
  if (empty()) return 0;
  size_t n = 0;
  for (const std::string& c : q_->chunks) n += c.size();
  return n - q_->off;
}

size_t UnreadBytes::Take(absl::Span<const absl::Span<char>> bufs,
                         bool* truncated) {
  if (truncated != nullptr) *truncated = false;
  if (empty()) return 0;
  Queue& q = *q_;
  size_t total = 0;
  size_t b = 0, boff = 0;  // position in bufs
  while (!q.chunks.empty()) {
    std::string& front = q.chunks.front();
    while (q.off < front.size() && b < bufs.size()) {
      const size_t n = std::min(front.size() - q.off, bufs[b].size() - boff);
      if (n > 0) std::memcpy(bufs[b].data() + boff, front.data() + q.off, n);
      q.off += n;
      boff += n;
      total += n;
      if (boff == bufs[b].size()) {
        ++b;
        boff = 0;
      }
    }
    if (q.message) {
      // One message per read; what did not fit is gone, as with the OS.
      if (q.off < front.size() && truncated != nullptr) *truncated = true;
      q.chunks.pop_front();
      q.off = 0;
      break;
    }
    if (q.off < front.size()) break;  // the caller's buffers are full
    q.chunks.pop_front();
    q.off = 0;
  }
  return total;
}

}  // namespace gopoll::internal
