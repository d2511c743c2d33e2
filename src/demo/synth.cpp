// Synthetic demo dataset: the category table, split counts, per-sample rendering and the
// writer of the MVTec-AD tree (images, masks, README.txt, synth.json); VisA's is in visa_layout.cpp.
#include "lriad/demo/synth.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "lriad/data/sample.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "internal.h"

namespace fs = std::filesystem;

namespace lriad::demo {

namespace {
using K = DefectKind;
const cv::Vec3f kBrown(0.62f, 0.48f, 0.34f), kDarkBrown(0.4f, 0.3f, 0.22f);
const cv::Vec3f kOil(0.5f, 0.5f, 0.45f), kRust(0.75f, 0.45f, 0.3f), kBlue(0.55f, 0.65f, 0.9f);
const cv::Vec3f kSoot(0.12f, 0.11f, 0.1f), kRustDirt(0.45f, 0.25f, 0.12f);
const cv::Vec3f kGreen(0.3f, 0.45f, 0.25f), kWhite(0.9f, 0.9f, 0.88f);
}  // namespace

const std::vector<CategorySpec>& category_specs() {
  // Order matters: the first six (the default) mix textures/objects and grey/colour.
  static const std::vector<CategorySpec> specs = {
      {"fabric",
       true,
       true,
       render_fabric,
       {1.0, {kBrown, kDarkBrown, kRust}, {kSoot}},
       {{"stain", K::Stain}, {"hole", K::Hole}, {"thread", K::LooseThread}, {"cut", K::Cut}},
       0.012},
      {"hex_nut",
       false,
       false,
       render_hex_nut,
       {1.0, {kOil, kDarkBrown}, {kSoot, kWhite}},
       {{"scratch", K::Scratch},
        {"stain", K::Stain},
        {"broken_corner", K::MissingPart},
        {"contamination", K::Contamination}},
       0.012},
      {"brushed_metal",
       true,
       false,
       render_brushed_metal,
       {1.0, {kOil, kDarkBrown}, {kSoot}},
       {{"scratch", K::Scratch}, {"dent", K::Dent}, {"stain", K::Stain}, {"hole", K::Hole}},
       0.01},
      {"pill",
       false,
       true,
       render_pill,
       {-1.0, {kBrown}, {kSoot, kRustDirt, kBlue, kGreen}},
       {{"contamination", K::Contamination},
        {"crack", K::Crack},
        {"print_error", K::Variant},
        {"chip", K::MissingPart}},
       0.01},
      {"wood",
       true,
       true,
       render_wood,
       {1.0, {kDarkBrown, kOil, kGreen}, {kSoot}},
       {{"scratch", K::Scratch}, {"stain", K::Stain}, {"hole", K::Hole}, {"crack", K::Crack}},
       0.012},
      {"screw",
       false,
       false,
       render_screw,
       {1.0, {kDarkBrown}, {kSoot}},
       {{"scratch", K::Scratch}, {"thread_damage", K::Variant}, {"broken_tip", K::MissingPart}},
       0.01},
      {"tile",
       true,
       false,
       render_tile,
       {-1.0, {kDarkBrown, kOil}, {kSoot, kRustDirt}},
       {{"crack", K::Crack}, {"stain", K::Stain}, {"hole", K::Hole}, {"contamination", K::Contamination}},
       0.012},
      {"bottle_cap",
       false,
       true,
       render_bottle_cap,
       {1.0, {kDarkBrown, kOil}, {kSoot, kRustDirt, kGreen}},
       {{"scratch", K::Scratch}, {"print_error", K::Variant}, {"dent", K::Dent}, {"contamination", K::Contamination}},
       0.01},
      {"granite",
       true,
       true,
       render_granite,
       {1.0, {kDarkBrown, kRust, kOil}, {kSoot}},
       {{"crack", K::Crack}, {"stain", K::Stain}, {"hole", K::Hole}},
       0.012},
      {"washer",
       false,
       false,
       render_washer,
       {1.0, {kOil, kDarkBrown}, {kSoot, kWhite}},
       {{"scratch", K::Scratch}, {"contamination", K::Contamination}, {"misplaced", K::Variant}, {"crack", K::Crack}},
       0.012},
  };
  return specs;
}

const CategorySpec& find_spec(const std::string& name) {
  for (const auto& s : category_specs())
    if (s.name == name) return s;
  std::string known;
  for (const auto& s : category_specs()) known += (known.empty() ? "" : ", ") + s.name;
  throw Error("synth: unknown category '" + name + "'", "known categories: " + known);
}

uint64_t sample_seed(uint64_t master, const std::string& category, const std::string& folder, int index) {
  uint64_t h = hash_combine(mix64(master), hash_string(category));
  h = hash_combine(h, hash_string(folder));
  return hash_combine(h, static_cast<uint64_t>(index));
}

namespace {

// Float RGB -> the 8-bit image as written: BGR for colour, the channel mean for greyscale.
cv::Mat to_8u(const cv::Mat& rgb, bool colour) {
  cv::Mat out;
  if (colour) {
    rgb.convertTo(out, CV_8UC3, 255.0);
    cv::cvtColor(out, out, cv::COLOR_RGB2BGR);
    return out;
  }
  cv::Mat grey(rgb.size(), CV_32F);
  for (int y = 0; y < rgb.rows; ++y)
    for (int x = 0; x < rgb.cols; ++x) {
      const cv::Vec3f& p = rgb.at<cv::Vec3f>(y, x);
      grey.at<float>(y, x) = (p[0] + p[1] + p[2]) / 3.f;
    }
  grey.convertTo(out, CV_8UC1, 255.0);
  return out;
}

// Footprint of a geometry-level defect: where the two renders differ visibly.
cv::Mat variant_footprint(const cv::Mat& clean, const cv::Mat& defective) {
  cv::Mat diff, ch[3], m;
  cv::absdiff(clean, defective, diff);
  cv::split(diff, ch);
  m = cv::max(cv::max(ch[0], ch[1]), ch[2]);
  cv::Mat fp = (m > 0.05f);
  cv::morphologyEx(fp, fp, cv::MORPH_CLOSE, cv::getStructuringElement(cv::MORPH_ELLIPSE, {3, 3}));
  fp.convertTo(fp, CV_32F, 1.0 / 255);
  return fp;
}

}  // namespace

RenderedSample render_sample(const std::string& category, const std::string& defect_type, cv::Size canvas,
                             uint64_t seed) {
  const CategorySpec& spec = find_spec(category);
  const DefectSpec* defect = nullptr;
  for (const auto& d : spec.defects)
    if (d.name == defect_type) defect = &d;
  if (!defect && defect_type != data::kGoodType)
    throw Error("synth: category '" + category + "' has no defect type '" + defect_type + "'");
  // 1. independent streams: scene, defect, sensor noise
  Rng root(seed);
  Rng scene_rng = root.fork(1), defect_rng = root.fork(2), noise_rng = root.fork(3);
  const Rng scene_start = scene_rng;
  Scene scene = spec.render(scene_rng, canvas, {});
  cv::Mat image = scene.image.clone(), mask = cv::Mat::zeros(canvas, CV_8U);
  // 2. the defect; redrawn in the rare case that it lands almost outside the object
  const int min_pixels = std::max(4, canvas.area() / 4000);
  for (int attempt = 0; defect && attempt < 16; ++attempt) {
    cv::Mat footprint;
    if (defect->kind == DefectKind::Variant) {
      Rng again = scene_start;
      image = spec.render(again, canvas, draw_variant(defect->name, defect_rng)).image;
      footprint = variant_footprint(scene.image, image);
    } else {
      image = scene.image.clone();
      footprint = paint_defect(defect->kind, scene, spec.style, defect_rng, image);
    }
    mask = footprint > 0.35f;
    if (cv::countNonZero(mask) >= min_pixels) break;
  }
  if (defect && cv::countNonZero(mask) == 0)
    throw Error("synth: could not place a '" + defect_type + "' defect on " + category,
                "this is a generator bug; try another --seed");
  // 3. the same sensor noise on the clean and the defective image
  RenderedSample out;
  Rng noise_copy = noise_rng;
  cv::Mat clean = scene.image.clone();
  add_sensor_noise(clean, noise_copy, spec.sensor_noise, spec.colour);
  add_sensor_noise(image, noise_rng, spec.sensor_noise, spec.colour);
  out.clean = to_8u(clean, spec.colour);
  out.image = to_8u(image, spec.colour);
  out.mask = mask;
  return out;
}

void write_image(const std::string& path, const cv::Mat& image) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  const bool jpg = ext == ".jpg";
  std::vector<uchar> buf;
  const std::vector<int> params =
      jpg ? std::vector<int>{cv::IMWRITE_JPEG_QUALITY, 95} : std::vector<int>{cv::IMWRITE_PNG_COMPRESSION, 3};
  if (!cv::imencode(jpg ? ".jpg" : ".png", image, buf, params)) throw Error("synth: cannot encode " + path);
  io::write_file_atomic(path, std::string(buf.begin(), buf.end()));
}

