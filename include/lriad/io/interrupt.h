// Ctrl-C and SIGTERM for long commands (`lriad train`): the first signal asks the work to stop at
// its next safe point (a step boundary, where a checkpoint is written); a second one exits at
// once with status 128 + signal, which cannot corrupt a checkpoint because every file is written
// under a temporary name and renamed.
#pragma once
#include <string>

#include "lriad/io/error.h"

namespace lriad::io {

// Installs the handlers for SIGINT and SIGTERM (idempotent) and clears any earlier request.
void install_interrupt_handlers();
// Whether a stop was asked for since install_interrupt_handlers(); the signal number, or 0.
int interrupt_requested();

// Thrown at the safe point after a requested stop; main() exits with 128 + signal.
class Interrupted : public Error {
 public:
  Interrupted(int signal, const std::string& message, const std::string& hint)
      : Error(message, hint), signal_(signal) {}
  int exit_code() const { return 128 + signal_; }

 private:
  int signal_;
};

}  // namespace lriad::io
