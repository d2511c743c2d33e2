// Image-level metrics (scikit-learn definitions).
#include "lriad/eval/metrics.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "lriad/io/error.h"

namespace lriad::eval {
namespace {

double ratio(int64_t a, int64_t b) { return b == 0 ? 0.0 : double(a) / double(b); }

void check_sizes(size_t a, size_t b, const char* what) {
  if (a != b)
    throw Error(std::string("metrics: ") + what + " have " + std::to_string(b) + " entries, labels " +
                std::to_string(a));
}

// Indices sorted by decreasing score.
std::vector<size_t> by_score_desc(const std::vector<double>& scores) {
  std::vector<size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return idx;
}

}  // namespace

Confusion confusion(const std::vector<int>& labels, const std::vector<int>& preds) {
  check_sizes(labels.size(), preds.size(), "predictions");
  Confusion c;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i])
      (preds[i] ? c.tp : c.fn)++;
    else
      (preds[i] ? c.fp : c.tn)++;
  }
  return c;
}

BinaryMetrics binary_metrics(const std::vector<int>& labels, const std::vector<int>& preds,
                             const std::vector<double>& scores) {
  BinaryMetrics m;
  m.cm = confusion(labels, preds);
  const Confusion& c = m.cm;
  m.n = c.n();
  m.n_anomalous = c.tp + c.fn;
  m.n_normal = c.tn + c.fp;
  m.accuracy = ratio(c.tp + c.tn, m.n);
  m.precision = ratio(c.tp, c.tp + c.fp);
  m.recall = ratio(c.tp, c.tp + c.fn);
  m.specificity = ratio(c.tn, c.tn + c.fp);
  m.f1 = m.precision + m.recall == 0 ? 0.0 : 2 * m.precision * m.recall / (m.precision + m.recall);
  if (m.n_anomalous > 0 && m.n_normal > 0)
    m.balanced_accuracy = (m.recall + m.specificity) / 2;
  else if (m.n_anomalous > 0)
    m.balanced_accuracy = m.recall;
  else
    m.balanced_accuracy = m.specificity;
  if (!scores.empty()) {
    m.auroc = auroc(labels, scores);
    m.average_precision = average_precision(labels, scores);
  }
  return m;
}

std::optional<double> auroc(const std::vector<int>& labels, const std::vector<double>& scores) {
  check_sizes(labels.size(), scores.size(), "scores");
  // Mann-Whitney U with average ranks for ties.
  std::vector<size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  std::vector<double> rank(scores.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && scores[idx[j + 1]] == scores[idx[i]]) ++j;
    const double avg = (double(i) + double(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) rank[idx[k]] = avg;
    i = j + 1;
  }
  double pos = 0, rank_sum = 0;
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i]) pos += 1, rank_sum += rank[i];
  const double neg = double(labels.size()) - pos;
  if (pos == 0 || neg == 0) return std::nullopt;
  return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
}

std::optional<double> average_precision(const std::vector<int>& labels, const std::vector<double>& scores) {
  check_sizes(labels.size(), scores.size(), "scores");
  const int64_t positives = std::count_if(labels.begin(), labels.end(), [](int l) { return l != 0; });
  if (positives == 0) return std::nullopt;
  const auto idx = by_score_desc(scores);
  double ap = 0, prev_recall = 0;
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < idx.size(); ++i) {
    (labels[idx[i]] ? tp : fp)++;
    const bool threshold_ends = i + 1 == idx.size() || scores[idx[i + 1]] != scores[idx[i]];
    if (!threshold_ends) continue;
    const double recall = double(tp) / double(positives);
    ap += (recall - prev_recall) * double(tp) / double(tp + fp);
    prev_recall = recall;
  }
  return ap;
}

std::vector<RocPoint> roc_curve(const std::vector<int>& labels, const std::vector<double>& scores) {
  check_sizes(labels.size(), scores.size(), "scores");
  const int64_t pos = std::count_if(labels.begin(), labels.end(), [](int l) { return l != 0; });
  const int64_t neg = int64_t(labels.size()) - pos;
  std::vector<RocPoint> out{{0, 0, std::numeric_limits<double>::infinity()}};
  const auto idx = by_score_desc(scores);
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < idx.size(); ++i) {
    (labels[idx[i]] ? tp : fp)++;
    if (i + 1 < idx.size() && scores[idx[i + 1]] == scores[idx[i]]) continue;
    out.push_back({ratio(fp, neg), ratio(tp, pos), scores[idx[i]]});
  }
  return out;
}

}  // namespace lriad::eval
