// SPDX-License-Identifier: BSD-3-Clause
/* libuv's callback ping-pong over two pipes on one uv_loop: the peer figure
 * for the event-loop ping-pong of bench/loop_bodies.cc. Prints the median
 * ns per round trip of 5 runs of 200,000 round trips.
 *
 *   cc -O2 uv_pingpong.c -luv -o uv_pingpong && ./uv_pingpong
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static uv_loop_t* loop;
static uv_pipe_t a_in, a_out, b_in, b_out;
static long rounds, done;
static char sent, next_byte, b_byte;
static char a_buf[64], b_buf[64];

static void die(const char* what) {
  fprintf(stderr, "%s\n", what);
  exit(1);
}
static void on_write(uv_write_t* req, int status) {
  if (status) die("write");
  free(req);
}
static void send_byte(uv_pipe_t* p, char* byte) {
  uv_write_t* req = malloc(sizeof(*req));
  uv_buf_t buf = uv_buf_init(byte, 1);
  if (uv_write(req, (uv_stream_t*)p, &buf, 1, on_write)) die("uv_write");
}
static void alloc_a(uv_handle_t* h, size_t s, uv_buf_t* b) {
  (void)h, (void)s;
  *b = uv_buf_init(a_buf, sizeof(a_buf));
}
static void alloc_b(uv_handle_t* h, size_t s, uv_buf_t* b) {
  (void)h, (void)s;
  *b = uv_buf_init(b_buf, sizeof(b_buf));
}
static void on_b(uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
  (void)s;
  if (n == 0) return;
  if (n != 1) die("B read");
  b_byte = b->base[0];
  send_byte(&b_out, &b_byte);
}
static void on_a(uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
  (void)s;
  if (n == 0) return;
  if (n != 1 || b->base[0] != sent) die("A read");
  if (++done == rounds) {
    uv_read_stop((uv_stream_t*)&a_in);
    uv_read_stop((uv_stream_t*)&b_in);
    return;
  }
  sent = next_byte++;
  send_byte(&a_out, &sent);
}
static void open_pipe(uv_pipe_t* p, int fd) {
  uv_pipe_init(loop, p, 0);
  if (uv_pipe_open(p, fd)) die("uv_pipe_open");
}
static double run(long n) {
  int p1[2], p2[2];
  if (pipe(p1) || pipe(p2)) die("pipe");
  loop = uv_default_loop();
  open_pipe(&b_in, p1[0]);
  open_pipe(&a_out, p1[1]);
  open_pipe(&a_in, p2[0]);
  open_pipe(&b_out, p2[1]);
  rounds = n;
  done = 0;
  uv_read_start((uv_stream_t*)&b_in, alloc_b, on_b);
  uv_read_start((uv_stream_t*)&a_in, alloc_a, on_a);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  sent = next_byte++;
  send_byte(&a_out, &sent);
  uv_run(loop, UV_RUN_DEFAULT);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  uv_close((uv_handle_t*)&a_in, NULL);
  uv_close((uv_handle_t*)&a_out, NULL);
  uv_close((uv_handle_t*)&b_in, NULL);
  uv_close((uv_handle_t*)&b_out, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n;
}
static int cmp(const void* x, const void* y) {
  double a = *(const double*)x, b = *(const double*)y;
  return a < b ? -1 : a > b;
}
int main(void) {
  double ns[5];
  run(10000);
  for (int i = 0; i < 5; ++i) ns[i] = run(200000);
  qsort(ns, 5, sizeof(double), cmp);
  printf("libuv callbacks: %.0f ns per round trip\n", ns[2]);
  return 0;
}
