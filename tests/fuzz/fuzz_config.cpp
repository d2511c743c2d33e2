// libFuzzer target: the config loader. The input is JSON text, optionally followed by a line
// "--" and one --set override per line. Only lriad::Error may escape; an accepted config must
// survive a save/load round trip unchanged (what is written into every run directory).
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "lriad/io/config.h"
#include "lriad/io/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t sep = input.find("\n--\n");
  const std::string json_text = input.substr(0, sep);
  std::vector<std::string> overrides;
  if (sep != std::string::npos) {
    std::istringstream lines(input.substr(sep + 4));
    for (std::string line; std::getline(lines, line);) overrides.push_back(line);
  }
  lriad::RunConfig config;
  try {
    config = lriad::parse_config(json_text, "fuzz.json", overrides);
  } catch (const lriad::Error&) {
    return 0;
  }
  // save_config's path, in memory: the resolved config must serialise and load back the same.
  const std::string saved = lriad::to_json(config).dump(2);
  const lriad::RunConfig again = lriad::parse_config(saved, "saved.json");
  if (lriad::to_json(again) != lriad::to_json(config)) std::abort();
  return 0;
}
