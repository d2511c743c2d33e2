// Separation of the training draws by the normal reference's evidence (see evidence_check.h).
#include "lriad/train/evidence_check.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "lriad/model/policy_input.h"  // input_facts
#include "lriad/text/defect_family.h"
#include "lriad/text/evidence.h"
#include "lriad/train/baseline.h"  // quantile
#include "lriad/train/source.h"

namespace lriad::train {

double share_above(const std::vector<double>& values, double level) {
  if (values.empty()) return 0;
  return double(std::count_if(values.begin(), values.end(), [&](double x) { return x > level; })) /
         double(values.size());
}

double look_purity(const std::map<std::string, std::map<std::string, int>>& looks) {
  std::map<std::string, std::map<std::string, int>> by_look;  // look -> family -> count
  int total = 0;
  for (const auto& [family, counts] : looks)
    for (const auto& [look, n] : counts) {
      by_look[look][family] += n;
      total += n;
    }
  int right = 0;
  for (const auto& [look, families] : by_look) {
    int best = 0;
    for (const auto& [family, n] : families) best = std::max(best, n);
    right += best;
  }
  return total ? double(right) / double(total) : 0;
}

EvidenceCheck check_evidence(const TrainingSource& source,
                             const std::map<std::string, std::vector<double>>& normal_peaks,
                             const std::function<torch::Tensor(const TrainItem&, reference::MapPart*)>& input,
                             int steps, int batch, double q,
                             const std::function<std::array<cv::Mat, 2>(const TrainItem&)>& masks) {
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
      reference::MapPart part = it.part;
      const torch::Tensor x = it.input.defined() ? it.input : input(it, &part);  // (4,S,S)
      const double peak = evidence_peak(x);
      c->second.anomaly_peaks[it.defect_type].push_back(peak);
      if (peak <= c->second.level) continue;
      const auto family = text::family_of(it.defect_type);
      const auto [absent, colour] = masks ? masks(it) : std::array<cv::Mat, 2>{};
      ++c->second.looks[family ? text::family_word(*family) : it.defect_type]
                       [text::looks_text(model::input_facts(x, c->second.level, part, it.image, absent, colour))];
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
    c.look_purity = look_purity(c.looks);
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
    for (const auto& [kind, share] : c.visible_by_kind)
      kinds += fmt::format("{}{} {:.0f}%", kinds.empty() ? "" : ", ", kind, 100 * share);
    lines.push_back(
        fmt::format("{}: normal images peak at {:.2f} or less ({:.0f}% of {}); synthetic anomalies above that: "
                    "{:.0f}% ({})",
                    name, c.level, 100 * check.quantile, c.normals, 100 * c.visible, kinds));
    if (c.looks.empty()) continue;
    std::string looks;
    for (const auto& [family, counts] : c.looks) {
      int n = 0;
      auto top = counts.begin();
      for (auto it = counts.begin(); it != counts.end(); ++it) {
        n += it->second;
        if (it->second > top->second) top = it;
      }
      looks += fmt::format("{}{} mostly {} ({:.0f}%)", looks.empty() ? "" : "; ", family, top->first,
                           100.0 * top->second / n);
    }
    lines.push_back(
        fmt::format("{}: the look stated of those above it: {}; the family read from the look alone is right "
                    "for {:.0f}% at best",
                    name, looks, 100 * c.look_purity));
  }
  return lines;
}

}  // namespace lriad::train
