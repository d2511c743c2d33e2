// VisA reader: the published split_csv/1cls.csv layout, or a converted MVTec-style tree.
#include <algorithm>
#include <filesystem>
#include <set>

#include "lriad/data/dataset.h"
#include "lriad/io/csv.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "reader_common.h"

namespace fs = std::filesystem;

namespace lriad::data {
namespace {

const char* kVisaLayout =
    "expected VisA as published (<root>/split_csv/1cls.csv with columns object,split,label,image,mask and "
    "<root>/<object>/Data/Images/{Normal,Anomaly}/*.JPG) or converted to the MVTec-AD layout "
    "(<root>/<category>/train/good, test/<defect>, ground_truth/<defect>)";

std::string lower_trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t"));
  s.erase(s.find_last_not_of(" \t") + 1);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Reads one CSV row into a Sample; `where` is "file:row" for messages.
Sample visa_row(const io::CsvTable& t, const std::vector<std::string>& row, const std::string& root,
                const std::string& where) {
  const std::string split = lower_trim(row[t.column("split")]);
  const std::string label = lower_trim(row[t.column("label")]);
  Sample s;
  s.category = row[t.column("object")];
  if (split == "train")
    s.split = Split::Train;
  else if (split == "test")
    s.split = Split::Test;
  else
    throw Error(where + ": unknown split '" + row[t.column("split")] + "'", "expected 'train' or 'test'");
  if (label == "normal")
    s.label = Label::Normal;
  else if (label == "anomaly" || label == "anomalous")
    s.label = Label::Anomalous;
  else
    throw Error(where + ": unknown label '" + row[t.column("label")] + "'", "expected 'normal' or 'anomaly'");
  s.defect_type = s.label == Label::Normal ? kGoodType : kUnknownAnomalyType;
  s.image_path = (fs::path(root) / row[t.column("image")]).string();
  if (!io::is_file(s.image_path))
    throw Error(where + ": image not found: " + s.image_path, "paths in the CSV are relative to the dataset root");
  const std::string mask = t.has_column("mask") ? row[t.column("mask")] : "";
  if (!mask.empty()) {
    s.mask_path = (fs::path(root) / mask).string();
    if (!io::is_file(*s.mask_path))
      throw Error(where + ": mask not found: " + *s.mask_path, "paths in the CSV are relative to the dataset root");
  }
  return s;
}

}  // namespace

Dataset parse_visa_split(const io::CsvTable& table, const std::string& root, const LoadOptions& options) {
  const std::string& csv_path = table.source;
  for (const char* col : {"object", "split", "label", "image"}) table.column(col);  // fail early, naming it
  const size_t object_col = table.column("object");
  std::set<std::string> found;
  for (const auto& row : table.rows) found.insert(row[object_col]);
  Dataset ds;
  ds.format = Format::VisA;
  ds.root = root;
  ds.categories = detail::choose_categories({found.begin(), found.end()}, normalize_categories(options.categories),
                                            root, kVisaLayout);
  const std::set<std::string> wanted(ds.categories.begin(), ds.categories.end());
  int missing_masks = 0;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    if (!wanted.count(table.rows[r][object_col])) continue;
    Sample s = visa_row(table, table.rows[r], root, csv_path + ":" + std::to_string(r + 2));
    if (s.label == Label::Anomalous && !s.mask_path) ++missing_masks;
    ds.samples.push_back(std::move(s));
  }
  if (missing_masks > 0)
    ds.warnings.push_back(std::to_string(missing_masks) + " anomalous images have no mask in " + csv_path);
  detail::check_nonempty_splits(ds);
  detail::check_mask_sizes(ds);
  detail::sort_samples(ds);
  return ds;
}

Dataset read_visa(const std::string& root, const LoadOptions& options) {
  io::require_dir(root, "dataset root", kVisaLayout);
  const std::string csv = root + "/split_csv/1cls.csv";
  if (io::is_file(csv)) return parse_visa_split(io::read_csv(csv), root, options);
  for (const auto& name : io::list_subdirs(root))
    if (io::is_dir(root + "/" + name + "/train")) return read_mvtec(root, options, Format::VisA);
  throw Error("not a VisA dataset: " + root, kVisaLayout);
}

}  // namespace lriad::data
