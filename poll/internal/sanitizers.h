// SPDX-License-Identifier: BSD-3-Clause
// poll/internal/sanitizers.h
//
// Which sanitizer this translation unit is built with, as constants (gcc
// defines __SANITIZE_*__, clang answers __has_feature), for the few places
// where the library must behave differently under one.
#ifndef POLL_INTERNAL_SANITIZERS_H_
#define POLL_INTERNAL_SANITIZERS_H_

namespace gopoll::internal {

#if defined(__has_feature)
#define GOPOLL_HAS_FEATURE(x) __has_feature(x)
#else
#define GOPOLL_HAS_FEATURE(x) 0
#endif

inline constexpr bool kThreadSanitizer =
#if defined(__SANITIZE_THREAD__) || GOPOLL_HAS_FEATURE(thread_sanitizer)
    true;
#else
    false;
#endif

// Any sanitizer that checks memory or threads (ASan, HWASan, MSan, TSan).
inline constexpr bool kAnySanitizer =
#if defined(__SANITIZE_ADDRESS__) || GOPOLL_HAS_FEATURE(address_sanitizer) || \
    GOPOLL_HAS_FEATURE(hwaddress_sanitizer) ||                                \
    GOPOLL_HAS_FEATURE(memory_sanitizer)
    true;
#else
    kThreadSanitizer;
#endif

#undef GOPOLL_HAS_FEATURE

}  // namespace gopoll::internal

#endif  // POLL_INTERNAL_SANITIZERS_H_
