// SPDX-License-Identifier: BSD-3-Clause
// POSIX transports of the conformance harness: pipes and AF_UNIX socket
// pairs (stream, seqpacket, datagram), a loopback TCP listener, and the
// /proc thread-state probe.
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "poll/errors.h"
#include "tests/conformance/harness.h"

namespace gopoll::conformance {

const char* Name(Transport t) {
  switch (t) {
    case Transport::kPipe:
      return "Pipe";
    case Transport::kStream:
      return "UnixStream";
    case Transport::kSeqpacket:
      return "UnixSeqpacket";
    case Transport::kDgram:
      return "UnixDgram";
    case Transport::kTcp:
      return "Tcp";
    case Transport::kNamedPipe:
      return "NamedPipe";
  }
  return "?";
}

bool KeepsMessages(Transport t) {
  return t == Transport::kSeqpacket || t == Transport::kDgram;
}
bool HasEof(Transport t) { return t != Transport::kDgram; }

std::vector<Transport> Transports() {
  return {Transport::kPipe, Transport::kStream, Transport::kSeqpacket,
          Transport::kDgram};
}

absl::StatusOr<RawPair> MakeRawPair(Transport t) {
  int p[2];
  RawPair r;
  int type = 0;
  switch (t) {
    case Transport::kPipe:
      if (pipe2(p, O_CLOEXEC) != 0) return ErrnoError("pipe2", errno);
      r.a = p[0];
      r.b = p[1];
      r.kind = FdKind::kPipe;
      return r;
    case Transport::kStream:
      type = SOCK_STREAM;
      break;
    case Transport::kSeqpacket:
      type = SOCK_SEQPACKET;
      break;
    case Transport::kDgram:
      type = SOCK_DGRAM;
      break;
    default:
      return absl::InvalidArgumentError("not a POSIX transport");
  }
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, p) != 0) {
    return ErrnoError("socketpair", errno);
  }
  r.a = p[0];
  r.b = p[1];
  r.kind = FdKind::kNet;
  return r;
}

absl::StatusOr<Sysfd> MakeListener() {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return ErrnoError("socket", errno);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(s, 8) != 0) {
    int e = errno;
    close(s);
    return ErrnoError("bind/listen", e);
  }
  return s;
}

void CloseRaw(Sysfd s) { close(static_cast<int>(s)); }

bool Conn::HandleOpen() const {
  return fcntl(static_cast<int>(sysfd_), F_GETFD) != -1;
}

int OpenHandles() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n - 3;  // ".", ".." and the DIR's own descriptor
}

int64_t CurrentThread() { return ::syscall(SYS_gettid); }

bool WaitUntilBlocked(int64_t thread) {
  const std::string path =
      "/proc/self/task/" + std::to_string(thread) + "/stat";
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (absl::Now() < give_up) {
    char buf[512];
    int f = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f < 0) return false;
    ssize_t n = ::read(f, buf, sizeof(buf) - 1);
    ::close(f);
    if (n > 0) {
      buf[n] = 0;
      // "tid (comm) S ...": the state follows the last ')'.
      const char* p = strrchr(buf, ')');
      if (p != nullptr && p[1] == ' ' && (p[2] == 'S' || p[2] == 'D')) {
        return true;
      }
    }
    absl::SleepFor(absl::Microseconds(200));
  }
  return false;
}

}  // namespace gopoll::conformance
