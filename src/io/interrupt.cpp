// Signal handlers for a clean stop (see interrupt.h). The handler only touches a lock-free
// atomic and calls async-signal-safe functions (write, _exit).
#include "lriad/io/interrupt.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace lriad::io {
namespace {

std::atomic<int> g_signal{0};

void on_signal(int sig) {
  if (g_signal.exchange(sig) != 0) _exit(128 + sig);  // the second one: leave now
  static const char msg[] =
      "\nlriad: stopping after the current step and writing a checkpoint (press Ctrl-C again to quit at once)\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
  (void)ignored;
}

}  // namespace

void install_interrupt_handlers() {
  static_assert(std::atomic<int>::is_always_lock_free, "the signal flag must be lock-free");
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int interrupt_requested() { return g_signal.load(); }

}  // namespace lriad::io
