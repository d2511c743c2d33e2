// Error type thrown by every lriad component: what went wrong, where, and what to try.
// Errors are thrown with the offending path and caught once, in main().
#pragma once
#include <stdexcept>
#include <string>

namespace lriad {

class Error : public std::runtime_error {
 public:
  // `what` says what failed (naming the file or key), `hint` what the user can do.
  explicit Error(const std::string& what, const std::string& hint = "")
      : std::runtime_error(hint.empty() ? what : what + "\n  hint: " + hint), hint_(hint) {}
  const std::string& hint() const { return hint_; }

 private:
  std::string hint_;
};

// Re-throws `e` with a stage prefix ("loading dataset /x: ...") so each layer adds context.
[[noreturn]] void rethrow_with_context(const std::string& context, const std::exception& e);

}  // namespace lriad
