// libFuzzer target: parse_completion on arbitrary text. The first line of the input is the list
// of known defect types (comma-separated), the rest is the completion. It must never throw, and
// its result must obey the documented rules.
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "lriad/text/answer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  std::vector<std::string> types;
  std::string completion = input;
  if (newline != std::string::npos) {
    std::istringstream list(input.substr(0, newline));
    for (std::string t; std::getline(list, t, ',');) types.push_back(t);
    completion = input.substr(newline + 1);
  }
  const auto p = lriad::text::parse_completion(completion, types);  // any exception is a finding
  // Rule 1: well-formed implies a verdict, a think and an answer, and no error.
  if (p.well_formed && (!p.verdict || p.think.empty() || p.answer.empty() || !p.error.empty())) std::abort();
  if (!p.well_formed && p.error.empty()) std::abort();
  // consistent means both verdicts are present and agree.
  if (p.consistent && (!p.verdict || p.reasoning_verdict != p.verdict)) std::abort();
  // A defect type is only named for an anomalous verdict.
  if (!p.defect_type.empty() && p.verdict != 1) std::abort();
  return 0;
}
