// SPDX-License-Identifier: BSD-3-Clause
// poll/testing/fault_injection.h
//
// Test-only fault injection for the POSIX backends, in the manner of Go's
// internal/socktest: every system call the library makes on a descriptor
// (read, write, readv, writev, pread, pwrite, recvmsg, sendmsg, recvfrom,
// send, sendto, accept4, connect, shutdown, close, poll, epoll_wait), and
// every call that makes or enters a loop's poller (epoll_create1, eventfd,
// liburing's io_uring_queue_init and io_uring_submit*), goes
// through this layer in a test binary linked with the linker options of
// fault_injection.bzl (`-Wl,--wrap=read,...`). Rules make the calls of one
// descriptor (or all) fail with an errno (EINTR, EAGAIN, ENOMEM, EMFILE,
// ECONNRESET, EPIPE ...), transfer fewer bytes (short reads and writes), or
// wait a seeded random delay first (schedule perturbation), every time, the
// first N times or at random one time in K.
//
// Zero cost in release builds: nothing in the library refers to this file;
// only the link of a test binary redirects the calls, so the library's
// objects are the same bytes with and without it.
#ifndef POLL_TESTING_FAULT_INJECTION_H_
#define POLL_TESTING_FAULT_INJECTION_H_

#include <stddef.h>
#include <stdint.h>

#include <string>

namespace gopoll::testing {

// The calls the layer sees (a bit mask, so one rule can cover several).
enum Call : uint32_t {
  kRead = 1u << 0,
  kWrite = 1u << 1,
  kReadv = 1u << 2,
  kWritev = 1u << 3,
  kPread = 1u << 4,
  kPwrite = 1u << 5,
  kRecvmsg = 1u << 6,
  kSendmsg = 1u << 7,
  kRecvfrom = 1u << 8,
  kSendto = 1u << 9,
  kAccept4 = 1u << 10,
  kConnect = 1u << 11,
  kShutdown = 1u << 12,
  kClose = 1u << 13,
  kPoll = 1u << 14,       // poll(2): the interruptible strategy's waits
  kEpollWait = 1u << 15,  // epoll_wait(2): poller and loop waits
  kSend = 1u << 16,       // send(2): socket writes (MSG_NOSIGNAL)
  // Creating a loop's pollers (descriptor 0 for the rule's `fd`: these
  // calls have no descriptor argument; rules with fd -1 match them).
  kEpollCreate = 1u << 17,   // epoll_create1(2)
  kEventfd = 1u << 18,       // eventfd(2)
  kIoUringSetup = 1u << 19,  // io_uring_queue_init (io_uring_setup(2))
  // io_uring_submit, io_uring_submit_and_wait, _and_wait_timeout and
  // _and_get_events (io_uring_enter(2)); `fd` is the ring's descriptor.
  kIoUringEnter = 1u << 20,
  kAllReads = kRead | kReadv | kPread | kRecvmsg | kRecvfrom,
  kAllWrites = kWrite | kWritev | kPwrite | kSendmsg | kSendto | kSend,
  kAllIo = kAllReads | kAllWrites,
};

// The syscall name of a single Call bit ("read", "accept4", ...).
const char* CallName(uint32_t call);

struct Rule {
  uint32_t calls = 0;        // Call bits the rule applies to
  int fd = -1;               // descriptor it applies to; -1: every descriptor
  int err = 0;               // fail with this errno without making the call
  size_t max_bytes = 0;      // > 0: a transfer moves at most this many bytes
  int64_t delay_max_us = 0;  // > 0: wait a random 0..max µs before the call
  int times = -1;            // fire this many times, then stay inert; -1: ever
  uint32_t one_in = 1;       // fire on a random one in `one_in` matching calls
};

// Adds a rule; returns its id. Rules are checked in the order added; the
// first that fires decides a failure (delays and caps combine).
int AddRule(const Rule& rule);
void RemoveRule(int id);
void ClearRules();
// How many times rule `id` fired so far.
int64_t Fired(int id);
// Seeds the generator behind `one_in` and the delays (a failing seed
// reproduces the same decisions for the same call sequence per thread).
void SeedFaults(uint64_t seed);

// Removes every rule when it goes out of scope.
class ScopedFaults {
 public:
  ScopedFaults() = default;
  ScopedFaults(const ScopedFaults&) = delete;
  ScopedFaults& operator=(const ScopedFaults&) = delete;
  ~ScopedFaults() { ClearRules(); }
  int Add(const Rule& r) { return AddRule(r); }
};

}  // namespace gopoll::testing

#endif  // POLL_TESTING_FAULT_INJECTION_H_
