// Dataset statistics: counting, JSON and table rendering for `lriad data stats`.
#include "lriad/data/stats.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lriad/data/image_io.h"

namespace lriad::data {
namespace {

void add(SplitCounts& c, const Sample& s) {
  (s.label == Label::Normal ? c.normal : c.anomalous)++;
  c.by_defect[s.defect_type]++;
  if (s.mask_path && s.label == Label::Anomalous) c.masks++;
}

nlohmann::json split_json(const SplitCounts& c) {
  return {{"normal", c.normal},
          {"anomalous", c.anomalous},
          {"total", c.total()},
          {"masks", c.masks},
          {"by_defect", c.by_defect}};
}

nlohmann::json category_json(const CategoryStats& c) {
  nlohmann::json j = {{"train", split_json(c.train)},
                      {"test", split_json(c.test)},
                      {"imbalance_ratio", c.imbalance_ratio()},
                      {"defect_imbalance", c.defect_imbalance()}};
  if (!c.image_sizes.empty()) j["image_sizes"] = c.image_sizes;
  return j;
}

std::string fmt_ratio(double r) {
  if (r <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", r);
  return buf;
}

std::string defect_list(const SplitCounts& c) {
  std::string out;
  for (const auto& [type, n] : c.by_defect)
    if (type != kGoodType) out += (out.empty() ? "" : " ") + type + ":" + std::to_string(n);
  return out.empty() ? "-" : out;
}

}  // namespace

double CategoryStats::imbalance_ratio() const {
  const int anomalous = train.anomalous + test.anomalous;
  return anomalous == 0 ? 0.0 : double(train.normal + test.normal) / anomalous;
}

double CategoryStats::defect_imbalance() const {
  std::map<std::string, int> all;
  for (const auto* c : {&train, &test})
    for (const auto& [type, n] : c->by_defect)
      if (type != kGoodType) all[type] += n;
  if (all.empty()) return 0.0;
  auto [lo, hi] =
      std::minmax_element(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  return double(hi->second) / lo->second;
}

DatasetStats compute_stats(const Dataset& dataset, bool probe_sizes, bool decode) {
  DatasetStats st;
  for (const auto& c : dataset.categories) st.categories[c];
  for (const auto& s : dataset.samples) {
    for (CategoryStats* cs : {&st.categories[s.category], &st.totals}) {
      add(s.split == Split::Train ? cs->train : cs->test, s);
    }
    if (probe_sizes || decode) {
      const ImageInfo info = read_image_info(s.image_path);
      const std::string key = std::to_string(info.width) + "x" + std::to_string(info.height);
      st.categories[s.category].image_sizes[key]++;
      st.totals.image_sizes[key]++;
    }
    if (decode) {
      read_image(s.image_path);
      if (s.mask_path) read_mask(*s.mask_path);
    }
  }
  return st;
}

nlohmann::json stats_to_json(const Dataset& dataset, const DatasetStats& stats) {
  nlohmann::json j;
  j["format"] = to_string(dataset.format);
  j["root"] = dataset.root;
  j["categories"] = nlohmann::json::object();
  for (const auto& [name, c] : stats.categories) j["categories"][name] = category_json(c);
  j["totals"] = category_json(stats.totals);
  j["warnings"] = dataset.warnings;
  if (!dataset.split_note.empty()) j["split_note"] = dataset.split_note;
  return j;
}

std::string stats_to_table(const Dataset& dataset, const DatasetStats& stats) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line, "%-16s %-5s %7s %7s %9s %6s %9s  %s\n", "category", "split", "images", "normal",
                "anomalous", "masks", "imbalance", "defect types");
  out << "dataset " << dataset.root << " (" << to_string(dataset.format) << ")\n" << line;
  auto rows = [&](const std::string& name, const CategoryStats& c) {
    for (const auto& [split, sc] : {std::pair{"train", &c.train}, std::pair{"test", &c.test}}) {
      std::snprintf(line, sizeof line, "%-16s %-5s %7d %7d %9d %6d %9s  %s\n", name.c_str(), split, sc->total(),
                    sc->normal, sc->anomalous, sc->masks,
                    std::string(split) == "train" ? fmt_ratio(c.imbalance_ratio()).c_str() : "",
                    defect_list(*sc).c_str());
      out << line;
    }
  };
  for (const auto& [name, c] : stats.categories) rows(name, c);
  rows("TOTAL", stats.totals);
  if (!stats.totals.image_sizes.empty()) {
    out << "image sizes:";
    for (const auto& [size, n] : stats.totals.image_sizes) out << " " << size << " (" << n << ")";
    out << "\n";
  }
  out << "imbalance = normal/anomalous images over both splits";
  if (stats.totals.defect_imbalance() > 0)
    out << "; defect types most/least frequent: " << fmt_ratio(stats.totals.defect_imbalance());
  out << "\n";
  if (!dataset.split_note.empty()) out << dataset.split_note << "\n";
  return out.str();
}

}  // namespace lriad::data