// --- counts --------------------------------------------------------------------

int SynthSplitCounts::total_defects() const {
  int n = 0;
  for (int d : defects) n += d;
  return n;
}

SynthSplitCounts split_counts(int per_category, int n_types) {
  if (n_types < 1 || per_category < n_types + 2)
    throw Error("synth: cannot split " + std::to_string(per_category) + " images over " + std::to_string(n_types) +
                    " defect types",
                "per category, at least one image per defect type plus one train and one test "
                "good image are needed");
  // 1. the three groups: 23.5% defects (MVTec-AD overall), 16.5% test good, the rest train
  SynthSplitCounts c;
  const int defects = std::max(n_types, static_cast<int>(std::lround(0.235 * per_category)));
  c.test_good = std::max(1, static_cast<int>(std::lround(0.165 * per_category)));
  c.train_good = per_category - defects - c.test_good;
  if (c.train_good < 1) {  // only for tiny per_category with many types
    c.test_good -= 1 - c.train_good;
    c.train_good = 1;
  }
  // 2. one image per type, the rest by weights n, n-1, ..., 1 with largest remainders;
  // ties go to the more frequent type, so the counts never increase along the list.
  c.defects.assign(static_cast<size_t>(n_types), 1);
  const int rest = defects - n_types;
  const double wsum = n_types * (n_types + 1) / 2.0;
  std::vector<std::pair<double, int>> remainders;
  int given = 0;
  for (int i = 0; i < n_types; ++i) {
    const double share = rest * (n_types - i) / wsum;
    const int whole = static_cast<int>(std::floor(share + 1e-9));
    c.defects[static_cast<size_t>(i)] += whole;
    given += whole;
    remainders.emplace_back(-(share - whole), i);
  }
  std::sort(remainders.begin(), remainders.end());
  for (int k = 0; k < rest - given; ++k) c.defects[static_cast<size_t>(remainders[static_cast<size_t>(k)].second)] += 1;
  return c;
}

