// SPDX-License-Identifier: BSD-3-Clause
#include "poll/internal/detached_thread.h"

#include <pthread.h>

#include <memory>
#include <utility>

namespace gopoll::internal {
namespace {

void* RunAndFree(void* arg) {
  std::unique_ptr<absl::AnyInvocable<void() &&>> fn(
      static_cast<absl::AnyInvocable<void() &&>*>(arg));
  std::move (*fn)();
  return nullptr;
}

}  // namespace

bool SpawnDetached(absl::AnyInvocable<void() &&> fn) {
  auto* arg = new absl::AnyInvocable<void() &&>(std::move(fn));
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) {
    delete arg;
    return false;
  }
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  const int rc = pthread_create(&t, &attr, RunAndFree, arg);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete arg;
    return false;
  }
  return true;
}

}  // namespace gopoll::internal
