// Helpers of the demo generator's tests (test_demo.cpp, test_demo_visa.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lriad/demo/synth.h"
#include "lriad/io/error.h"

namespace lriad::test {

namespace fs = std::filesystem;
using demo::synth_categories;
using demo::SynthOptions;

inline std::string synth_error(const SynthOptions& o) {
  try {
    lriad::demo::generate_synthetic(o);
  } catch (const lriad::Error& e) {
    return e.what();
  }
  return "";
}

inline std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Every regular file under `root`, relative to it, sorted.
inline std::vector<std::string> list_files(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), root).generic_string());
  std::sort(out.begin(), out.end());
  return out;
}

inline SynthOptions small_options(const std::string& out, uint64_t seed = 7) {
  SynthOptions o;
  o.out = out;
  o.categories = static_cast<int>(synth_categories().size());  // all of them
  o.per_category = 20;
  o.size = 64;
  o.seed = seed;
  return o;
}

}  // namespace lriad::test
