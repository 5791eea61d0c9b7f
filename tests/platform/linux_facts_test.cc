// SPDX-License-Identifier: BSD-3-Clause
// Facts about Linux that the epoll backend relies on. They document the OS,
// not our code, and stay as a guard against surprises on new kernels.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdlib>

#include "gtest/gtest.h"

namespace {

int CountFds() {
  DIR* d = opendir("/proc/self/fd");
  int n = 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

class LinuxFacts : public ::testing::Test {
 protected:
  void SetUp() override { fds_ = CountFds(); }
  void TearDown() override { EXPECT_EQ(CountFds(), fds_) << "fd leak"; }
  int fds_ = 0;
};

// Regular files cannot be registered: the backend treats them as
// non-pollable blocking FDs.
TEST_F(LinuxFacts, EpollRefusesRegularFileWithEperm) {
  char path[] = "/tmp/poll_facts_XXXXXX";
  int f = mkstemp(path);
  ASSERT_GE(f, 0);
  unlink(path);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event e{};
  e.events = EPOLLIN | EPOLLOUT | EPOLLET;
  int rc = epoll_ctl(ep, EPOLL_CTL_ADD, f, &e);
  int err = errno;
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(err, EPERM);
  close(f);
  close(ep);
}

// Edge-triggered: a write makes the read end ready once; without new data
// no further event is reported, a new write reports a new edge.
TEST_F(LinuxFacts, PipeIsEdgeTriggeredReadableAfterWrite) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event e{};
  e.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  e.data.u64 = 42;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e), 0);
  epoll_event out[4];
  EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);  // nothing yet
  ASSERT_EQ(write(p[1], "x", 1), 1);
  ASSERT_EQ(epoll_wait(ep, out, 4, 1000), 1);
  EXPECT_EQ(out[0].data.u64, 42u);
  EXPECT_TRUE(out[0].events & EPOLLIN);
  EXPECT_EQ(epoll_wait(ep, out, 4, 0), 0);  // no new edge, data still there
  ASSERT_EQ(write(p[1], "y", 1), 1);
  EXPECT_EQ(epoll_wait(ep, out, 4, 1000), 1);  // a new write is a new edge
  char buf[4];
  EXPECT_EQ(read(p[0], buf, sizeof(buf)), 2);
  ssize_t n = read(p[0], buf, sizeof(buf));
  int err = errno;
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, EAGAIN);
  close(p[0]);
  close(p[1]);
  close(ep);
}

}  // namespace
