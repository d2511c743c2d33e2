// Validation shared by the dataset readers.
#include "reader_common.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <tuple>

#include "lriad/data/image_io.h"
#include "lriad/io/error.h"

namespace lriad::data::detail {

std::vector<std::string> choose_categories(const std::vector<std::string>& found,
                                           const std::vector<std::string>& requested, const std::string& root,
                                           const std::string& layout_hint) {
  if (found.empty()) throw Error("no categories found under " + root, layout_hint);
  if (requested.empty()) return found;
  std::string listing;
  for (const auto& f : found) listing += (listing.empty() ? "" : ", ") + f;
  for (const auto& r : requested)
    if (std::find(found.begin(), found.end(), r) == found.end())
      throw Error("unknown category '" + r + "' under " + root, "categories found: " + listing);
  return requested;
}

void check_mask_sizes(const Dataset& dataset) {
  for (const auto& s : dataset.samples) {
    if (!s.mask_path) continue;
    const ImageInfo img = read_image_info(s.image_path);
    const ImageInfo mask = read_image_info(*s.mask_path);
    if (img.width != mask.width || img.height != mask.height)
      throw Error("mask " + *s.mask_path + " is " + std::to_string(mask.width) + "x" + std::to_string(mask.height) +
                      " but its image " + s.image_path + " is " + std::to_string(img.width) + "x" +
                      std::to_string(img.height),
                  "masks must have the size of their image; is it paired with the wrong file?");
  }
}

void check_nonempty_splits(const Dataset& dataset) {
  for (const auto& c : dataset.categories) {
    for (Split split : {Split::Train, Split::Test}) {
      bool any = std::any_of(dataset.samples.begin(), dataset.samples.end(),
                             [&](const Sample& s) { return s.category == c && s.split == split; });
      if (!any)
        throw Error("category '" + c + "' under " + dataset.root + " has no " + to_string(split) + " images",
                    "the download may be incomplete; or pass --category to skip this category");
    }
  }
}

void sort_samples(Dataset& dataset) {
  std::sort(dataset.samples.begin(), dataset.samples.end(), [](const Sample& a, const Sample& b) {
    return std::tie(a.category, a.split, a.label, a.defect_type, a.image_path) <
           std::tie(b.category, b.split, b.label, b.defect_type, b.image_path);
  });
}

std::string stem_of(const std::string& path) { return std::filesystem::path(path).stem().string(); }

}  // namespace lriad::data::detail
