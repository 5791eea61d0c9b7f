// SPDX-License-Identifier: BSD-3-Clause
// tests/slow_fuse.h
//
// SlowFuse: a regular file whose reads take as long as the test wants, for
// deadline and Close tests of regular-file I/O (Linux, root: /dev/fuse and
// mount(2)). It mounts a one-file FUSE file system, speaking the kernel's
// FUSE protocol directly (linux/fuse.h; no libfuse), on a temporary
// directory; `path()` is a read-only regular file of kSize bytes whose
// reads bypass the page cache (FOPEN_DIRECT_IO) and are *held* by the
// server: each waits until the test calls Serve() (the read gets its bytes:
// byte i of the file is Byte(i)) or until the kernel interrupts it (a
// signal, or io_uring cancelling the worker that runs it), which the server
// answers with EINTR.
//
// The server is a child process, not a thread: a test that dies with a
// read still held (a timeout's SIGKILL) takes the server with it, which
// aborts the FUSE connection and ends the held read. A server thread would
// die first and leave the dying test blocked in the kernel for good.
#ifndef TESTS_SLOW_FUSE_H_
#define TESTS_SLOW_FUSE_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace gopoll::testing {

class SlowFuse {
 public:
  static constexpr uint64_t kSize = 1 << 20;
  static char Byte(uint64_t i) { return static_cast<char>('a' + i % 26); }

  // Mounts it; an error where FUSE cannot be used here (not root, no
  // /dev/fuse, mount refused).
  static absl::StatusOr<std::unique_ptr<SlowFuse>> Mount();
  ~SlowFuse();  // answers held reads (EIO), stops the server, unmounts

  const std::string& path() const { return file_; }

  // Waits (up to `limit`) until the server has seen `n` reads since the
  // mount; false on timeout.
  bool WaitSeen(int n, absl::Duration limit = absl::Seconds(10)) const;
  // Answers every held read with its bytes (returns once they are sent).
  void Serve();
  // Reads the server has seen, holds now, and answered with EINTR. The
  // counters change before the server replies.
  int reads_seen() const { return shared_->seen.load(); }
  int reads_held() const { return shared_->held.load(); }
  int interrupted() const { return shared_->interrupted.load(); }
  // While set, FUSE_INTERRUPT is counted (ignored_interrupts) and not
  // answered: a held read ends only with Serve() or the unmount, as on a
  // file system that cannot be interrupted (an NFS hard mount).
  void IgnoreInterrupts(bool on) { shared_->ignore_interrupts.store(on); }
  int ignored_interrupts() const { return shared_->ignored.load(); }

  // Shared with the server process.
  struct Shared {
    std::atomic<int> held{0};
    std::atomic<int> seen{0};
    std::atomic<int> interrupted{0};
    std::atomic<bool> ignore_interrupts{false};
    std::atomic<int> ignored{0};
    std::atomic<int> serve_asked{0};  // Serve() calls
    std::atomic<int> serve_done{0};   // ... carried out by the server
  };

 private:
  SlowFuse() = default;
  void Command(uint64_t what);

  std::string dir_, file_;
  Shared* shared_ = nullptr;  // MAP_SHARED
  int cmd_fd_ = -1;           // eventfd: wakes the server for a command
  pid_t server_ = -1;
};

}  // namespace gopoll::testing

#endif  // TESTS_SLOW_FUSE_H_
