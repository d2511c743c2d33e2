// Config plumbing: edit-distance suggestions, --set overrides, JSON merging.
#include "lriad/io/config_visit.h"

#include <algorithm>

namespace lriad::io {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_key(const std::string& key, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(3, key.size() / 2) + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(key, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

nlohmann::json parse_override(const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("malformed override '" + assignment + "'", "use --set section.key=value, e.g. --set grpo.beta=0.04");
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) {
    // Not JSON: kept as a string, which must be UTF-8 like any JSON string, or the resolved
    // config could not be written into the run directory (found by fuzz_config).
    value = text;
    try {
      (void)value.dump();
    } catch (const nlohmann::json::exception&) {
      throw Error("override " + path + ": the value is not valid UTF-8", "check the --set flag's encoding");
    }
  }
  size_t end = path.size();
  while (true) {
    const size_t dot = path.rfind('.', end - 1);
    const std::string key =
        path.substr(dot == std::string::npos ? 0 : dot + 1, end - (dot == std::string::npos ? 0 : dot + 1));
    if (key.empty()) throw Error("malformed override key '" + path + "'", "keys are separated by single dots");
    value = nlohmann::json{{key, value}};
    if (dot == std::string::npos || dot == 0) break;
    end = dot;
  }
  return value;
}

void merge_json(nlohmann::json& base, const nlohmann::json& overlay) {
  if (!base.is_object() || !overlay.is_object()) {
    base = overlay;
    return;
  }
  for (const auto& [k, v] : overlay.items()) {
    if (base.contains(k) && base[k].is_object() && v.is_object())
      merge_json(base[k], v);
    else
      base[k] = v;
  }
}

}  // namespace lriad::io
