// Context-chaining for lriad::Error.
#include "lriad/io/error.h"

namespace lriad {

void rethrow_with_context(const std::string& context, const std::exception& e) {
  throw Error(context + ": " + e.what());
}

}  // namespace lriad
