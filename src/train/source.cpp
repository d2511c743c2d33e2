#include "lriad/train/source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "lriad/anomaly/anomaly.h"
#include "lriad/data/dataset.h"
#include "lriad/data/image_io.h"
#include "lriad/io/csv.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "lriad/model/policy_input.h"
#include "lriad/util/rng.h"

namespace lriad::train {

namespace {

using util::mix64;
// Four values mixed into one seed (the training draws' streams: seed, domain, category, step).
uint64_t mix(uint64_t a, uint64_t b, uint64_t c, uint64_t d) { return mix64(mix64(mix64(mix64(a) ^ b) ^ c) ^ d); }
enum Domain : uint64_t { kDraw = 1, kValidation = 2, kTestShare = 3, kHoldout = 4 };

double uniform01(uint64_t x) { return util::unit_from_bits(mix64(x)); }

std::string kind_word(anomaly::AnomalyKind k) {
  anomaly::Anomaly a;
  a.kind = k;
  return a.type_name();
}

// Decoded and kept at the work side; model::model_side_image reduces it later where the category
// is not kept there (the same pixels as reducing the decoded file at once, as eval does).
// `photo`, when given: the decoded file's size.
cv::Mat load_resized(const std::string& path, const ModelConfig& model, bool skip_bad, bool* ok,
                     cv::Size* photo = nullptr) {
  const cv::Mat image =
      data::read_image_or_skip(path, skip_bad, "fix or remove the file, or set data.skip_bad_images=true");
  *ok = !image.empty();
  if (photo) *photo = image.size();
  return *ok ? model::model_side_image(image, /*keep_work_side=*/true, model) : cv::Mat();
}

}  // namespace

std::string TrainItem::cls() const { return anomalous ? text::canonical_defect_type(defect_type) : data::kGoodType; }

data::Dataset list_training_dataset(const DataConfig& dc) {
  data::LoadOptions load;
  load.categories = dc.categories;
  load.folder_test_fraction = dc.folder_test_fraction;
  load.folder_seed = dc.folder_seed;
  return data::load_dataset(data::parse_format(dc.format), dc.root, load);
}

TrainingSource::TrainingSource(const RunConfig& config) : config_(config) {
  // 1. the dataset and its defective share (the focal reward's class weights)
  const auto& dc = config.data;
  const data::Dataset ds = list_training_dataset(dc);
  for (const auto& w : ds.warnings) spdlog::warn("{}", w);
  categories_ = ds.categories;
  size_t defective = 0, all = 0;
  for (const auto& smp : ds.samples) {
    if (std::find(categories_.begin(), categories_.end(), smp.category) == categories_.end()) continue;
    ++all;
    defective += smp.label == data::Label::Anomalous;
  }
  anomaly_share_ = all ? double(defective) / double(all) : 0.0;
  // 2. the synthetic anomalies' settings, 3. the normal images (some held out), 4. the labelled test
  // share, 5. validation, 6. the classes' expected shares
  read_anomaly_settings();
  // Validation takes the same number of images from every category (half of val_size are
  // normal), so that a run over many categories validates them all.
  const size_t per_category =
      categories_.empty()
          ? 0
          : (size_t(std::max(0, config.train.val_size)) / 2 + categories_.size() - 1) / categories_.size();
  const auto held_out = read_normals(ds, per_category);
  if (dc.train_from_test > 0) take_from_test(ds);
  make_validation(held_out, per_category);
  estimate_prior();
}

void TrainingSource::read_anomaly_settings() {
  const auto& dc = config_.data;
  {
    anomaly::AnomalyParams p;  // validated here, once, with the config's key names in the message
    p.scale_min = float(dc.anomaly_scale_min);
    p.scale_max = float(dc.anomaly_scale_max);
    p.contrast_min = float(dc.anomaly_contrast_min);
    p.contrast_max = float(dc.anomaly_contrast_max);
    p.min_visible = float(dc.anomaly_min_visible);
    try {
      p.validate();
    } catch (const Error& e) {
      throw Error(std::string("data.anomaly_*: ") + e.what(), "check data.anomaly_scale_* and data.anomaly_contrast_*");
    }
  }
  for (const auto& [name, weight] : dc.anomaly_mix) {
    const auto kind = anomaly::parse_anomaly_kind(name);
    if (!kind) throw Error("data.anomaly_mix: unknown anomaly kind '" + name + "'", "see lriad/anomaly/anomaly.h");
    if (weight > 0) mix_.emplace_back(int(*kind), weight);
  }
  if (dc.anomaly_ratio > 0 && mix_.empty())
    throw Error("data.anomaly_mix gives every kind weight 0 but data.anomaly_ratio > 0", "give some kind a weight");
}

// The normal training images of each category, read at the side they are compared at; the held-out
// share (per category, at most per_category) is returned for validation.
std::vector<std::vector<TrainingSource::Normal>> TrainingSource::read_normals(const data::Dataset& ds,
                                                                              size_t per_category) {
  const auto& config = config_;
  const auto& dc = config.data;
  // Normal training images per category; a seeded share is held out for validation.
  size_t skipped = 0;
  std::vector<std::vector<Normal>> held_out(categories_.size());
  for (size_t ci = 0; ci < categories_.size(); ++ci) {
    const std::string& cat = categories_[ci];
    std::vector<data::Sample> train;
    for (const auto& s : ds.select(cat, data::Split::Train))
      if (s.label == data::Label::Normal) train.push_back(s);
    std::vector<size_t> order(train.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(mix(config.seed, kHoldout, util::hash_string(cat, util::kDrawHashBasis), 0));
    std::shuffle(order.begin(), order.end(), rng);
    size_t hold = train.size() >= 4 ? std::max<size_t>(1, size_t(dc.val_fraction * double(train.size()) + 0.5)) : 0;
    if (dc.val_fraction <= 0) hold = 0;
    hold = std::min(hold, per_category);
    for (size_t k = 0; k < order.size(); ++k) {
      const auto& s = train[order[k]];
      bool ok = true;
      cv::Size photo;
      cv::Mat img = load_resized(s.image_path, config.model, dc.skip_bad_images, &ok, &photo);
      if (!ok) {
        ++skipped;
        continue;
      }
      (k < hold ? held_out[ci] : normals_).push_back({img, cat, s.image_path, 0, photo});
    }
  }
  if (normals_.empty())
    throw Error("no normal training images in " + dc.root, "check data.root, data.format and data.categories");
  // The categories the reference compares finely (parts on a plain background, and textures with
  // model.reference_fine_textures; reference/reference.h, the same test) stay at the fine side: every
  // other category goes back to image_size, so its synthetic anomalies are drawn at the side its
  // deviation map is made at and stay visible in it.
  for (size_t ci = 0; ci < categories_.size(); ++ci) {
    std::vector<cv::Mat*> all;
    for (auto& n : normals_)
      if (n.category == categories_[ci]) all.push_back(&n.image);
    for (auto& n : held_out[ci]) all.push_back(&n.image);
    std::vector<cv::Mat> images;
    for (auto* m : all) images.push_back(*m);
    if (model::keeps_work_side(images, config.model))
      work_side_.insert(categories_[ci]);
    else if (config.model.work_size() != config.model.image_size)
      for (auto* m : all) *m = model::model_side_image(*m, false, config.model);
  }
  for (size_t i = 0; i < normals_.size(); ++i) {
    auto& list = by_category_[normals_[i].category];
    normals_[i].half = int(list.size() % 2);
    list.push_back(i);
  }
  if (skipped) spdlog::warn("{} unreadable training images skipped", skipped);
  return held_out;
}

// The data.train_from_test share of the labelled test split, stratified by category and defect type.
void TrainingSource::take_from_test(const data::Dataset& ds) {
  const auto& config = config_;
  const auto& dc = config.data;
  std::map<std::pair<std::string, std::string>, std::vector<data::Sample>> strata;
  for (const auto& s : ds.samples)
    if (s.split == data::Split::Test) strata[{s.category, s.defect_type}].push_back(s);
  for (auto& [key, samples] : strata) {
    std::mt19937_64 rng(
        mix(config.seed, kTestShare, util::hash_string(key.first + "/" + key.second, util::kDrawHashBasis), 0));
    std::shuffle(samples.begin(), samples.end(), rng);
    const size_t take = size_t(dc.train_from_test * double(samples.size()) + 0.5);
    for (size_t k = 0; k < take && k < samples.size(); ++k) {
      const auto& s = samples[k];
      bool ok = true;
      cv::Mat img = load_resized(s.image_path, config.model, dc.skip_bad_images, &ok);
      if (!ok) continue;
      TrainItem t;
      t.image = keeps_work_side(s.category) ? img : model::model_side_image(img, false, config.model);
      t.category = s.category;
      t.anomalous = s.label == data::Label::Anomalous;
      t.defect_type = s.defect_type;
      t.source = s.image_path;
      test_items_.push_back(t);
      from_test_.samples.push_back(s);
    }
  }
}

// Validation: each held-out normal, and the same image with a synthetic anomaly, round-robin over
// the categories.
void TrainingSource::make_validation(const std::vector<std::vector<Normal>>& held_out, size_t per_category) {
  const auto& config = config_;
  uint64_t vi = 0;
  for (size_t round = 0; round < per_category; ++round)
    for (const auto& cat_held : held_out) {
      if (round >= cat_held.size() || int(validation_.size()) >= config.train.val_size) continue;
      const Normal& h = cat_held[round];
      TrainItem n;
      n.image = h.image;
      n.category = h.category;
      n.source = h.path;
      n.reference_bank = reference::NormalReference::kBothBanks;  // held out: in neither bank, as a test image
      validation_.push_back(n);
      if (int(validation_.size()) < config.train.val_size && !mix_.empty()) {
        const uint64_t seed = mix(config.seed, kValidation, vi++, 0);
        validation_.push_back(with_anomaly(h, seed));
        validation_.back().reference_bank = reference::NormalReference::kBothBanks;
        validation_anomalies_.push_back({h, seed});
      }
    }
}

// The expected share of each class among draws (for static weights and the logs).
void TrainingSource::estimate_prior() {
  const auto& dc = config_.data;
  const double real = double(test_items_.size()) / double(test_items_.size() + normals_.size());
  prior_[data::kGoodType] += (1 - real) * (1 - dc.anomaly_ratio);
  double mix_total = 0;
  for (const auto& [k, w] : mix_) mix_total += w;
  for (const auto& [k, w] : mix_)
    prior_[text::canonical_defect_type(kind_word(anomaly::AnomalyKind(k)))] +=
        (1 - real) * dc.anomaly_ratio * w / mix_total;
  for (const auto& t : test_items_) prior_[t.cls()] += real / double(test_items_.size());
}

std::pair<std::map<std::string, double>, std::string> TrainingSource::defect_shares() const {
  std::map<std::string, double> out;
  for (const auto& t : test_items_)
    if (t.anomalous) out[t.cls()] += 1;
  if (!out.empty()) {
    // The synthetic kinds are drawn too: one no label names counts as an average real class.
    double mean = 0;
    for (const auto& [c, n] : out) mean += n / double(out.size());
    for (const auto& [k, w] : mix_) out.emplace(text::canonical_defect_type(kind_word(anomaly::AnomalyKind(k))), mean);
    return {out,
            "the labelled test images training takes (data.train_from_test; synthetic kinds no label names at "
            "their average)"};
  }
  for (const auto& [k, w] : mix_) out[text::canonical_defect_type(kind_word(anomaly::AnomalyKind(k)))] += w;
  return {out, "the synthetic mix (data.anomaly_mix): no labelled defects to count"};
}

bool evidence_shows(const torch::Tensor& input, const cv::Mat& footprint, double level) {
  const auto map = input[input.size(0) - 1].contiguous();  // (S,S)
  const int S = int(map.size(0));
  if (footprint.empty()) return map.max().item<double>() > level;
  cv::Mat fp;
  cv::resize(footprint, fp, cv::Size(S, S), 0, 0, cv::INTER_AREA);  // any overlap survives as > 0
  cv::dilate(fp > 0, fp, cv::Mat::ones(3, 3, CV_8U));
  const cv::Mat m(S, S, CV_32FC1, const_cast<float*>(map.data_ptr<float>()));
  double peak = 0;
  cv::minMaxLoc(m, nullptr, &peak, nullptr, nullptr, fp);
  return peak > level;
}

TrainItem TrainingSource::as_item(const Normal& n) const {
  TrainItem t;
  t.image = n.image;
  t.category = n.category;
  t.source = n.path;
  t.reference_bank = 1 - n.half;
  return t;
}

std::vector<TrainItem> TrainingSource::normal_items() const {
  std::vector<TrainItem> out;
  for (const auto& n : normals_) out.push_back(as_item(n));
  return out;
}

void TrainingSource::set_evidence_gate(EvidenceGate gate) {
  gate_ = std::move(gate);
  // Validation measures what training teaches: its synthetic anomalies pass the same gate.
  size_t k = 0;
  for (auto& item : validation_) {
    if (!item.anomalous || k >= validation_anomalies_.size()) continue;
    const auto& [base, seed] = validation_anomalies_[k++];
    item = gated(base, seed, reference::NormalReference::kBothBanks);
  }
}

TrainItem TrainingSource::gated(const Normal& base, uint64_t seed, int bank) const {
  if (!gate_) {
    TrainItem t = with_anomaly(base, seed);
    t.reference_bank = bank;
    return t;
  }
  auto level = gate_->level.find(base.category);
  for (int attempt = 0; attempt < gate_->attempts; ++attempt) {
    TrainItem t = with_anomaly(base, attempt ? mix(seed, attempt, 0x6A7E, 0) : seed, attempt);
    t.reference_bank = bank;
    t.input = gate_->input(t, &t.part);  // (4,S,S)
    if (level == gate_->level.end() || evidence_shows(t.input, t.footprint, level->second)) return t;
  }
  TrainItem t = as_item(base);  // the evidence shows none of them: the image is what it was, normal
  t.reference_bank = bank;
  return t;
}

TrainItem TrainingSource::with_anomaly(const Normal& base, uint64_t seed, int attempt) const {
  // Foreign texture from another category with probability donor_other_category.
  const Normal* donor = &base;
  const double u = uniform01(seed ^ 0xD0);
  std::vector<size_t> pool;
  if (u < config_.data.donor_other_category && categories_.size() > 1) {
    for (size_t i = 0; i < normals_.size(); ++i)
      if (normals_[i].category != base.category) pool.push_back(i);
  } else {
    auto it = by_category_.find(base.category);
    if (it != by_category_.end()) pool = it->second;
  }
  if (!pool.empty()) donor = &normals_[pool[mix64(seed ^ 0xD1) % pool.size()]];
  std::map<anomaly::AnomalyKind, double> m;
  for (const auto& [k, w] : mix_) m[anomaly::AnomalyKind(k)] = w;
  anomaly::AnomalyParams params;
  params.scale_min = float(config_.data.anomaly_scale_min);
  params.scale_max = float(config_.data.anomaly_scale_max);
  params.contrast_min = float(config_.data.anomaly_contrast_min);
  params.contrast_max = float(config_.data.anomaly_contrast_max);
  params.min_visible = float(config_.data.anomaly_min_visible);
  if (attempt > 0) {  // a redraw the evidence gate asked for: larger and stronger each time
    const int n = std::max(1, config_.data.evidence_gate_attempts - 1);
    const float f = float(std::min(attempt, n)) / float(n);
    params.contrast_min += f * (params.contrast_max - params.contrast_min) * 0.75f;
    params.scale_min += f * (params.scale_max - params.scale_min) * 0.25f;
  }
  // A donor of another category may be kept at another side (only parts keep the fine one).
  const cv::Mat donor_image =
      donor->image.size() == base.image.size() ? donor->image : data::resize_square(donor->image, base.image.rows);
  const anomaly::Anomaly a = anomaly::make_random_anomaly(base.image, donor_image, m, seed, params);
  TrainItem t;
  t.image = a.image;
  t.category = base.category;
  t.anomalous = true;
  t.defect_type = a.type_name();
  t.region = text::region_of_point(a.cx, a.cy);
  t.footprint = a.footprint;
  t.base = base.image;
  t.source = base.path + "#" + anomaly::to_string(a.kind);
  t.reference_bank = 1 - base.half;
  return t;
}

TrainItem TrainingSource::draw(uint64_t step, int index) const {
  const uint64_t seed = mix(config_.seed, kDraw, step, uint64_t(index));
  const size_t real = test_items_.size();
  const size_t pick = mix64(seed) % (real + normals_.size());
  if (pick < real) return test_items_[pick];
  const Normal& base = normals_[pick - real];
  if (!mix_.empty() && uniform01(seed ^ 0xA0) < config_.data.anomaly_ratio)
    return gated(base, seed ^ 0xA1, 1 - base.half);
  return as_item(base);
}

std::map<std::string, std::array<std::vector<cv::Mat>, 2>> TrainingSource::reference_halves() const {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> out;
  for (const auto& n : normals_) out[n.category][size_t(n.half)].push_back(n.image);
  return out;
}

std::map<std::string, double> TrainingSource::photo_aspects() const {
  std::map<std::string, std::vector<double>> seen;
  for (const auto& n : normals_) {
    auto& a = seen[n.category];
    if (a.size() < 16) a.push_back(double(n.photo.width) / double(n.photo.height));  // decoded: not empty
  }
  std::map<std::string, double> out;
  for (auto& [cat, a] : seen) {
    if (a.empty()) continue;
    std::nth_element(a.begin(), a.begin() + std::ptrdiff_t(a.size() / 2), a.end());
    out[cat] = a[a.size() / 2];
  }
  return out;
}

model::InputRecord TrainingSource::input_record() const {
  model::InputRecord r;
  r.work_side_categories.assign(work_side_.begin(), work_side_.end());
  for (const auto& n : normals_) r.reference_banks[n.path] = 1 - n.half;
  for (const auto& v : validation_)
    if (!v.anomalous) r.reference_banks[v.source] = v.reference_bank;
  return r;
}

std::vector<std::string> TrainingSource::defect_types() const {
  std::set<std::string> out;
  for (auto k : anomaly::all_anomaly_kinds()) out.insert(kind_word(k));
  for (const auto& t : test_items_)
    if (t.anomalous) out.insert(t.defect_type);
  return {out.begin(), out.end()};
}

std::string TrainingSource::describe() const {
  std::ostringstream s;
  s << normals_.size() << " normal training images in " << categories_.size() << " categories, " << validation_.size()
    << " validation items, " << test_items_.size() << " test images used for training";
  return s.str();
}

reference::NormalReference build_normal_reference(const TrainingSource& source, const RunConfig& config) {
  const auto t0 = std::chrono::steady_clock::now();
  reference::NormalReference::Options o;
  o.patch = config.model.reference_patch;
  o.bank_size = config.model.reference_bank;
  o.rotations = config.model.reference_rotations;
  o.align = config.model.reference_align;
  o.shift = config.model.reference_shift;
  o.seed = config.seed;
  o.side = config.model.image_size;
  o.fine_side = config.model.reference_fine_size;
  o.fine_sigma = config.model.reference_fine_sigma;
  o.fine_shift = config.model.reference_fine_shift;
  o.neighbours = config.model.reference_neighbours;
  o.colour = config.model.reference_colour;
  o.region_side = config.model.reference_region_size;
  o.fine_textures = config.model.reference_fine_textures;
  o.scale_quantile = config.model.reference_scale_quantile;
  o.photometric = config.model.reference_photometric;
  o.part_lighting = config.model.reference_part_lighting;
  o.fixed_scenes = config.model.reference_fixed_scenes;
  auto ref = reference::NormalReference::build(source.reference_halves(), o, source.photo_aspects());
  std::string aligned, fine_textures;
  for (const auto& c : ref.categories()) {
    if (!ref.aligned(c) && ref.fine(c)) fine_textures += (fine_textures.empty() ? "" : ", ") + c;
    if (!ref.aligned(c)) continue;
    const std::string fine =
        " (also at " + std::to_string(o.fine_side) + " px" + (ref.polar(c) ? ", ring by ring)" : ")");
    char frame[64] = "";
    if (ref.aspect(c) != 1.0)  // a stretched frame: posed at the photographs' proportions
      std::snprintf(frame, sizeof frame, " (photographs %.2f:1, posed unstretched)", ref.aspect(c));
    aligned += (aligned.empty() ? "" : ", ") + c + (ref.fine(c) ? fine : "") + frame;
  }
  std::string region, scenes;
  for (const auto& c : ref.categories()) {
    if (ref.region(c)) region += (region.empty() ? "" : ", ") + c;
    if (ref.scene(c)) scenes += (scenes.empty() ? "" : ", ") + c;
  }
  spdlog::info(
      "normal reference: {} categories, {} patches of {}x{} per bank{}{}{}, built in {:.1f} s; compared in a canonical "
      "pose: {}{}{}",
      ref.categories().size(), o.bank_size, o.patch, o.patch, o.colour ? " and a colour palette" : "",
      region.empty() ? "" : "; the colour of regions at " + std::to_string(o.region_side) + " px: " + region,
      fine_textures.empty() ? "" : "; textures also at " + std::to_string(o.fine_side) + " px: " + fine_textures,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), aligned.empty() ? "none" : aligned,
      !aligned.empty() && o.part_lighting ? "; parts relit to their normal images' lighting" : "",
      scenes.empty() ? "" : "; one scene at one place in every normal image, also compared by place: " + scenes);
  return ref;
}

void save_train_from_test(const TrainFromTest& t, const std::string& path) {
  std::ostringstream s;
  s << "category,label,defect_type,image\n";
  for (const auto& x : t.samples)
    s << io::csv_field(x.category) << ',' << data::to_string(x.label) << ',' << io::csv_field(x.defect_type) << ','
      << io::csv_field(x.image_path) << '\n';
  io::write_file_atomic(path, s.str());
}

}  // namespace lriad::train
