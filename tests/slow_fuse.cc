// SPDX-License-Identifier: BSD-3-Clause
#include "tests/slow_fuse.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace gopoll::testing {
namespace {

constexpr uint64_t kFileNode = 2;
constexpr char kName[] = "slow";
constexpr uint64_t kCmdServe = 1;
constexpr uint64_t kCmdStop = 1 << 20;  // eventfd counts add up: a big mark

void FillAttr(uint64_t node, fuse_attr* a) {
  std::memset(a, 0, sizeof(*a));
  a->ino = node;
  a->nlink = 1;
  a->blksize = 4096;
  if (node == FUSE_ROOT_ID) {
    a->mode = S_IFDIR | 0755;
    a->nlink = 2;
  } else {
    a->mode = S_IFREG | 0444;
    a->size = SlowFuse::kSize;
    a->blocks = SlowFuse::kSize / 512;
  }
}

// The server process: answers the kernel's FUSE requests on `fd`, holds
// reads until a command (on `cmd`) says to serve them.
class Server {
 public:
  Server(int fd, int cmd, SlowFuse::Shared* shared)
      : fd_(fd), cmd_(cmd), shared_(shared) {}

  [[noreturn]] void Run() {
    std::vector<char> buf(FUSE_MIN_READ_BUFFER + 1024 * 1024);
    for (;;) {
      pollfd p[2] = {{fd_, POLLIN, 0}, {cmd_, POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        _exit(1);
      }
      if (p[1].revents != 0) {
        uint64_t v = 0;
        if (::read(cmd_, &v, sizeof(v)) == sizeof(v)) {
          if (v >= kCmdStop) {
            AnswerHeld(-EIO);
            _exit(0);
          }
          AnswerHeld(0);
          shared_->serve_done.store(shared_->serve_asked.load());
        }
      }
      if ((p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) _exit(0);
      if ((p[0].revents & POLLIN) == 0) continue;
      ssize_t n = ::read(fd_, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR || errno == ENOENT || errno == EAGAIN) continue;
        _exit(0);  // ENODEV: unmounted
      }
      if (static_cast<size_t>(n) >= sizeof(fuse_in_header)) {
        Handle(buf.data(), static_cast<size_t>(n));
      }
    }
  }

 private:
  struct Held {
    uint64_t unique;
    uint64_t offset;
    uint32_t size;
  };

  void Reply(uint64_t unique, int error, const void* body, size_t len) {
    std::string out(sizeof(fuse_out_header) + len, '\0');
    fuse_out_header h{};
    h.len = static_cast<uint32_t>(out.size());
    h.error = error;
    h.unique = unique;
    std::memcpy(out.data(), &h, sizeof(h));
    if (len > 0) std::memcpy(out.data() + sizeof(h), body, len);
    // ENOENT: the request was interrupted and answered meanwhile.
    (void)!::write(fd_, out.data(), out.size());
  }

  // error 0: the bytes asked for; else that error. The shared counters
  // change before the replies: a test that sees a read end must also see
  // the server's state that ended it.
  void AnswerHeld(int error) {
    std::vector<Held> held = std::move(held_);
    held_.clear();
    shared_->held.store(0);
    for (const Held& h : held) {
      if (error != 0) {
        Reply(h.unique, error, nullptr, 0);
        continue;
      }
      const uint64_t end =
          std::min<uint64_t>(SlowFuse::kSize, h.offset + h.size);
      std::string data;
      for (uint64_t i = h.offset; i < end; ++i) {
        data.push_back(SlowFuse::Byte(i));
      }
      Reply(h.unique, 0, data.data(), data.size());
    }
  }

  void Handle(const char* req, size_t len) {
    fuse_in_header in;
    std::memcpy(&in, req, sizeof(in));
    const char* arg = req + sizeof(in);
    switch (in.opcode) {
      case FUSE_INIT: {
        fuse_init_in init{};
        std::memcpy(&init, arg,
                    std::min(sizeof(init), len - sizeof(fuse_in_header)));
        fuse_init_out o{};
        o.major = FUSE_KERNEL_VERSION;
        o.minor = FUSE_KERNEL_MINOR_VERSION;
        o.max_readahead = init.max_readahead;
        o.max_background = 16;
        o.congestion_threshold = 12;
        o.max_write = 64 * 1024;
        o.time_gran = 1;
        Reply(in.unique, 0, &o, sizeof(o));
        return;
      }
      case FUSE_LOOKUP: {
        if (in.nodeid != FUSE_ROOT_ID || std::strcmp(arg, kName) != 0) {
          Reply(in.unique, -ENOENT, nullptr, 0);
          return;
        }
        fuse_entry_out o{};
        o.nodeid = kFileNode;
        FillAttr(kFileNode, &o.attr);
        Reply(in.unique, 0, &o, sizeof(o));
        return;
      }
      case FUSE_GETATTR: {
        fuse_attr_out o{};
        FillAttr(in.nodeid, &o.attr);
        Reply(in.unique, 0, &o, sizeof(o));
        return;
      }
      case FUSE_OPEN: {
        fuse_open_out o{};
        o.fh = 1;
        o.open_flags = FOPEN_DIRECT_IO;  // every read reaches the server
        Reply(in.unique, 0, &o, sizeof(o));
        return;
      }
      case FUSE_READ: {
        fuse_read_in r{};
        std::memcpy(&r, arg, sizeof(r));
        held_.push_back({in.unique, r.offset, r.size});
        shared_->held.store(static_cast<int>(held_.size()));
        shared_->seen.fetch_add(1);
        return;  // answered by a command or an interrupt
      }
      case FUSE_INTERRUPT: {
        fuse_interrupt_in i{};
        std::memcpy(&i, arg, sizeof(i));
        auto it = std::find_if(held_.begin(), held_.end(), [&](const Held& h) {
          return h.unique == i.unique;
        });
        if (it != held_.end() && shared_->ignore_interrupts.load()) {
          shared_->ignored.fetch_add(1);
        } else if (it != held_.end()) {
          const uint64_t unique = it->unique;
          held_.erase(it);
          shared_->held.store(static_cast<int>(held_.size()));
          shared_->interrupted.fetch_add(1);
          Reply(unique, -EINTR, nullptr, 0);
        }
        return;  // an interrupt itself gets no reply
      }
      case FUSE_FORGET:
      case FUSE_BATCH_FORGET:
        return;  // no reply
      case FUSE_FLUSH:
      case FUSE_RELEASE:
        Reply(in.unique, 0, nullptr, 0);
        return;
      default:
        Reply(in.unique, -ENOSYS, nullptr, 0);
        return;
    }
  }

  const int fd_;
  const int cmd_;
  SlowFuse::Shared* const shared_;
  std::vector<Held> held_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SlowFuse>> SlowFuse::Mount() {
  std::unique_ptr<SlowFuse> f(new SlowFuse());
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    return absl::UnavailableError(absl::StrCat("mmap: ", std::strerror(errno)));
  }
  f->shared_ = new (mem) Shared();
  const int fuse_fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fuse_fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("open /dev/fuse: ", std::strerror(errno)));
  }
  const char* tmp = ::getenv("TEST_TMPDIR");
  std::string templ =
      std::string(tmp != nullptr ? tmp : "/tmp") + "/gopoll-fuse-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    ::close(fuse_fd);
    return absl::UnavailableError(
        absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  const std::string opts =
      absl::StrCat("fd=", fuse_fd, ",rootmode=40000,user_id=0,group_id=0");
  if (::mount("gopoll_slow", templ.c_str(), "fuse", MS_NOSUID | MS_NODEV,
              opts.c_str()) != 0) {
    const int err = errno;
    ::close(fuse_fd);
    ::rmdir(templ.c_str());
    return absl::UnavailableError(
        absl::StrCat("mount fuse: ", std::strerror(err)));
  }
  f->dir_ = templ;
  f->file_ = f->dir_ + "/" + kName;
  f->cmd_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (f->cmd_fd_ < 0) {
    const int err = errno;
    ::close(fuse_fd);
    return absl::UnavailableError(
        absl::StrCat("eventfd: ", std::strerror(err)));  // ~ unmounts
  }
  const pid_t parent = ::getpid();
  f->server_ = ::fork();
  if (f->server_ == 0) {
    // Dies with the test (its FUSE connection then aborts).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(0);
    // Only the two descriptors it serves stay open: a pipe or socket of
    // the test must not stay open in here (its reader would miss EOF).
    for (int i = 3; i < 65536; ++i) {
      if (i != fuse_fd && i != f->cmd_fd_) ::close(i);
    }
    Server(fuse_fd, f->cmd_fd_, f->shared_).Run();
  }
  // Only the server holds the connection: if it dies, requests fail.
  ::close(fuse_fd);
  if (f->server_ < 0) {
    return absl::UnavailableError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  return f;
}

void SlowFuse::Command(uint64_t what) {
  (void)!::write(cmd_fd_, &what, sizeof(what));
}

SlowFuse::~SlowFuse() {
  if (server_ > 0) {
    Command(kCmdStop);  // held reads get EIO, the server exits
    int status;
    ::waitpid(server_, &status, 0);
  }
  if (!dir_.empty()) {
    ::umount2(dir_.c_str(), MNT_DETACH);
    ::rmdir(dir_.c_str());
  }
  if (cmd_fd_ >= 0) ::close(cmd_fd_);
  if (shared_ != nullptr) {
    shared_->~Shared();
    ::munmap(shared_, sizeof(Shared));
  }
}

bool SlowFuse::WaitSeen(int n, absl::Duration limit) const {
  const absl::Time give_up = absl::Now() + limit;
  while (shared_->seen.load() < n) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Microseconds(200));
  }
  return true;
}

void SlowFuse::Serve() {
  const int want = shared_->serve_asked.fetch_add(1) + 1;
  Command(kCmdServe);
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (shared_->serve_done.load() < want && absl::Now() < give_up) {
    absl::SleepFor(absl::Microseconds(200));
  }
}

}  // namespace gopoll::testing
