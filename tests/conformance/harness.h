// SPDX-License-Identifier: BSD-3-Clause
// tests/conformance/harness.h
//
// The harness of the conformance suite: the FD contract is
// written once (conformance_test.cc) against `Conn`, an endpoint driven
// through one *form* of the API, over one *transport*:
//
//   forms       kBlockingInterruptible  gopoll::FD,
//   WaitStrategy::kInterruptibleCall
//               kBlockingPoller         gopoll::FD, WaitStrategy::kPoller
//               kLoopCallback           AsyncFd callbacks on a running Loop
//               kLoopCoroutine          AsyncFd coroutines (Task) on a running
//               Loop kAfterLoop              AsyncFd::fd() blocking calls after
//               the
//                                       Loop that adopted it was destroyed
//   transports  POSIX: pipe, AF_UNIX stream, seqpacket and datagram pairs;
//               Windows: loopback TCP pair, overlapped named pipe.
//
// Every Conn call blocks its caller until the operation completed (loop
// forms start the operation from the calling thread and wait for its
// delivery on the loop thread), so one case drives every form alike.
//
// SupportedForms() lists what the backend implements; RefusedForms() what
// it documents as unimplemented (kPoller on plan9_stub, kInterruptibleCall
// on Windows): the suite checks that those are refused with Unimplemented
// instead of running them.
#ifndef TESTS_CONFORMANCE_HARNESS_H_
#define TESTS_CONFORMANCE_HARNESS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "poll/errors.h"
#include "poll/sysfd.h"

namespace gopoll::conformance {

enum class FormKind {
  kBlockingInterruptible,
  kBlockingPoller,
  kLoopCallback,
  kLoopCoroutine,
  kAfterLoop,
};

enum class Transport { kPipe, kStream, kSeqpacket, kDgram, kTcp, kNamedPipe };

const char* Name(FormKind f);
const char* Name(Transport t);

// Message transports keep write boundaries; EOF transports report the
// peer's close as end of stream (datagram sockets do not).
bool KeepsMessages(Transport t);
bool HasEof(Transport t);

std::vector<FormKind> SupportedForms();
std::vector<FormKind> RefusedForms();
std::vector<Transport> Transports();  // this platform's

// One endpoint. All methods may be called from any thread.
class Conn {
 public:
  virtual ~Conn() = default;
  virtual absl::StatusOr<size_t> Read(absl::Span<char> p) = 0;
  // Loop forms: a task waiting in a Read of this FD is destroyed and, in
  // the same loop turn, a Read into `p` starts (in the Conn's form);
  // returns once it has started, with a call that waits for its result.
  // Other forms: the call makes a plain Read (nothing to abandon).
  virtual std::function<absl::StatusOr<size_t>()> ReadAfterAnAbandonedRead(
      absl::Span<char> p) {
    return [this, p] { return Read(p); };
  }
  virtual absl::StatusOr<size_t> Write(absl::Span<const char> p) = 0;
  // Accepts one connection (listeners only) and closes it.
  virtual absl::Status Accept() = 0;
  // The other operations that can wait (FD's methods; AsyncFd's forms).
  virtual absl::StatusOr<size_t> ReadV(
      absl::Span<const absl::Span<char>> bufs) = 0;
  virtual absl::StatusOr<size_t> WriteV(
      absl::Span<const absl::Span<const char>> bufs) = 0;
  virtual absl::StatusOr<MsgResult> ReadMsg(absl::Span<char> p,
                                            absl::Span<char> oob,
                                            int flags) = 0;
  virtual absl::StatusOr<size_t> WriteMsg(absl::Span<const char> p,
                                          absl::Span<const char> oob,
                                          int flags) = 0;
  virtual absl::StatusOr<RecvFromResult> RecvFrom(absl::Span<char> p,
                                                  int flags) = 0;
  // Readiness only: the loop forms' WaitReadable/WaitWritable; the
  // blocking forms wait the same way through RawRead/RawWrite with a
  // function that is done the second time it runs.
  virtual absl::Status WaitReadable() = 0;
  virtual absl::Status WaitWritable() = 0;
  virtual absl::Status Close() = 0;
  virtual absl::Status SetDeadline(absl::Time t) = 0;
  virtual absl::Status SetReadDeadline(absl::Time t) = 0;
  virtual absl::Status SetWriteDeadline(absl::Time t) = 0;
  // The OS handle the Conn was made with is still open.
  bool HandleOpen() const;
  // That handle (for other code sharing it: a dup, a second reader).
  Sysfd sysfd() const { return sysfd_; }

 protected:
  explicit Conn(Sysfd s) : sysfd_(s) {}
  Sysfd sysfd_;
};

class Form {
 public:
  // Unimplemented (from FD::Init) for a form the backend refuses.
  static std::unique_ptr<Form> Make(FormKind f);
  virtual ~Form() = default;
  // Takes ownership of `s` (also on failure).
  virtual absl::StatusOr<std::unique_ptr<Conn>> Wrap(Sysfd s, FdKind kind) = 0;
};

// Two connected handles: `a` reads what `b` writes (pipes are one-way;
// the other transports are duplex).
struct RawPair {
  Sysfd a = kInvalidSysfd;
  Sysfd b = kInvalidSysfd;
  FdKind kind = FdKind::kNet;
};
absl::StatusOr<RawPair> MakeRawPair(Transport t);
// A TCP listener on the loopback address.
absl::StatusOr<Sysfd> MakeListener();
// Closes a raw handle not handed to a Form.
void CloseRaw(Sysfd s);

struct Pair {
  std::unique_ptr<Conn> a;  // reads
  std::unique_ptr<Conn> b;  // writes
};
absl::StatusOr<Pair> MakePair(Form& form, Transport t);

// Open descriptors of the process (POSIX), for leak checks; -1 where not
// counted (Windows: Wine's own handles come and go).
int OpenHandles();

// The calling thread, for WaitUntilBlocked.
int64_t CurrentThread();
// Returns once `thread` sleeps in the kernel (Linux: state S or D in /proc),
// i.e. is blocked in the operation the test started (loop forms: waiting
// for the delivery). Windows has no cheap equivalent: a fixed 100 ms pause.
// False after a generous bound.
bool WaitUntilBlocked(int64_t thread);

}  // namespace gopoll::conformance

#endif  // TESTS_CONFORMANCE_HARNESS_H_
