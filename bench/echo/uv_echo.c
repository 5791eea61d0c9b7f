// SPDX-License-Identifier: BSD-3-Clause
/* libuv's TCP echo server for the echo-throughput benchmark
 * (bench/echo/run.sh): one uv_loop, each read echoed with uv_write, reads
 * into a 16 KiB buffer per connection, like examples/echo_server.cc.
 * Prints "listening on 127.0.0.1:PORT", runs until killed.
 *
 *   cc -O2 uv_echo.c -luv -o uv_echo && ./uv_echo 0
 */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

typedef struct {
  uv_tcp_t tcp;
  uv_write_t req;
  char buf[16 << 10];
} Conn;

static uv_loop_t* loop;

static void die(const char* what, int err) {
  fprintf(stderr, "%s: %s\n", what, uv_strerror(err));
  exit(1);
}
static void on_close(uv_handle_t* h) { free(h); }
static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* b);
static void alloc_cb(uv_handle_t* h, size_t s, uv_buf_t* b);
static void on_write(uv_write_t* req, int status) {
  Conn* c = req->data;
  if (status) {
    uv_close((uv_handle_t*)&c->tcp, on_close);
    return;
  }
  uv_read_start((uv_stream_t*)&c->tcp, alloc_cb, on_read);
}
static void alloc_cb(uv_handle_t* h, size_t s, uv_buf_t* b) {
  (void)s;
  Conn* c = (Conn*)h;
  *b = uv_buf_init(c->buf, sizeof(c->buf));
}
static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
  Conn* c = (Conn*)s;
  if (n == 0) return;
  if (n < 0) {
    uv_close((uv_handle_t*)s, on_close);
    return;
  }
  /* One write in flight per connection, from the connection's buffer: stop
   * reading until it is done (the same flow as a coroutine that reads, then
   * writes, then reads again). */
  uv_read_stop(s);
  uv_buf_t w = uv_buf_init(b->base, (unsigned)n);
  c->req.data = c;
  int err = uv_write(&c->req, s, &w, 1, on_write);
  if (err) uv_close((uv_handle_t*)s, on_close);
}
static void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  Conn* c = malloc(sizeof(Conn));
  uv_tcp_init(loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t*)&c->tcp) != 0) {
    uv_close((uv_handle_t*)&c->tcp, on_close);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t*)&c->tcp, alloc_cb, on_read);
}

int main(int argc, char** argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  int err = uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0);
  if (err) die("bind", err);
  err = uv_listen((uv_stream_t*)&server, 4096, on_connection);
  if (err) die("listen", err);
  int len = sizeof(addr);
  uv_tcp_getsockname(&server, (struct sockaddr*)&addr, &len);
  printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
