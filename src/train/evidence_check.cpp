// Separation of the training draws by the normal reference's evidence (see evidence_check.h).
#include "lriad/train/evidence_check.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "lriad/train/baseline.h"  // quantile
#include "lriad/train/source.h"

namespace lriad::train {

double share_above(const std::vector<double>& values, double level) {
  if (values.empty()) return 0;
  return double(std::count_if(values.begin(), values.end(), [&](double x) { return x > level; })) / double(values.size());
}

EvidenceCheck check_evidence(const TrainingSource& source, const std::map<std::string, std::vector<double>>& normal_peaks,
                             const std::function<torch::Tensor(const TrainItem&)>& input, int steps, int batch, double q) {
  torch::NoGradGuard no_grad;
  EvidenceCheck check;
  check.quantile = q;
  // 1. The normal level of each category, from its normal images.
  for (const auto& [name, peaks] : normal_peaks) {
    if (peaks.empty()) continue;
    auto& c = check.categories[name];
    c.normals = peaks.size();
    c.level = quantile(peaks, q);
  }
  // 2. The peak of every synthetic anomaly among the draws, against the bank training compares it with.
  for (int step = 0; step < steps; ++step)
    for (int i = 0; i < batch; ++i) {
      const TrainItem it = source.draw(uint64_t(step), i);
      auto c = check.categories.find(it.category);
      if (!it.anomalous || c == check.categories.end()) continue;
      c->second.anomaly_peaks[it.defect_type].push_back(evidence_peak(it.input.defined() ? it.input : input(it)));
    }
  // 3. The share of each kind above the level.
  int64_t visible = 0, total = 0;
  for (auto& [name, c] : check.categories) {
    std::vector<double> all;
    for (const auto& [kind, peaks] : c.anomaly_peaks) {
      c.visible_by_kind[kind] = share_above(peaks, c.level);
      all.insert(all.end(), peaks.begin(), peaks.end());
    }
    c.visible = share_above(all, c.level);
    visible += std::llround(c.visible * double(all.size()));
    total += int64_t(all.size());
  }
  check.visible = total ? double(visible) / double(total) : 0;
  return check;
}

std::vector<std::string> describe(const EvidenceCheck& check) {
  std::vector<std::string> lines;
  for (const auto& [name, c] : check.categories) {
    std::string kinds;
    for (const auto& [kind, share] : c.visible_by_kind) kinds += fmt::format("{}{} {:.0f}%", kinds.empty() ? "" : ", ", kind, 100 * share);
    lines.push_back(fmt::format("{}: normal images peak at {:.2f} or less ({:.0f}% of {}); synthetic anomalies above that: "
                                "{:.0f}% ({})",
                                name, c.level, 100 * check.quantile, c.normals, 100 * c.visible, kinds));
  }
  return lines;
}

}  // namespace lriad::train
