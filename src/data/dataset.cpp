// The dataset entry points every format shares: load_dataset, save_split, category_of_path.
#include <algorithm>
#include <filesystem>

#include "lriad/data/dataset.h"
#include "lriad/io/csv.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"

namespace fs = std::filesystem;

namespace lriad::data {

std::string category_of_path(const std::string& image, const std::vector<std::string>& known) {
  const auto p = fs::absolute(image).lexically_normal();
  for (auto dir = p.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path())
    if (std::find(known.begin(), known.end(), dir.filename().string()) != known.end()) return dir.filename().string();
  const auto split = p.parent_path().parent_path().filename().string();
  if (split == "test" || split == "train") return p.parent_path().parent_path().parent_path().filename().string();
  return "";
}

Dataset load_dataset(Format format, const std::string& root, const LoadOptions& options) {
  switch (format) {
    case Format::MVTec:
      return read_mvtec(root, options);
    case Format::VisA:
      return read_visa(root, options);
    case Format::Folder:
      return read_folder(root, options);
    case Format::Synthetic:
      return read_mvtec(root, options, Format::Synthetic);
  }
  throw Error("unsupported dataset format");
}

void save_split(const Dataset& dataset, const std::string& path) {
  std::string out = "category,split,label,defect_type,image,mask\n";
  auto rel = [&](const std::string& p) { return fs::path(p).lexically_relative(dataset.root).string(); };
  for (const auto& s : dataset.samples)
    out += io::csv_field(s.category) + "," + to_string(s.split) + "," + to_string(s.label) + "," +
           io::csv_field(s.defect_type) + "," + io::csv_field(rel(s.image_path)) + "," +
           io::csv_field(s.mask_path ? rel(*s.mask_path) : "") + "\n";
  io::write_file_atomic(path, out);
}

}  // namespace lriad::data
