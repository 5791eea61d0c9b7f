// SPDX-License-Identifier: BSD-3-Clause
// A TLS echo server on one gopoll::Loop, with OpenSSL doing its own
// non-blocking reads and writes on the connection's descriptor: the loop
// only waits for the readiness TLS asks for (AsyncFd::WaitReadable and
// WaitWritable). The same pattern serves any library that makes its own
// system calls (TLS, HTTP/2, database drivers).
//
//   ./bazelw run //examples:tls_echo_server -- --port=7443
//   openssl s_client -connect 127.0.0.1:7443 -quiet
//
// Without --cert/--key (PEM files) it makes a self-signed certificate for
// "localhost" at start. --port=0 picks a free port. The server prints
// "listening on HOST:PORT" and runs until SIGINT or SIGTERM; a connection
// idle for --idle_timeout is closed (the FD's deadlines also end the waits
// for readiness).
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "poll/loop/loop.h"
#include "poll/net.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 7443, "TCP port (0: any free port)");
ABSL_FLAG(std::string, cert, "", "certificate chain (PEM); empty: self-signed");
ABSL_FLAG(std::string, key, "", "private key (PEM) of --cert");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(30),
          "close a connection idle for this long (inf: never)");

namespace {

using gopoll::AsyncFd;
using gopoll::Task;

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  void operator()(X509* x) const { X509_free(x); }
};
template <typename T>
using SslPtr = std::unique_ptr<T, SslFree>;

std::string SslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out.empty() ? "unknown TLS error" : out;
}

// A server context with the given certificate, or a fresh self-signed one
// (P-256 key, CN=localhost, valid for a year).
SslPtr<SSL_CTX> MakeContext(const std::string& cert, const std::string& key) {
  SslPtr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()));
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (!cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) !=
            1) {
      return nullptr;
    }
    return ctx;
  }
  SslPtr<EVP_PKEY> pkey(EVP_EC_gen("P-256"));
  SslPtr<X509> x(X509_new());
  if (pkey == nullptr || x == nullptr) return nullptr;
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 365L * 24 * 3600);
  X509_set_pubkey(x.get(), pkey.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x.get(), name);
  if (X509_sign(x.get(), pkey.get(), EVP_sha256()) == 0 ||
      SSL_CTX_use_certificate(ctx.get(), x.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), pkey.get()) != 1) {
    return nullptr;
  }
  return ctx;
}

// Runs one OpenSSL call (`op` returns its result) until it succeeds, waiting
// for the readiness it asks for in between. Returns its positive result, 0
// when the peer closed the TLS session, -1 on an error, an expired read
// deadline or Close.
template <typename Op>
Task<int> Tls(AsyncFd conn, SSL* ssl, Op op) {
  for (;;) {
    ERR_clear_error();
    const int r = op();
    if (r > 0) co_return r;
    absl::Status waited;
    switch (SSL_get_error(ssl, r)) {
      case SSL_ERROR_WANT_READ:
        waited = co_await conn.WaitReadable();
        break;
      case SSL_ERROR_WANT_WRITE:
        waited = co_await conn.WaitWritable();
        break;
      case SSL_ERROR_ZERO_RETURN:
        co_return 0;
      default:
        co_return -1;
    }
    if (!waited.ok()) co_return -1;
  }
}

Task<void> Serve(AsyncFd conn, SSL_CTX* ctx, absl::Duration idle) {
  SslPtr<SSL> ssl(SSL_new(ctx));
  const int fd = static_cast<int>(conn.fd().sysfd());
  // OpenSSL's own calls must not block the loop's thread. A loop's
  // descriptors are non-blocking on epoll and io_uring, not on plan9_stub
  // (its loop runs the library's calls on helper threads), so make sure.
  const int fl = ::fcntl(fd, F_GETFL);
  if (ssl != nullptr && fl >= 0 &&
      (fl & O_NONBLOCK || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0) &&
      SSL_set_fd(ssl.get(), fd) == 1) {
    // Both directions: a peer that stops reading leaves a write waiting.
    auto deadline = [&] {
      return idle == absl::InfiniteDuration() ||
             conn.SetDeadline(absl::Now() + idle).ok();
    };
    SSL* s = ssl.get();
    if (deadline() &&
        co_await Tls(conn, s, [s] { return SSL_accept(s); }) > 0) {
      char buf[16 << 10];
      while (deadline()) {
        const int n = co_await Tls(
            conn, s, [s, &buf] { return SSL_read(s, buf, sizeof(buf)); });
        if (n <= 0) break;  // closed, idle, reset, ...
        if (co_await Tls(conn, s,
                         [s, &buf, n] { return SSL_write(s, buf, n); }) <= 0) {
          break;
        }
      }
      SSL_shutdown(s);  // best effort: the close notify, if it fits
    }
  }
  (void)conn.Close();
}

Task<void> AcceptLoop(gopoll::Loop* loop, AsyncFd listener, SSL_CTX* ctx,
                      absl::Duration idle) {
  absl::Duration backoff;
  for (;;) {
    absl::StatusOr<AsyncFd> conn = co_await listener.Accept();
    if (!conn.ok()) {
      if (gopoll::IsClosing(conn.status())) co_return;
      // E.g. EMFILE: wait before the next accept instead of spinning.
      backoff = backoff == absl::ZeroDuration()
                    ? absl::Milliseconds(5)
                    : std::min(2 * backoff, absl::Seconds(1));
      co_await loop->Sleep(backoff);
      continue;
    }
    backoff = absl::ZeroDuration();
    loop->Spawn(Serve(*conn, ctx, idle));
  }
}

Task<void> StopOnSignal(gopoll::Loop* loop) {
  (void)co_await gopoll::ShutdownSignal(*loop);
  loop->Stop();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // OpenSSL writes to the socket with write(2), which raises SIGPIPE when
  // the peer is gone (the library's own socket writes never do): ignore it.
  std::signal(SIGPIPE, SIG_IGN);
  SslPtr<SSL_CTX> ctx =
      MakeContext(absl::GetFlag(FLAGS_cert), absl::GetFlag(FLAGS_key));
  if (ctx == nullptr) {
    std::fprintf(stderr, "TLS setup: %s\n", SslErrors().c_str());
    return 1;
  }
  gopoll::Loop loop;
  absl::StatusOr<AsyncFd> listener = gopoll::Listen(
      loop,
      absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port)));
  if (!listener.ok()) {
    std::fprintf(stderr, "%s\n", listener.status().ToString().c_str());
    return 1;
  }
  loop.Spawn(StopOnSignal(&loop));
  loop.Spawn(AcceptLoop(&loop, *listener, ctx.get(),
                        absl::GetFlag(FLAGS_idle_timeout)));
  loop.Post([&] {
    std::printf("listening on %s\n", listener->LocalAddr()->ToString().c_str());
    std::fflush(stdout);
  });
  loop.Run();
  std::printf("stopped\n");
  return 0;
}
