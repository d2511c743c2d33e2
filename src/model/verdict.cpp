// Verdict probabilities at the answer position and at the decision point (see verdict.h).
#include "lriad/model/verdict.h"

#include <torch/torch.h>

#include <algorithm>
#include <optional>

#include "lriad/text/evidence.h"
#include "lriad/text/prompt.h"

namespace lriad::model {

VerdictIds verdict_ids(const text::Tokenizer& tokenizer) {
  VerdictIds ids;
  const auto normal = tokenizer.encode("normal"), anomalous = tokenizer.encode("anomalous");
  if (normal.empty() || anomalous.empty() || normal[0] == anomalous[0]) return ids;
  ids.answer_open = tokenizer.answer_open();
  ids.normal = normal[0];
  ids.anomalous = anomalous[0];
  return ids;
}

torch::Tensor verdict_probs(const torch::Tensor& logits, const torch::Tensor& tokens, const torch::Tensor& mask,
                            const VerdictIds& ids) {
  const int64_t N = tokens.size(0), C = tokens.size(1);
  auto out = torch::full({N, 2}, -1.0, torch::kFloat);
  if (!ids.ok()) return out;
  const auto tk = tokens.to(torch::kCPU).contiguous();
  const auto mk = mask.to(torch::kCPU).to(torch::kBool).contiguous();
  const int64_t* t = tk.data_ptr<int64_t>();
  const bool* m = mk.data_ptr<bool>();
  std::vector<int64_t> rows, cols;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c + 1 < C; ++c)
      if (t[n * C + c] == ids.answer_open) {
        if (m[n * C + c + 1]) {
          rows.push_back(n);
          cols.push_back(c + 1);
        }
        break;
      }
  if (rows.empty()) return out;
  const auto r = torch::tensor(rows, torch::kInt64), c = torch::tensor(cols, torch::kInt64);
  const auto sel = logits.index({r.to(logits.device()), c.to(logits.device())}).to(torch::kFloat);  // (K,V)
  const auto p = torch::softmax(sel, -1).cpu();
  out.index_put_({r}, p.index_select(1, torch::tensor(std::vector<int64_t>{ids.normal, ids.anomalous})));
  return out;
}

namespace {

// Where a normal and an anomalous chain of `spec` (its category, phrasing and evidence) part: the
// tokens both share, then the normal chain's next token in `normal`. nullopt when they share no
// start or one ends there.
std::optional<std::vector<int64_t>> parting(const text::Tokenizer& tokenizer, text::CotSpec spec,
                                            int64_t* normal_token) {
  spec.anomalous = false;
  const auto normal = tokenizer.encode(text::build_completion(spec));
  spec.anomalous = true;
  spec.defect_type = "scratch";
  const auto anomalous = tokenizer.encode(text::build_completion(spec));
  size_t k = 0;
  while (k < normal.size() && k < anomalous.size() && normal[k] == anomalous[k]) ++k;
  if (k == 0 || k >= normal.size() || k >= anomalous.size()) return std::nullopt;
  *normal_token = normal[k];
  return std::vector<int64_t>(normal.begin(), normal.begin() + std::ptrdiff_t(k));
}

}  // namespace

DecisionPoints decision_points(const text::Tokenizer& tokenizer, const std::vector<std::string>& categories,
                               bool opened) {
  DecisionPoints out;
  if (opened) {
    text::EvidenceFacts f;
    f.ratio = 2.0;
    f.above = true;
    // The findings after the opening do not depend on the category ("x" stands for any): one point
    // serves them all.
    const std::string opening = text::grounded_opening("x", f);
    auto rest = [&](bool anomalous) {  // the completion after the opening, encoded on its own as in SFT
      const std::string full =
          text::build_completion({"x", anomalous, anomalous ? "scratch" : "", std::nullopt, 0, &f});
      return tokenizer.encode(full.substr(opening.size()));
    };
    const auto normal = rest(false), anomalous = rest(true);
    size_t k = 0;  // tokens both share at the start (a lone space piece, with some tokenizers)
    while (k < normal.size() && k < anomalous.size() && normal[k] == anomalous[k]) ++k;
    if (k >= normal.size() || k >= anomalous.size()) return out;
    const std::vector<int64_t> shared(normal.begin(), normal.begin() + std::ptrdiff_t(k));
    for (const auto& category : categories) out[category].push_back(DecisionPoint{shared, normal[k], false});
    return out;
  }
  for (const auto& category : categories)
    for (int v = 0; v < text::kCotVariants; ++v) {
      DecisionPoint d;
      const auto shared = parting(tokenizer, {category, false, "", std::nullopt, v}, &d.normal);
      if (!shared) continue;  // no shared start, or no branch
      d.prefix = *shared;
      auto& list = out[category];
      const bool seen = std::any_of(list.begin(), list.end(), [&](const DecisionPoint& o) {
        return o.prefix == d.prefix && o.normal == d.normal;
      });
      if (!seen) list.push_back(d);
    }
  // Grounded chains: two images' facts (other region, ratio); the tokens both share right before the
  // branch are the marker.
  text::EvidenceFacts f1, f2;
  f1.ratio = 2.0;
  f2.where = text::Region::UpperLeft;
  f2.also = text::Region::Top;
  f2.ratio = 13;
  f1.above = f2.above = true;
  for (const auto& category : categories)
    for (int v = 0; v < text::kCotVariants; ++v) {
      std::vector<int64_t> before[2];
      int64_t normal_token[2] = {-1, -1};
      const text::EvidenceFacts* facts[2] = {&f1, &f2};
      for (int i = 0; i < 2; ++i) {
        const auto shared = parting(tokenizer, {category, false, "", std::nullopt, v, facts[i]}, &normal_token[i]);
        if (!shared) break;
        before[i] = *shared;
      }
      if (normal_token[0] < 0 || normal_token[0] != normal_token[1]) continue;
      size_t n = 0;  // the shared suffix, at most 6 tokens
      while (n < 6 && n < before[0].size() && n < before[1].size() &&
             before[0][before[0].size() - 1 - n] == before[1][before[1].size() - 1 - n])
        ++n;
      if (n < 2) continue;
      DecisionPoint d;
      d.prefix.assign(before[0].end() - std::ptrdiff_t(n), before[0].end());
      d.normal = normal_token[0];
      d.anywhere = true;
      auto& list = out[category];
      const bool seen = std::any_of(list.begin(), list.end(), [&](const DecisionPoint& o) {
        return o.anywhere && o.prefix == d.prefix && o.normal == d.normal;
      });
      if (!seen) list.push_back(d);
    }
  return out;
}

