// Dataset readers: MVTec-AD, VisA (original CSV or converted tree), user folders; one entry point.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lriad/data/sample.h"

namespace lriad::io {
struct CsvTable;
}  // namespace lriad::io

namespace lriad::data {

struct LoadOptions {
  std::vector<std::string> categories;  // empty = every category found
  // Folder format only: share of each class (good and every defect type) put in the
  // test split, stratified and seeded. A split file, when given, is reused instead.
  double folder_test_fraction = 0.3;
  uint64_t folder_seed = 0;
  std::string folder_split_file;  // CSV written by save_split(); empty = make the split
};

// <root>/<category>/{train/good, test/<defect>, ground_truth/<defect>/<stem>_mask.png}
Dataset read_mvtec(const std::string& root, const LoadOptions& options, Format tag = Format::MVTec);

// <root>/split_csv/1cls.csv (columns object,split,label,image,mask found by name), or an
// already-converted MVTec-style VisA tree.
Dataset read_visa(const std::string& root, const LoadOptions& options);

// The CSV half of read_visa: interprets a parsed split CSV (table.source names it in errors)
// whose image and mask paths are relative to `root`; they must exist. Exposed for the fuzzer.
Dataset parse_visa_split(const io::CsvTable& table, const std::string& root, const LoadOptions& options);

// <root>/good/ plus one folder per defect type (one category named after <root>), or
// <root>/<category>/good/ ... for several categories. Optional masks in
// <category>/ground_truth/<defect>/<stem>_mask.png. The train/test split is made here.
Dataset read_folder(const std::string& root, const LoadOptions& options);

// Dispatches on `format` (Synthetic reads the MVTec layout that `lriad synth` writes).
Dataset load_dataset(Format format, const std::string& root, const LoadOptions& options);

// The category an image's path names, for a prompt when none is given: the nearest folder above
// the image whose name is one of `known` (the run's categories: MVTec's
// <category>/test/<defect>/<image>, VisA's <category>/Data/Images/Anomaly/<image>, a folder
// dataset's <category>/<label>/<image>), else MVTec's <category>/<train|test>/<defect>/<image>;
// empty when neither says.
std::string category_of_path(const std::string& image, const std::vector<std::string>& known);

// Records the split (one row per image: category,split,label,defect_type,image,mask) so a
// folder dataset's split can be reused; written atomically.
void save_split(const Dataset& dataset, const std::string& path);

}  // namespace lriad::data
