// SPDX-License-Identifier: BSD-3-Clause
#include "bench/windows_bodies.h"

// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/file_pattern.h"
#include "poll/fd.h"
#include "poll/internal/fd_access.h"

namespace gopoll::bench {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "bench: %s failed: error %lu\n", what, GetLastError());
  std::abort();
}

HANDLE Open(const std::string& path, bool overlapped) {
  HANDLE h = CreateFileA(
      path.c_str(), GENERIC_READ,
      FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
      OPEN_EXISTING,
      FILE_ATTRIBUTE_NORMAL | (overlapped ? FILE_FLAG_OVERLAPPED : 0), nullptr);
  if (h == INVALID_HANDLE_VALUE) Die("CreateFile");
  return h;
}

void SetOffset(OVERLAPPED* ov, int64_t off) {
  ov->Offset = static_cast<DWORD>(off);
  ov->OffsetHigh = static_cast<DWORD>(static_cast<uint64_t>(off) >> 32);
}

}  // namespace

struct WinFileReader::Impl {
  std::string path;
  std::unique_ptr<FD> fd;
  HANDLE raw = INVALID_HANDLE_VALUE;
  HANDLE event = nullptr;                   // kOverlapped: ReadRaw's event
  HANDLE iocp_file = INVALID_HANDLE_VALUE;  // kOverlapped: ReadRawIocp's
  HANDLE port = nullptr;
  std::vector<char> buf = std::vector<char>(kBlock);
};

WinFileReader::WinFileReader(size_t size, Mode mode)
    : impl_(new Impl), mode_(mode), size_(size) {
  if (size == 0 || size % kBlock != 0) Die("WinFileReader size");
  char dir[MAX_PATH], path[MAX_PATH];
  if (GetTempPathA(MAX_PATH, dir) == 0) Die("GetTempPath");
  if (GetTempFileNameA(dir, "gpb", 0, path) == 0) Die("GetTempFileName");
  impl_->path = path;
  std::vector<char> data(size);
  for (size_t i = 0; i < size; ++i) {
    data[i] = PatternByte(static_cast<int64_t>(i));
  }
  HANDLE w = CreateFileA(path, GENERIC_WRITE, 0, nullptr, CREATE_ALWAYS,
                         FILE_ATTRIBUTE_NORMAL, nullptr);
  if (w == INVALID_HANDLE_VALUE) Die("CreateFile(write)");
  DWORD put = 0;
  if (!WriteFile(w, data.data(), static_cast<DWORD>(size), &put, nullptr) ||
      put != size) {
    Die("WriteFile");
  }
  CloseHandle(w);

  const bool overlapped = mode == Mode::kOverlapped;
  impl_->raw = Open(path, overlapped);
  impl_->fd =
      std::make_unique<FD>(reinterpret_cast<Sysfd>(Open(path, overlapped)));
  if (!impl_->fd->Init(FdKind::kFile, /*pollable=*/true).ok()) Die("FD::Init");
  if (overlapped) {
    impl_->event = CreateEventA(nullptr, TRUE, FALSE, nullptr);
    if (impl_->event == nullptr) Die("CreateEvent");
    impl_->iocp_file = Open(path, true);
    impl_->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    if (impl_->port == nullptr ||
        CreateIoCompletionPort(impl_->iocp_file, impl_->port, 0, 0) !=
            impl_->port) {
      Die("CreateIoCompletionPort");
    }
    if (!SetFileCompletionNotificationModes(
            impl_->iocp_file, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                                  FILE_SKIP_SET_EVENT_ON_HANDLE)) {
      Die("SetFileCompletionNotificationModes");
    }
  }
  // Read the whole file once through each path before anything is timed:
  // the file is cached, the FD has decided its mode (a sync handle's mode
  // query runs a helper thread once) and every offset is back at 0.
  const int blocks = static_cast<int>(size / kBlock);
  ReadFd(blocks);
  ReadRaw(blocks);
  if (overlapped) ReadRawIocp(blocks);
}

