// MVTec-AD reader (also MVTec-style trees: converted VisA, `lriad synth` output).
#include <filesystem>
#include <map>

#include <spdlog/spdlog.h>

#include "lriad/data/dataset.h"
#include "lriad/data/image_io.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "reader_common.h"

namespace fs = std::filesystem;

namespace lriad::data {
namespace {

const char* kMvtecLayout =
    "expected an MVTec-AD tree: <root>/<category>/train/good/*.png, <root>/<category>/test/<defect>/*.png, "
    "<root>/<category>/ground_truth/<defect>/<stem>_mask.png";

// Masks of one defect folder by image stem: "000_mask.png" and "000.png" both pair with "000".
std::map<std::string, std::string> masks_by_stem(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& path : data::list_images(dir)) {
    std::string stem = detail::stem_of(path);
    const std::string suffix = "_mask";
    if (stem.size() > suffix.size() && stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0)
      stem.resize(stem.size() - suffix.size());
    out[stem] = path;
  }
  return out;
}

// Steps: 1) good training images, 2) test images per defect folder, 3) pair masks by stem.
void read_category(Dataset& ds, const std::string& category) {
  const std::string dir = (fs::path(ds.root) / category).string();
  for (const auto& path : data::list_images(dir + "/train/good"))
    ds.samples.push_back({path, category, Split::Train, Label::Normal, kGoodType, std::nullopt});
  for (const auto& extra : io::list_subdirs(dir + "/train"))
    if (extra != "good")
      ds.warnings.push_back(dir + "/train/" + extra + ": ignored (MVTec-AD's train split holds only 'good')");

  int missing_masks = 0;
  for (const auto& defect : io::list_subdirs(dir + "/test")) {
    const bool good = defect == kGoodType;
    auto masks = good ? std::map<std::string, std::string>{} : masks_by_stem(dir + "/ground_truth/" + defect);
    for (const auto& path : data::list_images(dir + "/test/" + defect)) {
      Sample s{path, category, Split::Test, good ? Label::Normal : Label::Anomalous, defect, std::nullopt};
      auto it = masks.find(detail::stem_of(path));
      if (it != masks.end()) {
        s.mask_path = it->second;
        masks.erase(it);
      } else if (!good) {
        ++missing_masks;
      }
      ds.samples.push_back(std::move(s));
    }
    if (!masks.empty())
      throw Error("mask without an image: " + masks.begin()->second + " (expected " + dir + "/test/" + defect + "/" +
                      masks.begin()->first + ".*)",
                  "masks are paired with images by file stem; remove the stray mask or restore its image");
  }
  if (missing_masks > 0)
    ds.warnings.push_back(category + ": " + std::to_string(missing_masks) +
                          " anomalous test images have no mask (localisation is not scored for them)");
  if (io::is_dir(dir + "/ground_truth"))
    for (const auto& defect : io::list_subdirs(dir + "/ground_truth"))
      if (!io::is_dir(dir + "/test/" + defect))
        throw Error("mask folder without images: " + dir + "/ground_truth/" + defect,
                    "expected a matching folder " + dir + "/test/" + defect);
}

}  // namespace

Dataset read_mvtec(const std::string& root, const LoadOptions& options, Format tag) {
  io::require_dir(root, "dataset root", kMvtecLayout);
  Dataset ds;
  ds.format = tag;
  ds.root = root;
  std::vector<std::string> found;
  for (const auto& name : io::list_subdirs(root))
    if (io::is_dir(root + "/" + name + "/train") || io::is_dir(root + "/" + name + "/test")) found.push_back(name);
  ds.categories = detail::choose_categories(found, normalize_categories(options.categories), root, kMvtecLayout);
  for (const auto& c : ds.categories) read_category(ds, c);
  detail::check_nonempty_splits(ds);
  detail::check_mask_sizes(ds);
  detail::sort_samples(ds);
  return ds;
}

}  // namespace lriad::data
