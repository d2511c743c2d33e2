// The evidence-only baseline's thresholds (see baseline.h).
#include "lriad/train/baseline.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "lriad/model/policy_input.h"
#include "lriad/train/checkpoint.h"
#include "lriad/train/source.h"

namespace lriad::train {

double quantile(std::vector<double> values, double q) {
  if (values.empty()) throw Error("quantile of an empty list");
  if (!(q >= 0 && q <= 1)) throw Error("quantile q = " + std::to_string(q) + " is outside [0, 1]");
  std::sort(values.begin(), values.end());
  const double h = double(values.size() - 1) * q;
  const size_t lo = size_t(std::floor(h)), hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (h - double(lo)) * (values[hi] - values[lo]);
}

double BaselineThresholds::threshold(const std::string& category) const {
  auto it = categories.find(category);
  return it == categories.end() ? pooled : it->second.threshold;
}

std::optional<double> BaselineThresholds::level(const std::string& category) const {
  if (!usable() || !(threshold(category) > 0)) return std::nullopt;
  return threshold(category);
}

BaselineThresholds fit_thresholds(const std::map<std::string, std::vector<double>>& held_out,
                                  const std::map<std::string, std::vector<double>>& training,
                                  const std::vector<std::string>& categories, double q) {
  BaselineThresholds t;
  t.q = q;
  std::map<std::string, std::vector<double>> peaks = held_out;
  for (const auto& [cat, p] : training) peaks[cat].insert(peaks[cat].end(), p.begin(), p.end());
  std::vector<double> all;
  for (const auto& [cat, p] : peaks) all.insert(all.end(), p.begin(), p.end());
  t.n_pooled = int64_t(all.size());
  t.pooled = all.empty() ? std::numeric_limits<double>::quiet_NaN() : quantile(all, q);
  for (const auto& cat : categories) {
    auto& c = t.categories[cat];
    auto it = peaks.find(cat);
    if (it != peaks.end()) c.peaks = it->second;
    auto h = held_out.find(cat);
    c.held_out = h == held_out.end() ? 0 : int64_t(h->second.size());
    c.pooled = c.peaks.empty();
    c.threshold = c.pooled ? t.pooled : quantile(c.peaks, q);
  }
  return t;
}

namespace {

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
double number_or_nan(const nlohmann::json& v) {
  return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
}

}  // namespace

nlohmann::json to_json(const BaselineThresholds& t) {
  nlohmann::json cats = nlohmann::json::object();
  for (const auto& [name, c] : t.categories)
    cats[name] = {{"threshold", number_or_null(c.threshold)},
                  {"q", t.q},
                  {"n_normals", c.peaks.size()},
                  {"n_held_out", c.held_out},
                  {"pooled", c.pooled},
                  {"peaks", c.peaks}};
  return {{"format", kBaselineFormat},
          {"format_version", kBaselineFormatVersion},
          {"method",
           "peak of the normal reference's deviation map; threshold = q-quantile (linear, as numpy's default) "
           "of normal training images' peaks per category, each compared with a bank it is not in (the "
           "held-out ones, the first n_held_out peaks, with both; the others with the other half's), "
           "pooled over all categories for one without peaks"},
          {"q", t.q},
          {"pooled", {{"threshold", number_or_null(t.pooled)}, {"n_normals", t.n_pooled}}},
          {"categories", cats}};
}

BaselineThresholds thresholds_from_json(const nlohmann::json& j, const std::string& source) {
  try {
    if (j.at("format").get<std::string>() != kBaselineFormat)
      throw Error(source + " is not a baseline file (format " + j.at("format").dump() + ")");
    const int version = j.at("format_version").get<int>();
    if (version < 1 || version > kBaselineFormatVersion)
      throw Error(source + " has format_version " + std::to_string(version) + ", this lriad reads 1 to " +
                      std::to_string(kBaselineFormatVersion),
                  "delete it: lriad eval rebuilds the thresholds from the run's config");
    BaselineThresholds t;
    t.with_training = version >= 2;  // version 1: the held-out normals' peaks only
    t.q = j.at("q").get<double>();
    t.pooled = number_or_nan(j.at("pooled").at("threshold"));
    t.n_pooled = j.at("pooled").at("n_normals").get<int64_t>();
    for (const auto& [name, c] : j.at("categories").items()) {
      auto& out = t.categories[name];
      out.threshold = number_or_nan(c.at("threshold"));
      out.pooled = c.at("pooled").get<bool>();
      out.peaks = c.at("peaks").get<std::vector<double>>();
      out.held_out = version >= 2 ? c.at("n_held_out").get<int64_t>() : int64_t(out.peaks.size());
    }
    return t;
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + " is damaged: " + e.what(),
                "delete it: lriad eval rebuilds the thresholds from the run's config");
  }
}

void save_baseline(const BaselineThresholds& t, const std::string& path) {
  io::write_file_atomic(path, to_json(t).dump(2) + "\n");
}

BaselineThresholds load_baseline(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path, "check permissions");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + " is not valid JSON: " + e.what(),
                "delete it: lriad eval rebuilds the thresholds from the run's config");
  }
  return thresholds_from_json(j, path);
}

double evidence_peak(const torch::Tensor& input) {
  if (input.dim() != 3 || input.size(0) != 4)
    throw Error("evidence_peak: expected a (4,S,S) policy input with the deviation map, got " +
                std::to_string(input.dim()) + " dimensions");
  return input[3].max().item<double>();
}

BaselineThresholds fit_baseline(const TrainingSource& source, const reference::NormalReference& reference, double q,
                                const std::map<std::string, std::vector<double>>* training) {
  const auto t0 = std::chrono::steady_clock::now();
  auto peak = [&](const TrainItem& item, int bank) {
    return evidence_peak(model::policy_input(item.image, item.category, bank, source.config().model, &reference));
  };
  std::map<std::string, std::vector<double>> held_out, made;
  for (const auto& item : source.validation())  // as a test image: in neither bank, both compared
    if (!item.anomalous) held_out[item.category].push_back(peak(item, reference::NormalReference::kBothBanks));
  if (!training) {  // as training makes their input: against the other half's bank
    for (const auto& item : source.normal_items()) made[item.category].push_back(peak(item, item.reference_bank));
    training = &made;
  }
  auto t = fit_thresholds(held_out, *training, source.categories(), q);
  int64_t n_held_out = 0;
  for (const auto& [cat, c] : t.categories) n_held_out += c.held_out;
  spdlog::info("evidence-only baseline: thresholds from {} normal training images ({} held out) in {:.1f} s",
               t.n_pooled, n_held_out, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return t;
}

BaselineThresholds run_baseline(const std::string& run_dir, const RunConfig& config,
                                const reference::NormalReference& reference) {
  const std::string path = RunFiles{run_dir}.baseline();
  if (io::is_file(path)) return load_baseline(path);
  spdlog::info(
      "{} has no baseline.json (made before it): rebuilding the thresholds from the normal images of its config "
      "(data {}, seed {})",
      run_dir, config.data.root, config.seed);
  return fit_baseline(TrainingSource(config), reference, kBaselineQuantile);
}

}  // namespace lriad::train
