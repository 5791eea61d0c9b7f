// SPDX-License-Identifier: BSD-3-Clause
// poll/version.h
//
// The version of poll: compile-time macros and the version of the library
// actually linked. Semantic versioning; while the major version is 0 a new
// minor version may change the public API (API_STABILITY.md), a new patch
// version does not. CMakeLists.txt reads the three macros below.
#ifndef POLL_VERSION_H_
#define POLL_VERSION_H_

#define GOPOLL_VERSION_MAJOR 0
#define GOPOLL_VERSION_MINOR 1
#define GOPOLL_VERSION_PATCH 0

// One number for comparisons: 10000 * major + 100 * minor + patch.
#define GOPOLL_VERSION                                         \
  (GOPOLL_VERSION_MAJOR * 10000 + GOPOLL_VERSION_MINOR * 100 + \
   GOPOLL_VERSION_PATCH)

namespace gopoll {

struct Version {
  int major;
  int minor;
  int patch;
};

// The version of the library linked into the program (which may differ from
// the headers a file was compiled with when the library is shared).
Version LibraryVersion();
// "MAJOR.MINOR.PATCH" of the linked library.
const char* LibraryVersionString();

}  // namespace gopoll

#endif  // POLL_VERSION_H_
