// SPDX-License-Identifier: BSD-3-Clause
// poll/require_cxx20.h
//
// Included first by every public header: poll needs C++20 (coroutines,
// designated initializers, digit separators), and says so plainly instead
// of failing later with an unrelated syntax error.
#ifndef POLL_REQUIRE_CXX20_H_
#define POLL_REQUIRE_CXX20_H_

#if defined(_MSVC_LANG)
#define GOPOLL_CPLUSPLUS _MSVC_LANG
#else
#define GOPOLL_CPLUSPLUS __cplusplus
#endif
#if GOPOLL_CPLUSPLUS < 202002L
// One line, as the compiler prints it.
// clang-format off
#error "poll needs C++20: compile with -std=c++20 (Bazel: --cxxopt=-std=c++20 --host_cxxopt=-std=c++20; CMake: gopoll::poll sets cxx_std_20)"
// clang-format on
#endif
#undef GOPOLL_CPLUSPLUS

#endif  // POLL_REQUIRE_CXX20_H_
