// SPDX-License-Identifier: BSD-3-Clause
/* The one load client of the echo-throughput benchmark (bench/echo/run.sh),
 * the same for every server: a single-threaded epoll loop that opens
 * --conns TCP connections to 127.0.0.1:PORT, and on each sends a message of
 * SIZE bytes, reads the SIZE bytes back (checking them), and sends the next
 * one, for WARMUP then SECONDS seconds. It reads the server's CPU time from
 * /proc/PID/stat over the measured window and prints one JSON object:
 *
 *   {"server":NAME,"conns":N,"size":S,"seconds":T,"requests":R,
 *    "rps":R/T,"server_cpu":cpu-seconds/T}
 *
 * usage: echo_load NAME PORT SERVER_PID CONNS SIZE SECONDS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int fd;
  size_t sent, got; /* bytes of the current message */
  unsigned char seq;
} Conn;

static void die(const char* what) {
  perror(what);
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of PID in seconds (fields 14 and 15 of /proc/PID/stat). */
static double cpu_s(long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
  FILE* f = fopen(path, "r");
  if (!f) die("open /proc/PID/stat");
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  char* p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (!p) die("parse stat");
  unsigned long ut = 0, st = 0;
  /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt
   * majflt cmajflt utime stime */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
             &st) != 2)
    die("parse stat");
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static unsigned char* msg;  /* SIZE bytes; message k is msg with byte k */
static unsigned char* rbuf; /* scratch for reads */
static size_t size;

static int send_some(Conn* c) {
  while (c->sent < size) {
    msg[0] = c->seq;
    ssize_t n = send(c->fd, msg + c->sent, size - c->sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) return 0;
      die("send");
    }
    c->sent += (size_t)n;
  }
  return 0;
}

/* Returns 1 when a whole echo has come back. */
static int recv_some(Conn* c) {
  for (;;) {
    ssize_t n = recv(c->fd, rbuf, size - c->got, 0);
    if (n < 0) {
      if (errno == EAGAIN) return 0;
      die("recv");
    }
    if (n == 0) {
      fprintf(stderr, "server closed a connection\n");
      exit(1);
    }
    if (c->got == 0 && rbuf[0] != c->seq) {
      fprintf(stderr, "wrong echo\n");
      exit(1);
    }
    c->got += (size_t)n;
    if (c->got == size) return 1;
  }
}

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s NAME PORT SERVER_PID CONNS SIZE SECONDS\n",
            argv[0]);
    return 2;
  }
  const char* name = argv[1];
  int port = atoi(argv[2]);
  long pid = atol(argv[3]);
  int conns = atoi(argv[4]);
  size = (size_t)atol(argv[5]);
  double seconds = atof(argv[6]), warmup = 0.5;
  if (port <= 0 || conns <= 0 || size == 0 || seconds <= 0) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  msg = malloc(size);
  rbuf = malloc(size);
  for (size_t i = 0; i < size; i++) msg[i] = (unsigned char)(i * 7 + 1);
  Conn* cs = calloc((size_t)conns, sizeof(Conn));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  for (int i = 0; i < conns; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr*)&a, sizeof(a)) != 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl");
    cs[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                             .data.ptr = &cs[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  }
  for (int i = 0; i < conns; i++) send_some(&cs[i]);
  struct epoll_event evs[256];
  long requests = 0;
  double start = now_s(), t0 = 0, c0 = 0, end = start + warmup + seconds;
  int measuring = 0;
  for (;;) {
    double t = now_s();
    if (!measuring && t >= start + warmup) {
      measuring = 1;
      requests = 0;
      t0 = t;
      c0 = cpu_s(pid);
    }
    if (t >= end) break;
    int n = epoll_wait(ep, evs, 256, 100);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      Conn* c = evs[i].data.ptr;
      if (c->sent < size) send_some(c);
      while (c->sent == size && recv_some(c)) {
        requests++;
        c->seq++;
        c->sent = c->got = 0;
        send_some(c);
      }
    }
  }
  double t1 = now_s(), c1 = cpu_s(pid), dt = t1 - t0;
  printf(
      "{\"server\":\"%s\",\"conns\":%d,\"size\":%zu,\"seconds\":%.3f,"
      "\"requests\":%ld,\"rps\":%.0f,\"server_cpu\":%.3f}\n",
      name, conns, size, dt, requests, (double)requests / dt, (c1 - c0) / dt);
  for (int i = 0; i < conns; i++) close(cs[i].fd);
  return 0;
}
