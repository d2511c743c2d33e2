// Dataset record helpers: enum names, format parsing, category lists.
#include "lriad/data/sample.h"

#include <algorithm>
#include <set>

#include "lriad/io/error.h"

namespace lriad::data {

const char* to_string(Split s) { return s == Split::Train ? "train" : "test"; }
const char* to_string(Label l) { return l == Label::Normal ? "normal" : "anomalous"; }

const char* to_string(Format f) {
  switch (f) {
    case Format::MVTec:
      return "mvtec";
    case Format::VisA:
      return "visa";
    case Format::Folder:
      return "folder";
    case Format::Synthetic:
      return "synth";
  }
  return "?";
}

Format parse_format(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "mvtec" || n == "mvtec-ad" || n == "mvtec_ad") return Format::MVTec;
  if (n == "visa") return Format::VisA;
  if (n == "folder") return Format::Folder;
  if (n == "synth" || n == "synthetic") return Format::Synthetic;
  throw Error("unknown dataset format '" + name + "'", "use one of: mvtec, visa, folder, synth");
}

std::vector<Sample> Dataset::select(const std::string& category, Split split) const {
  std::vector<Sample> out;
  for (const auto& s : samples)
    if (s.category == category && s.split == split) out.push_back(s);
  return out;
}

std::vector<std::string> normalize_categories(const std::vector<std::string>& raw) {
  std::set<std::string> names;
  for (const auto& item : raw) {
    size_t start = 0;
    while (start <= item.size()) {
      size_t comma = item.find(',', start);
      if (comma == std::string::npos) comma = item.size();
      std::string name = item.substr(start, comma - start);
      name.erase(0, name.find_first_not_of(" \t"));
      name.erase(name.find_last_not_of(" \t") + 1);
      if (!name.empty()) names.insert(name);
      start = comma + 1;
    }
  }
  return {names.begin(), names.end()};
}

}  // namespace lriad::data
