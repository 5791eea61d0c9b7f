// SPDX-License-Identifier: BSD-3-Clause
// The UDP echo example's test client, written with plain POSIX sockets
// (not this library): sends datagrams of 0 B to 65,507 B (IPv4 UDP's
// largest) to 127.0.0.1:PORT, one at a time, and checks that each comes
// back whole and unchanged. A datagram lost on the way (UDP may drop one
// on a loaded machine) is sent again, a few times at most.
//
//   udp_echo_check PORT
//
// Exit status 0: every echo arrived intact.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return 3;
  // Room for the largest datagram both ways; a bounded wait per echo.
  const int buf_size = 1 << 20;
  ::setsockopt(s, SOL_SOCKET, SO_SNDBUF, &buf_size, sizeof(buf_size));
  ::setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf_size, sizeof(buf_size));
  timeval wait{2, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  if (::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    std::perror("connect");
    return 3;
  }
  std::vector<char> got(70000);
  int sent = 0;
  for (size_t size : {0, 1, 7, 1000, 1472, 9000, 65507}) {
    std::string msg(size, '\0');
    for (size_t i = 0; i < size; ++i)
      msg[i] = static_cast<char>('a' + (i + size) % 26);
    bool ok = false;
    for (int attempt = 0; attempt < 5 && !ok; ++attempt) {
      if (::send(s, msg.data(), msg.size(), 0) !=
          static_cast<ssize_t>(msg.size())) {
        std::perror("send");
        return 4;
      }
      // A late echo of an earlier datagram (one sent again) may come
      // first: skip it; each size is used once, so it is told apart.
      for (;;) {
        const ssize_t n = ::recv(s, got.data(), got.size(), 0);
        if (n < 0) break;  // lost (or not answered yet): send again
        if (static_cast<size_t>(n) != size) continue;
        if (std::string(got.data(), static_cast<size_t>(n)) != msg) {
          std::fprintf(stderr, "echo of %zu bytes came back changed\n", size);
          return 5;
        }
        ok = true;
        break;
      }
    }
    if (!ok) {
      std::fprintf(stderr, "no echo of a %zu-byte datagram\n", size);
      return 6;
    }
    ++sent;
  }
  std::printf("%d datagrams echoed intact\n", sent);
  ::close(s);
  return 0;
}