int SynthSummary::total_images() const {
  int n = 0;
  for (const auto& [cat, k] : train_good) n += k;
  for (const auto& [cat, k] : test_good) n += k;
  return n + total_anomalous();
}

int SynthSummary::total_anomalous() const {
  int n = 0;
  for (const auto& [cat, types] : test_defects)
    for (const auto& [type, k] : types) n += k;
  return n;
}

const std::vector<SynthCategoryInfo>& synth_categories() {
  static const std::vector<SynthCategoryInfo> infos = [] {
    std::vector<SynthCategoryInfo> v;
    for (const auto& s : category_specs()) {
      SynthCategoryInfo info{s.name, s.is_texture, s.colour, {}};
      for (const auto& d : s.defects) info.defect_types.push_back(d.name);
      v.push_back(std::move(info));
    }
    return v;
  }();
  return infos;
}

// --- writing -------------------------------------------------------------------
std::vector<std::string> category_names() {
  std::vector<std::string> out;
  for (const auto& c : synth_categories()) out.push_back(c.name);
  return out;
}

std::vector<std::string> defect_type_names() {
  std::set<std::string> all;
  for (const auto& c : synth_categories()) all.insert(c.defect_types.begin(), c.defect_types.end());
  return {all.begin(), all.end()};
}

namespace {

std::string known_names() {
  std::string s;
  for (const auto& c : synth_categories()) s += (s.empty() ? "" : ", ") + c.name;
  return s;
}

// The categories to write, after checking every option; throws with the value and a hint.
std::vector<SynthCategoryInfo> validate(const SynthOptions& o) {
  const int known = static_cast<int>(synth_categories().size());
  if (o.out.empty()) throw Error("synth: no output directory given", "pass --out DIR");
  if (o.layout != "mvtec" && o.layout != "visa")
    throw Error("synth: unknown layout '" + o.layout + "'",
                "choose one of: mvtec (MVTec-AD tree), visa (VisA's split_csv/1cls.csv)");
  if (o.size < 32 || o.size > 1024)
    throw Error("synth: image size " + std::to_string(o.size) + " is outside [32, 1024]",
                "use e.g. --size 128 (fast on a CPU) or 256");
  if (o.per_category < 10)
    throw Error("synth: --per-category " + std::to_string(o.per_category) + " is below 10",
                "each category needs train and test images and one image per defect type");
  std::vector<SynthCategoryInfo> chosen;
  if (!o.only.empty()) {
    std::set<std::string> seen;
    for (const auto& name : o.only) {
      auto it = std::find_if(synth_categories().begin(), synth_categories().end(),
                             [&](const SynthCategoryInfo& c) { return c.name == name; });
      if (it == synth_categories().end())
        throw Error("synth: unknown category '" + name + "'", "known categories: " + known_names());
      if (seen.insert(name).second) chosen.push_back(*it);
    }
    return chosen;
  }
  if (o.categories < 1 || o.categories > known)
    throw Error(
        "synth: --categories " + std::to_string(o.categories) + " is outside [1, " + std::to_string(known) + "]",
        "the generator knows " + std::to_string(known) + " categories: " + known_names());
  return {synth_categories().begin(), synth_categories().begin() + o.categories};
}

void prepare_root(const SynthOptions& o, const std::vector<SynthCategoryInfo>& cats) {
  const fs::path root(o.out);
  std::error_code ec;
  if (fs::exists(root, ec)) {
    if (!fs::is_directory(root, ec))
      throw Error("synth: output path '" + o.out + "' exists and is not a directory", "choose another --out");
    if (!fs::is_empty(root, ec) && !o.overwrite)
      throw Error("synth: output directory '" + o.out + "' is not empty",
                  "choose a new --out, or pass --overwrite to replace the generated categories");
    for (const auto& c : cats) fs::remove_all(root / c.name, ec);  // no stale files remain
  }
  fs::create_directories(root, ec);
  if (ec) throw Error("synth: cannot create '" + o.out + "': " + ec.message(), "check the path and permissions");
}

std::string stem(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%03d", i);
  return buf;
}

// Writes `n` images of one folder (good when `defect` is "good"), masks for defects.
void write_folder(const SynthOptions& o, const std::string& cat, const std::string& split, const std::string& defect,
                  int n) {
  const fs::path root(o.out);
  const fs::path dir = root / cat / split / defect;
  const fs::path mask_dir = root / cat / "ground_truth" / defect;
  const bool good = defect == data::kGoodType;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!good) fs::create_directories(mask_dir, ec);
  if (ec) throw Error("synth: cannot create " + dir.string() + ": " + ec.message());
  for (int i = 0; i < n; ++i) {
    const uint64_t seed = sample_seed(o.seed, cat, split + "/" + defect, i);
    const RenderedSample s = render_sample(cat, defect, o.size, seed);
    write_image((dir / (stem(i) + ".png")).string(), s.image);
    if (!good) write_image((mask_dir / (stem(i) + "_mask.png")).string(), s.mask);
  }
}

