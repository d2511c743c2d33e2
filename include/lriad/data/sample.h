// Dataset records shared by every reader: one Sample per image, plus the Dataset that holds them.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace lriad::data {

enum class Split { Train, Test };
enum class Label { Normal = 0, Anomalous = 1 };

const char* to_string(Split s);
const char* to_string(Label l);

// Defect type used for normal images, and for anomalies in formats that name no type.
inline constexpr const char* kGoodType = "good";
inline constexpr const char* kUnknownAnomalyType = "anomaly";

struct Sample {
  std::string image_path;  // absolute or root-relative path to the image
  std::string category;    // e.g. "bottle", "pcb1"
  Split split = Split::Train;
  Label label = Label::Normal;
  std::string defect_type = kGoodType;   // "good" for normal images
  std::optional<std::string> mask_path;  // ground-truth mask (evaluation only)
};

enum class Format { MVTec, VisA, Folder, Synthetic };
Format parse_format(const std::string& name);  // throws lriad::Error listing the valid names
const char* to_string(Format f);

struct Dataset {
  Format format = Format::MVTec;
  std::string root;
  std::vector<std::string> categories;  // the categories loaded, sorted
  std::vector<Sample> samples;          // sorted by category, split, defect type, path
  std::vector<std::string> warnings;    // non-fatal findings (e.g. anomalies without masks)
  std::string split_note;               // how the train/test split was made, when lriad made it

  std::vector<Sample> select(const std::string& category, Split split) const;
};

// Splits "a,b" and repeated values into one sorted, de-duplicated list; empty means "all".
std::vector<std::string> normalize_categories(const std::vector<std::string>& raw);

}  // namespace lriad::data
