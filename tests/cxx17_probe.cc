// SPDX-License-Identifier: BSD-3-Clause
// Compiled with -std=c++17 by ctest's require_cxx20 test: must stop at
// poll/require_cxx20.h's #error, before any other error.
// The coroutine header first (its C++17 error would come
// first without the guard).
// clang-format off
#include "poll/loop/task.h"
#include "poll/fd.h"
// clang-format on
