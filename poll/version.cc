// SPDX-License-Identifier: BSD-3-Clause
#include "poll/version.h"

#define GOPOLL_STR2(x) #x
#define GOPOLL_STR(x) GOPOLL_STR2(x)

namespace gopoll {

Version LibraryVersion() {
  return {GOPOLL_VERSION_MAJOR, GOPOLL_VERSION_MINOR, GOPOLL_VERSION_PATCH};
}

const char* LibraryVersionString() {
  return GOPOLL_STR(GOPOLL_VERSION_MAJOR) "." GOPOLL_STR(
      GOPOLL_VERSION_MINOR) "." GOPOLL_STR(GOPOLL_VERSION_PATCH);
}

}  // namespace gopoll
