// Folder reader: a user's good/ folder plus one folder per defect type; lriad makes the split.
#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>

#include "lriad/data/dataset.h"
#include "lriad/data/image_io.h"
#include "lriad/io/csv.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "lriad/util/rng.h"
#include "reader_common.h"

namespace fs = std::filesystem;

namespace lriad::data {
namespace {

const char* kFolderLayout =
    "expected <root>/good/*.png plus one folder per defect type (<root>/<defect>/*.png), or "
    "<root>/<category>/good/... for several categories; optional masks in "
    "<category>/ground_truth/<defect>/<stem>_mask.png";

bool is_reserved(const std::string& name) { return name == "ground_truth" || name == "masks"; }

// Portable seeded shuffle (std::shuffle's use of distributions is implementation-defined).
void seeded_shuffle(std::vector<std::string>& v, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

uint64_t hash_name(const std::string& s, uint64_t seed) { return util::hash_string(s, util::kDrawHashBasis ^ seed); }

// One category: every class (good and each defect folder) split with the same test fraction.
void read_folder_category(Dataset& ds, const std::string& category, const std::string& dir, const LoadOptions& o) {
  for (const auto& cls : io::list_subdirs(dir)) {
    if (is_reserved(cls)) continue;
    std::vector<std::string> images = data::list_images(dir + "/" + cls);
    if (images.empty()) continue;
    const bool good = cls == kGoodType;
    std::map<std::string, std::string> masks;
    for (const auto& m : data::list_images(dir + "/ground_truth/" + cls)) {
      std::string stem = detail::stem_of(m);
      if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, "_mask") == 0) stem.resize(stem.size() - 5);
      masks[stem] = m;
    }
    seeded_shuffle(images, hash_name(category + "/" + cls, o.folder_seed));
    const size_t n = images.size();
    size_t n_test = size_t(std::lround(double(n) * o.folder_test_fraction));
    if (n >= 2)
      n_test = std::clamp<size_t>(n_test, 1, n - 1);
    else
      n_test = good ? 0 : 1;
    for (size_t i = 0; i < n; ++i) {
      Sample s{images[i], category,    i < n_test ? Split::Test : Split::Train, good ? Label::Normal : Label::Anomalous,
               cls,       std::nullopt};
      auto it = masks.find(detail::stem_of(images[i]));
      if (it != masks.end()) s.mask_path = it->second;
      ds.samples.push_back(std::move(s));
    }
  }
  if (!std::any_of(ds.samples.begin(), ds.samples.end(),
                   [&](const Sample& s) { return s.category == category && s.label == Label::Normal; }))
    throw Error("no normal images in " + dir + "/good", kFolderLayout);
}

// Reuses a split written by save_split(); paths in it are relative to the root.
void read_split_file(Dataset& ds, const std::string& path) {
  const io::CsvTable t = io::read_csv(path);
  const size_t c_cat = t.column("category"), c_split = t.column("split"), c_label = t.column("label"),
               c_type = t.column("defect_type"), c_img = t.column("image"), c_mask = t.column("mask");
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    if (std::find(ds.categories.begin(), ds.categories.end(), row[c_cat]) == ds.categories.end()) continue;
    const std::string where = path + ":" + std::to_string(r + 2);
    Sample s;
    s.category = row[c_cat];
    if (row[c_split] != "train" && row[c_split] != "test")
      throw Error(where + ": unknown split '" + row[c_split] + "'", "expected train or test");
    s.split = row[c_split] == "train" ? Split::Train : Split::Test;
    if (row[c_label] != "normal" && row[c_label] != "anomalous")
      throw Error(where + ": unknown label '" + row[c_label] + "'", "expected normal or anomalous");
    s.label = row[c_label] == "normal" ? Label::Normal : Label::Anomalous;
    s.defect_type = row[c_type];
    s.image_path = (fs::path(ds.root) / row[c_img]).string();
    if (!io::is_file(s.image_path)) throw Error(where + ": image not found: " + s.image_path);
    if (!row[c_mask].empty()) s.mask_path = (fs::path(ds.root) / row[c_mask]).string();
    ds.samples.push_back(std::move(s));
  }
  ds.split_note = "split read from " + path;
}

}  // namespace

Dataset read_folder(const std::string& root, const LoadOptions& options) {
  io::require_dir(root, "dataset root", kFolderLayout);
  if (!(options.folder_test_fraction > 0.0 && options.folder_test_fraction < 1.0))
    throw Error("folder test fraction must be in (0, 1), got " + std::to_string(options.folder_test_fraction));
  Dataset ds;
  ds.format = Format::Folder;
  ds.root = root;
  const bool single = io::is_dir(root + "/good");
  std::vector<std::string> found;
  if (single)
    found.push_back(fs::weakly_canonical(root).filename().string());
  else
    for (const auto& name : io::list_subdirs(root))
      if (io::is_dir(root + "/" + name + "/good")) found.push_back(name);
  ds.categories = detail::choose_categories(found, normalize_categories(options.categories), root, kFolderLayout);
  if (!options.folder_split_file.empty()) {
    read_split_file(ds, options.folder_split_file);
  } else {
    for (const auto& c : ds.categories) read_folder_category(ds, c, single ? root : root + "/" + c, options);
    std::ostringstream note;
    note << "split made by lriad: " << options.folder_test_fraction << " of each class to test, stratified, seed "
         << options.folder_seed;
    ds.split_note = note.str();
  }
  detail::check_nonempty_splits(ds);
  detail::check_mask_sizes(ds);
  detail::sort_samples(ds);
  return ds;
}

}  // namespace lriad::data