// One category's MVTec-AD folders: train/good, test/good, test/<defect> and their masks.
void write_mvtec_category(const SynthOptions& o, const SynthCategoryInfo& c, const SynthSplitCounts& n) {
  write_folder(o, c.name, "train", data::kGoodType, n.train_good);
  write_folder(o, c.name, "test", data::kGoodType, n.test_good);
  for (size_t t = 0; t < c.defect_types.size(); ++t) write_folder(o, c.name, "test", c.defect_types[t], n.defects[t]);
}

const char* layout_description(const std::string& layout) {
  if (layout == "visa")
    return "Layout as VisA: split_csv/1cls.csv (object,split,label,image,mask),\n"
           "<object>/Data/Images/{Normal,Anomaly}/NNNN.JPG (4:3 colour),\n"
           "<object>/Data/Masks/Anomaly/NNNN.png (0/255).\n\n";
  return "Layout as MVTec-AD: <category>/train/good, <category>/test/<defect>,\n"
         "<category>/ground_truth/<defect>/<stem>_mask.png (0/255).\n\n";
}

void write_metadata(const SynthOptions& o, const std::vector<SynthCategoryInfo>& cats, const SynthSummary& sum) {
  using nlohmann::json;
  json j;
  j["format"] = "lriad-synth";
  j["format_version"] = 1;
  j["options"] = {{"categories", static_cast<int>(cats.size())},
                  {"per_category", o.per_category},
                  {"size", o.size},
                  {"seed", o.seed}};
  if (o.layout != "mvtec") j["options"]["layout"] = o.layout;  // absent = mvtec, as files before it
  for (const auto& c : cats) {
    json jc = {{"name", c.name},
               {"is_texture", c.is_texture},
               {"color", c.colour},  // the file's key since its first version
               {"defect_types", c.defect_types},
               {"train_good", sum.train_good.at(c.name)},
               {"test_good", sum.test_good.at(c.name)},
               {"test_defects", sum.test_defects.at(c.name)}};
    j["categories"].push_back(jc);
  }
  j["total_images"] = sum.total_images();
  j["total_anomalous"] = sum.total_anomalous();
  const fs::path root(o.out);
  io::write_file_atomic((root / "synth.json").string(), j.dump(2) + "\n");
  std::ostringstream readme;
  readme << "Synthetic industrial anomaly dataset written by lriad synth (procedural, no real data).\n"
         << layout_description(o.layout) << "seed: " << o.seed << "\nsize: " << o.size
         << "\nper_category: " << o.per_category << "\ncategories:";
  for (const auto& c : cats) readme << " " << c.name;
  readme << "\nimages: " << sum.total_images() << " (" << sum.total_anomalous() << " defective)\n"
         << "Same seed and options reproduce the files byte for byte.\n";
  io::write_file_atomic((root / "README.txt").string(), readme.str());
}

}  // namespace

SynthSummary generate_synthetic(const SynthOptions& options) {
  const std::vector<SynthCategoryInfo> cats = validate(options);
  prepare_root(options, cats);
  const bool visa = options.layout == "visa";
  SynthSummary sum;
  sum.root = options.out;
  std::vector<std::vector<std::string>> csv_rows;  // VisA's split_csv/1cls.csv, one per image
  for (const auto& c : cats) {
    const SynthSplitCounts n = split_counts(options.per_category, static_cast<int>(c.defect_types.size()));
    if (visa)
      write_visa_object(options, c, n, csv_rows);
    else
      write_mvtec_category(options, c, n);
    sum.train_good[c.name] = n.train_good;
    sum.test_good[c.name] = n.test_good;
    for (size_t t = 0; t < c.defect_types.size(); ++t) sum.test_defects[c.name][c.defect_types[t]] = n.defects[t];
  }
  if (visa) write_visa_csv(options.out, cats, csv_rows);
  write_metadata(options, cats, sum);
  return sum;
}

}  // namespace lriad::demo