torch::Tensor decision_probs(const torch::Tensor& logits, const torch::Tensor& tokens, const torch::Tensor& mask,
                             const std::vector<std::string>& categories, const DecisionPoints& points,
                             const torch::Tensor& fallback) {
  const int64_t N = tokens.size(0), C = tokens.size(1);
  if (int64_t(categories.size()) != N || fallback.dim() != 2 || fallback.size(0) != N || fallback.size(1) != 2)
    throw std::invalid_argument("decision_probs: need one category and one fallback row (N,2) per row, got " +
                                std::to_string(categories.size()) + " categories, fallback " +
                                c10::str(fallback.sizes()) + " for " + std::to_string(N) + " rows");
  auto out = fallback.to(torch::kCPU).to(torch::kFloat).clone();
  const auto tk = tokens.to(torch::kCPU).contiguous();
  const auto mk = mask.to(torch::kCPU).to(torch::kBool).contiguous();
  const int64_t* t = tk.data_ptr<int64_t>();
  const bool* m = mk.data_ptr<bool>();
  std::vector<int64_t> rows, cols, normal_ids;
  for (int64_t n = 0; n < N; ++n) {
    auto it = points.find(categories[size_t(n)]);
    if (it == points.end()) continue;
    bool found = false;
    for (const auto& d : it->second) {
      const int64_t k = int64_t(d.prefix.size());
      // The prefix at the start, or the marker at its first place; the completion must go on after it.
      for (int64_t start = 0; start + k < C && !found; ++start) {
        if (!d.anywhere && start > 0) break;
        if (!m[n * C + start + k]) break;
        bool match = true;
        for (int64_t c = 0; c < k && match; ++c)
          match = m[n * C + start + c] && t[n * C + start + c] == d.prefix[size_t(c)];
        if (!match) continue;
        rows.push_back(n);
        cols.push_back(start + k);
        normal_ids.push_back(d.normal);
        found = true;
      }
      if (found) break;
    }
  }
  if (rows.empty()) return out;
  const auto r = torch::tensor(rows, torch::kInt64), c = torch::tensor(cols, torch::kInt64);
  const auto sel = logits.index({r.to(logits.device()), c.to(logits.device())}).to(torch::kFloat);  // (K,V)
  const auto p = torch::softmax(sel, -1).cpu();                                                     // (K,V)
  const auto pn = p.gather(1, torch::tensor(normal_ids, torch::kInt64).unsqueeze(1)).squeeze(1);    // (K)
  out.index_put_({r}, torch::stack({pn, 1.0 - pn}, 1));
  return out;
}

std::vector<double> anomaly_scores(const torch::Tensor& probs, double fallback) {
  const auto p = probs.to(torch::kCPU).to(torch::kDouble).contiguous();
  std::vector<double> out(size_t(p.size(0)), fallback);
  const double* d = p.data_ptr<double>();
  for (int64_t n = 0; n < p.size(0); ++n) {
    const double pn = d[2 * n], pa = d[2 * n + 1];
    if (pn >= 0 && pa >= 0 && pn + pa > 0) out[size_t(n)] = pa / (pn + pa);
  }
  return out;
}

}  // namespace lriad::model
