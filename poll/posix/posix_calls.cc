// SPDX-License-Identifier: BSD-3-Clause
#include "poll/posix/posix_calls.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace gopoll::posix {

namespace {
void OnSigpipe(int) {}
}  // namespace

void KeepSigpipeFromKilling() {
  static const bool done = [] {
    struct sigaction old {};
    if (::sigaction(SIGPIPE, nullptr, &old) == 0 &&
        (old.sa_flags & SA_SIGINFO) == 0 && old.sa_handler == SIG_DFL) {
      struct sigaction sa {};
      sa.sa_handler = &OnSigpipe;
      sa.sa_flags = SA_RESTART;
      sigemptyset(&sa.sa_mask);
      ::sigaction(SIGPIPE, &sa, nullptr);
    }
    return true;
  }();
  (void)done;
}

namespace {
// SO_TYPE of a socket, or -1 with errno set.
int SocketType(Sysfd fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &len) <
      0) {
    return -1;
  }
  return type;
}
}  // namespace

absl::Status InitKind(Sysfd fd, FdKind kind, bool* zero_read_is_eof) {
  int fl = ::fcntl(static_cast<int>(fd), F_GETFL);
  if (fl < 0) return ErrnoError("fcntl", errno);
  *zero_read_is_eof = true;
  if (kind != FdKind::kNet) KeepSigpipeFromKilling();
  if (kind == FdKind::kNet) {
    const int type = SocketType(fd);
    if (type < 0) return ErrnoError("getsockopt", errno);
    *zero_read_is_eof = type != SOCK_DGRAM && type != SOCK_RAW;
  }
  return absl::OkStatus();
}

bool IsMessageSocket(Sysfd fd, FdKind kind) {
  if (kind != FdKind::kNet) return false;
  const int type = SocketType(fd);
  return type >= 0 && type != SOCK_STREAM;
}

absl::Status SetNonblock(Sysfd fd, bool nonblocking) {
  int fl = ::fcntl(static_cast<int>(fd), F_GETFL);
  if (fl < 0) return ErrnoError("fcntl", errno);
  int want = nonblocking ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (want != fl && ::fcntl(static_cast<int>(fd), F_SETFL, want) < 0) {
    return ErrnoError("fcntl", errno);
  }
  return absl::OkStatus();
}

absl::Status Close(Sysfd fd) {
  // Never retry close on EINTR: on Linux the descriptor is gone already.
  if (::close(static_cast<int>(fd)) < 0 && errno != EINTR) {
    return ErrnoError("close", errno);
  }
  return absl::OkStatus();
}

absl::Status Shutdown(Sysfd fd, int how) {
  if (::shutdown(static_cast<int>(fd), how) < 0) {
    return ErrnoError("shutdown", errno);
  }
  return absl::OkStatus();
}

absl::Status Fsync(Sysfd fd) {
  int r;
  do {
    r = ::fsync(static_cast<int>(fd));
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ErrnoError("fsync", errno);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Seek(Sysfd fd, int64_t offset, int whence) {
  off_t r = ::lseek(static_cast<int>(fd), offset, whence);
  if (r < 0) return ErrnoError("lseek", errno);
  return static_cast<int64_t>(r);
}

absl::StatusOr<FileInfo> Fstat(Sysfd fd) {
  struct stat st;
  if (::fstat(static_cast<int>(fd), &st) < 0) return ErrnoError("fstat", errno);
  FileInfo fi;
  fi.size = st.st_size;
  fi.mode = st.st_mode;
  fi.is_regular = S_ISREG(st.st_mode);
  fi.is_dir = S_ISDIR(st.st_mode);
  fi.mtime_unix_ns =
      int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  return fi;
}

absl::StatusOr<Sysfd> Dup(Sysfd fd) {
  int r = ::fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 0);
  if (r < 0) return ErrnoError("fcntl(F_DUPFD_CLOEXEC)", errno);
  return static_cast<Sysfd>(r);
}

}  // namespace gopoll::posix
