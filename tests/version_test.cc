// SPDX-License-Identifier: BSD-3-Clause
// The version macros, LibraryVersion() and LibraryVersionString() agree.
#include "poll/version.h"

#include <string>

#include "gtest/gtest.h"

namespace gopoll {
namespace {

TEST(VersionTest, LibraryMatchesHeader) {
  Version v = LibraryVersion();
  EXPECT_EQ(v.major, GOPOLL_VERSION_MAJOR);
  EXPECT_EQ(v.minor, GOPOLL_VERSION_MINOR);
  EXPECT_EQ(v.patch, GOPOLL_VERSION_PATCH);
  EXPECT_EQ(std::string(LibraryVersionString()),
            std::to_string(v.major) + "." + std::to_string(v.minor) + "." +
                std::to_string(v.patch));
  EXPECT_EQ(GOPOLL_VERSION, v.major * 10000 + v.minor * 100 + v.patch);
}

}  // namespace
}  // namespace gopoll