WinFileReader::~WinFileReader() {
  impl_->fd.reset();
  CloseHandle(impl_->raw);
  if (impl_->event != nullptr) CloseHandle(impl_->event);
  if (impl_->iocp_file != INVALID_HANDLE_VALUE) CloseHandle(impl_->iocp_file);
  if (impl_->port != nullptr) CloseHandle(impl_->port);
  DeleteFileA(impl_->path.c_str());
}

IoMode WinFileReader::fd_mode() const {
  return gopoll::internal::FdAccess::backend(*impl_->fd).mode.load();
}

void WinFileReader::Check(const char* buf, size_t n, int64_t off) {
  if (!MatchesPattern(buf, n, off)) ++mismatches_;
}

int64_t WinFileReader::ReadFd(int blocks) {
  int64_t total = 0;
  FD& fd = *impl_->fd;
  absl::Span<char> buf = absl::MakeSpan(impl_->buf);
  for (int i = 0; i < blocks; ++i) {
    if (fd_off_ == static_cast<int64_t>(size_)) {
      if (!fd.Seek(0, 0).ok()) Die("FD::Seek");
      fd_off_ = 0;
    }
    absl::StatusOr<size_t> n = fd.Read(buf);
    if (!n.ok() || *n == 0) Die("FD::Read");
    Check(buf.data(), *n, fd_off_);
    fd_off_ += static_cast<int64_t>(*n);
    total += static_cast<int64_t>(*n);
  }
  return total;
}

int64_t WinFileReader::ReadRaw(int blocks) {
  int64_t total = 0;
  char* buf = impl_->buf.data();
  HANDLE h = impl_->raw;
  for (int i = 0; i < blocks; ++i) {
    if (raw_off_ == static_cast<int64_t>(size_)) {
      if (mode_ == Mode::kSync) {
        LARGE_INTEGER zero{};
        if (!SetFilePointerEx(h, zero, nullptr, FILE_BEGIN)) {
          Die("SetFilePointerEx");
        }
      }
      raw_off_ = 0;
    }
    DWORD n = 0;
    if (mode_ == Mode::kSync) {
      if (!ReadFile(h, buf, kBlock, &n, nullptr)) Die("ReadFile");
    } else {
      OVERLAPPED ov{};
      SetOffset(&ov, raw_off_);
      ov.hEvent = impl_->event;
      if (!ReadFile(h, buf, kBlock, &n, &ov)) {
        if (GetLastError() != ERROR_IO_PENDING ||
            !GetOverlappedResult(h, &ov, &n, TRUE)) {
          Die("ReadFile(overlapped)");
        }
        ++raw_pending_;
      } else {
        // The count argument is unreliable with an OVERLAPPED.
        n = static_cast<DWORD>(ov.InternalHigh);
      }
    }
    if (n == 0) Die("ReadFile: 0 bytes");
    Check(buf, n, raw_off_);
    raw_off_ += n;
    total += n;
  }
  return total;
}

int64_t WinFileReader::ReadRawIocp(int blocks) {
  if (mode_ != Mode::kOverlapped) Die("ReadRawIocp on a sync handle");
  int64_t total = 0;
  char* buf = impl_->buf.data();
  HANDLE h = impl_->iocp_file;
  for (int i = 0; i < blocks; ++i) {
    if (iocp_off_ == static_cast<int64_t>(size_)) iocp_off_ = 0;
    OVERLAPPED ov{};
    SetOffset(&ov, iocp_off_);
    DWORD n = 0;
    if (ReadFile(h, buf, kBlock, &n, &ov)) {
      n = static_cast<DWORD>(ov.InternalHigh);
    } else {
      if (GetLastError() != ERROR_IO_PENDING) Die("ReadFile(iocp)");
      ++raw_pending_;
      ULONG_PTR key = 0;
      OVERLAPPED* done = nullptr;
      if (!GetQueuedCompletionStatus(impl_->port, &n, &key, &done, INFINITE) ||
          done != &ov) {
        Die("GetQueuedCompletionStatus");
      }
    }
    if (n == 0) Die("ReadFile(iocp): 0 bytes");
    Check(buf, n, iocp_off_);
    iocp_off_ += n;
    total += n;
  }
  return total;
}

}  // namespace gopoll::bench
