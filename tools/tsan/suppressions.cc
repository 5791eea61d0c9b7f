// SPDX-License-Identifier: BSD-3-Clause
// The single known abseil false positive under TSan: absl::Mutex wake-ups
// (synchronization_internal::Waiter::Post) race with the mmap-initialised
// thread identity in TSan's view (google/sanitizers#953, abseil-cpp#217).
// Nothing else is suppressed: real races in our code still fail the tests.
//
// Linked into every binary of --config=tsan through --custom_malloc
// (alwayslink + linkstatic, so libtsan finds the symbol).
extern "C" const char* __tsan_default_suppressions() {
  return "race:synchronization_internal::Waiter::Post\n";
}
