// SPDX-License-Identifier: BSD-3-Clause
// poll/loop/console_ctrl.h
//
// Windows: the delivery half of ShutdownSignal's console control handler
// (poll/net.h), internal. The handler the system calls for Ctrl+C,
// Ctrl+Break and closing the console is this plus, for closing, a wait for
// the process to end; tests call it directly where the console cannot
// raise the event.
#ifndef POLL_LOOP_CONSOLE_CTRL_H_
#define POLL_LOOP_CONSOLE_CTRL_H_

namespace gopoll::internal_net {

// Hands console control event `type` (CTRL_C_EVENT, ...) to the oldest
// ShutdownSignal waiter, as SIGINT (Ctrl+C, Ctrl+Break) or SIGTERM (close,
// logoff, shutdown). False if nobody waits or `type` is none of those (the
// next handler then runs, by default ending the process). Any thread.
bool HandleConsoleCtrl(unsigned long type);

}  // namespace gopoll::internal_net

#endif  // POLL_LOOP_CONSOLE_CTRL_H_
