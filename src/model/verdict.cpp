// Verdict probabilities at the answer position (see verdict.h).
#include "lriad/model/verdict.h"

#include <torch/torch.h>

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
