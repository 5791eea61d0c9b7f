// SPDX-License-Identifier: BSD-3-Clause
// The TLS echo example's test client, written with OpenSSL on plain
// blocking sockets (not this library): opens CONNS TLS connections to
// 127.0.0.1:PORT at once, then on each sends messages of 1 B to 40 KB and
// checks that every byte comes back unchanged. The server's certificate is
// not verified (the example's is self-signed).
//
//   tls_echo_check PORT [CONNS]
//
// Exit status 0: every echo arrived intact.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

int Fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  ERR_print_errors_fp(stderr);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PORT [CONNS]\n", argv[0]);
    return 2;
  }
  const int conns = argc > 2 ? std::atoi(argv[2]) : 20;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return Fail("SSL_CTX_new");
  std::vector<SSL*> ssls;
  for (int i = 0; i < conns; ++i) {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return Fail("socket");
    timeval wait{20, 0};  // a hang fails the test instead of stalling it
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait));
    if (::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
      return Fail("connect");
    }
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, s);
    if (SSL_connect(ssl) != 1) return Fail("handshake");
    ssls.push_back(ssl);
  }
  for (size_t size : {1, 100, 5000, 16384, 40000}) {
    for (size_t c = 0; c < ssls.size(); ++c) {
      std::string msg(size, '\0');
      for (size_t i = 0; i < size; ++i) {
        msg[i] = static_cast<char>('a' + (i * 7 + c + size) % 26);
      }
      if (SSL_write(ssls[c], msg.data(), static_cast<int>(size)) !=
          static_cast<int>(size)) {
        return Fail("write");
      }
      std::string got;
      char buf[16384];
      while (got.size() < size) {
        const int n = SSL_read(ssls[c], buf, sizeof(buf));
        if (n <= 0) return Fail("read: the echo ended early");
        got.append(buf, static_cast<size_t>(n));
      }
      if (got != msg) return Fail("the echo differs from what was sent");
    }
  }
  for (SSL* ssl : ssls) {
    SSL_shutdown(ssl);
    ::close(SSL_get_fd(ssl));
    SSL_free(ssl);
  }
  SSL_CTX_free(ctx);
  std::printf("%d TLS connections echoed intact\n", conns);
  return 0;
}
