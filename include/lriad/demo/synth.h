// Procedural demo dataset: textures and simple objects with realistic defects, written as an
// MVTec-AD tree (train/good, test/<defect>, ground_truth/<defect>/<stem>_mask.png) or in VisA's
// published layout (split_csv/1cls.csv, <object>/Data/Images/{Normal,Anomaly}/NNNN.JPG).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lriad::demo {

struct SynthOptions {
  std::string out;                // output root; created if missing
  int categories = 6;             // how many of synth_categories() to write, in that order
  std::vector<std::string> only;  // explicit category names (overrides `categories` when set)
  int per_category = 100;         // images per category, train + test
  int size = 128;                 // image side in pixels (visa: the height; width round(size * 4 / 3))
  uint64_t seed = 0;              // same seed, same options -> byte-identical files
  bool overwrite = false;         // allow writing into a non-empty `out`; the written categories'
                                  // folders are replaced, other files are left alone
  std::string layout = "mvtec";   // mvtec: square PNG tree | visa: 4:3 colour JPG + 1cls.csv
};

struct SynthCategoryInfo {
  std::string name;
  bool is_texture = false;
  bool colour = false;                     // false: greyscale images, written as 1-channel PNG
                                          // (3-channel JPG in the visa layout)
  std::vector<std::string> defect_types;  // ordered from most to least frequent
};

struct SynthSummary {
  std::string root;
  std::map<std::string, int> train_good;                           // per category
  std::map<std::string, int> test_good;                            // per category
  std::map<std::string, std::map<std::string, int>> test_defects;  // category -> type -> n
  int total_images() const;
  int total_anomalous() const;
};

// How one category's `per_category` images are split: ~60% train/good, ~16.5% test/good and
// ~23.5% test defects (MVTec-AD's overall defect share), the defects spread over the types
// with weights n_types, n_types-1, ..., 1 (4 types: 0.4/0.3/0.2/0.1) and at least one each.
// The counts always sum to per_category; `defects` is non-increasing.
struct SynthSplitCounts {
  int train_good = 0;
  int test_good = 0;
  std::vector<int> defects;  // per defect type, in `defect_types` order
  int total_defects() const;
};
SynthSplitCounts split_counts(int per_category, int n_types);

// Every category the generator knows, in a fixed order that mixes textures and objects.
const std::vector<SynthCategoryInfo>& synth_categories();
std::vector<std::string> category_names();     // synth_categories()' names, in that order
std::vector<std::string> defect_type_names();  // every category's defect types, sorted, each once

// Writes the tree; throws lriad::Error (naming the path) if `out` is non-empty and
// !overwrite, or on invalid options (size < 32, per_category < 10, unknown name, ...).
SynthSummary generate_synthetic(const SynthOptions& options);

}  // namespace lriad::demo
