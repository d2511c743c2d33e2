// Seeded token sampling with temperature, top-k and top-p.
#include "lriad/model/sampling.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "lriad/io/error.h"

namespace lriad::model {

at::Generator make_generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

torch::Tensor filter_logits(const torch::Tensor& logits, int top_k, double top_p) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  auto out = logits;
  const int64_t V = logits.size(-1);
  if (top_k > 0 && top_k < V) {
    auto kth = std::get<0>(out.topk(top_k, -1)).narrow(-1, top_k - 1, 1);  // (N,1)
    out = out.masked_fill(out < kth, neg_inf);
  }
  if (top_p < 1.0) {
    auto [sorted, order] = out.sort(-1, /*descending=*/true);  // (N,V)
    auto probs = torch::softmax(sorted, -1);
    // Drop a token when the mass before it already reaches top_p (the first token always stays).
    auto before = probs.cumsum(-1) - probs;
    auto drop_sorted = before >= top_p;
    auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
    out = out.masked_fill(drop, neg_inf);
  }
  return out;
}

Draw sample_tokens(const torch::Tensor& logits, const SamplingParams& p, at::Generator& gen, int64_t rows_total,
                   int64_t first_row) {
  auto lf = logits.to(torch::kFloat32);  // (N,V)
  const double temperature = p.greedy ? 1.0 : p.temperature;
  auto logp = torch::log_softmax(lf / temperature, -1);
  Draw d;
  if (p.greedy) {
    d.tokens = lf.argmax(-1);
  } else {
    auto probs = torch::softmax(filter_logits(lf / temperature, p.top_k, p.top_p), -1);
    auto cdf = probs.cumsum(-1);  // (N,V)
    const int64_t N = lf.size(0), drawn = std::max(N, rows_total);
    if (first_row < 0 || first_row + N > drawn) throw Error("sample_tokens: rows outside the rows drawn");
    auto u = torch::rand({drawn, 1}, gen, torch::kFloat32).narrow(0, first_row, N).to(lf.device());  // (N,1)
    u = u * cdf.narrow(-1, lf.size(1) - 1, 1);
    d.tokens = (cdf < u).sum(-1).clamp_max(lf.size(1) - 1);
  }
  d.logprobs = logp.gather(-1, d.tokens.unsqueeze(-1)).squeeze(-1);
  return d;
}

}  // namespace lriad::model
