// SPDX-License-Identifier: BSD-3-Clause
#include "poll/unix/ring_poller.h"

namespace gopoll {

const char kIoUringBackendName[] = "io_uring";

}  // namespace gopoll
