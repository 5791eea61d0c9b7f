// SPDX-License-Identifier: BSD-3-Clause
#include "poll/internal/leader_followers.h"

namespace gopoll::internal {

void LeaderFollowers::Park(ThreadWaiter& w, Poller* poller,
                           absl::FunctionRef<void()> wait_once) {
  for (;;) {
    if (w.Take(ThreadWaiter::kWoken)) return;
    bool lead = false;
    {
      absl::MutexLock l(&mu_);
      if (leader_ == nullptr && !reserved_) {
        leader_ = &w;
        lead = true;
      } else {
        w.following = true;
        w.next_follower = nullptr;
        if (tail_ != nullptr) {
          tail_->next_follower = &w;
        } else {
          head_ = &w;
        }
        tail_ = &w;
      }
    }
    if (!lead) {
      w.WaitFor(ThreadWaiter::kWoken | ThreadWaiter::kLead);
      if (w.Take(ThreadWaiter::kLead)) {
        lead = true;  // the old leader made us leader_ and unlinked us
      } else {
        absl::MutexLock l(&mu_);
        if (w.following) {
          Unfollow(w);  // woken for our own event, not to lead
        } else if (w.Take(ThreadWaiter::kLead)) {
          lead = true;  // granted between WaitFor and taking mu_
        }
      }
    }
    if (lead) Lead(w, poller, wait_once);
  }
}

void LeaderFollowers::Unfollow(ThreadWaiter& w) {
  ThreadWaiter* prev = nullptr;
  for (ThreadWaiter* f = head_; f != nullptr; prev = f, f = f->next_follower) {
    if (f != &w) continue;
    if (prev != nullptr) {
      prev->next_follower = f->next_follower;
    } else {
      head_ = f->next_follower;
    }
    if (tail_ == f) tail_ = prev;
    break;
  }
  w.following = false;
}

void LeaderFollowers::Lead(ThreadWaiter& w, Poller* poller,
                           absl::FunctionRef<void()> wait_once) {
  // Published before the check below, so a Wake() either is seen by the
  // check or finds the poller to interrupt.
  w.SetLeading(poller);
  while (!w.IsWoken()) wait_once();
  w.SetLeading(nullptr);
  absl::MutexLock l(&mu_);
  leader_ = nullptr;
  PromoteOldestLocked();
}

void LeaderFollowers::PromoteOldestLocked() {
  if (ThreadWaiter* f = head_) {
    head_ = f->next_follower;
    if (head_ == nullptr) tail_ = nullptr;
    f->next_follower = nullptr;
    f->following = false;
    leader_ = f;
    f->Post(ThreadWaiter::kLead);
  }
}

void LeaderFollowers::ReserveLeadership() {
  absl::MutexLock l(&mu_);
  reserved_ = true;
}

void LeaderFollowers::ReleaseLeadership() {
  absl::MutexLock l(&mu_);
  if (!reserved_) return;
  reserved_ = false;
  if (leader_ == nullptr) PromoteOldestLocked();
}

}  // namespace gopoll::internal
