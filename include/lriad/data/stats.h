// Dataset description for `lriad data stats`: counts per split, class and defect type; sizes; masks.
#pragma once
#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "lriad/data/sample.h"

namespace lriad::data {

struct SplitCounts {
  int normal = 0;
  int anomalous = 0;
  int masks = 0;                         // anomalous images with a ground-truth mask
  std::map<std::string, int> by_defect;  // defect type -> images ("good" included)
  int total() const { return normal + anomalous; }
};

struct CategoryStats {
  SplitCounts train;
  SplitCounts test;
  std::map<std::string, int> image_sizes;  // "WxH" -> images (filled when sizes are probed)
  // normal images / anomalous images over both splits; 0 when there are no anomalies.
  double imbalance_ratio() const;
  // most frequent / least frequent defect type (anomalies only); 0 without anomalies.
  double defect_imbalance() const;
};

struct DatasetStats {
  std::map<std::string, CategoryStats> categories;
  CategoryStats totals;
};

// Counts every sample. With `probe_sizes`, reads each image header (fast; fails naming a
// corrupt or truncated file); with `decode`, fully decodes each image and mask as well.
DatasetStats compute_stats(const Dataset& dataset, bool probe_sizes, bool decode);

// {"categories": {name: {"train": {...}, "test": {...}, ...}}, "totals": {...}, ...}
nlohmann::json stats_to_json(const Dataset& dataset, const DatasetStats& stats);

// Human-readable table (one row per category and split, then totals).
std::string stats_to_table(const Dataset& dataset, const DatasetStats& stats);

}  // namespace lriad::data
