// SPDX-License-Identifier: BSD-3-Clause
// bench/windows_bodies.h
//
// The work of each Windows benchmark, shared by the benchmark binary
// (bench/fd_vs_raw_windows.cc) and by the bench_windows_smoke test, which
// runs each body for a few rounds and checks the bytes. Every FD path has a
// raw twin doing the same work with ReadFile on an equivalent handle (the
// same file opened again with the same flags).
#ifndef BENCH_WINDOWS_BODIES_H_
#define BENCH_WINDOWS_BODIES_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "poll/backend_state.h"

namespace gopoll::bench {

// A cached regular file of `size` bytes (a multiple of 4 KiB) with a known
// pattern, read sequentially in 4 KiB blocks (rewinding at end of file)
// through handles opened
//   - without FILE_FLAG_OVERLAPPED (kSync, Go's BenchmarkReadSync): the FD
//     does plain blocking ReadFile calls; or
//   - with FILE_FLAG_OVERLAPPED (kOverlapped, Go's BenchmarkReadOverlapped):
//     the FD, Init'ed pollable, binds its handle to the IOCP on the first
//     read (lazy binding) with skip-on-success and keeps its own offset.
// The file is deleted when the reader is destroyed; every handle is closed.
class WinFileReader {
 public:
  enum class Mode { kSync, kOverlapped };
  static constexpr size_t kBlock = 4096;
  WinFileReader(size_t size, Mode mode);
  ~WinFileReader();
  WinFileReader(const WinFileReader&) = delete;
  WinFileReader& operator=(const WinFileReader&) = delete;

  // Each reads `blocks` blocks of 4 KiB and returns the bytes read.
  // ReadFd: FD::Read, FD::Seek(0, 0) at end of file.
  int64_t ReadFd(int blocks);
  // ReadRaw: kSync: ReadFile without an OVERLAPPED, SetFilePointerEx at end
  // of file. kOverlapped: ReadFile with an OVERLAPPED carrying the offset and
  // an event (reused), GetOverlappedResult(wait) if it is pending: the plain
  // way to read an overlapped handle without a completion port.
  int64_t ReadRaw(int blocks);
  // ReadRawIocp (kOverlapped only): the raw handle bound to a private
  // completion port with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, as the FD
  // does; GetQueuedCompletionStatus if the read is pending.
  int64_t ReadRawIocp(int blocks);

  // The FD's IoMode after its first read (kUndecided before).
  IoMode fd_mode() const;
  // Blocks read so far whose first or last byte was not the pattern's.
  int64_t mismatches() const { return mismatches_; }
  // Raw overlapped reads so far that returned ERROR_IO_PENDING (the rest
  // completed at once): tells whether the system serves cached reads of an
  // overlapped handle synchronously.
  int64_t raw_pending() const { return raw_pending_; }

 private:
  void Check(const char* buf, size_t n, int64_t off);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  Mode mode_;
  size_t size_ = 0;
  int64_t fd_off_ = 0;
  int64_t raw_off_ = 0;
  int64_t iocp_off_ = 0;
  int64_t mismatches_ = 0;
  int64_t raw_pending_ = 0;
};

}  // namespace gopoll::bench

#endif  // BENCH_WINDOWS_BODIES_H_
