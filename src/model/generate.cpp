// Generation (KV-cached, prefix-shared, or uncached for checking) and completion scoring.
#include "lriad/model/generate.h"

#include "lriad/io/error.h"
#include "lriad/model/precision.h"  // compute_dtype

namespace lriad::model {
namespace {

TokenRows repeat_rows(const TokenRows& rows, int64_t times) {
  TokenRows out;
  out.reserve(rows.size() * size_t(times));
  for (const auto& r : rows)
    for (int64_t g = 0; g < times; ++g) out.push_back(r);
  return out;
}

// Decoding state shared by the cached and uncached paths.
struct Decoding {
  torch::Tensor tokens, mask, logprobs, finished;  // (N,C), (N,C), (N,C), (N)
};

// Runs the prefix through the decoder and returns the logits of its last position (N,V).
// With a cache, the prefix's keys/values are stored and `cache` is sized for `extra` tokens more.
torch::Tensor prefill(Policy& policy, const PrefixBatch& p, KVCache* cache) {
  const int64_t Lp = p.embeds.size(1);
  auto h = policy->decoder->forward(p.embeds, positions_from_valid(p.valid), prefix_lm_mask(p.valid, Lp), cache);
  if (cache) {
    cache->valid.narrow(1, 0, Lp).copy_(p.valid);
    cache->next_pos = p.valid.to(torch::kInt64).sum(1);  // (N)
  }
  return policy->decoder->logits(h.select(1, Lp - 1));  // (N,V)
}

// One cached step: token (N) at the next column -> logits (N,V).
torch::Tensor cached_step(Policy& policy, KVCache& cache, const torch::Tensor& token) {
  const int64_t N = token.size(0), col = cache.length;
  cache.valid.select(1, col).fill_(true);
  auto x = policy->decoder->embed(token.view({N, 1}));                              // (N,1,D)
  auto mask = cache.valid.view({N, 1, 1, cache.capacity()});                        // the unwritten columns are false
  auto h = policy->decoder->forward(x, cache.next_pos.view({N, 1}), mask, &cache);  // (N,1,D)
  cache.next_pos += 1;
  return policy->decoder->logits(h.select(1, 0));
}

// One uncached step: recomputes prefix + tokens[:, :t+1] -> logits (N,V) of the last position.
// The tokens are taken in blocks of kUncachedBlock, the ones not yet drawn masked out: a sequence
// one token longer at every step made every tensor a new size, which glibc's heap could not reuse
// (2 GiB resident for 0.3 GiB in use, B=8 G=8 L=64); a causal row never sees the positions after it.
constexpr int64_t kUncachedBlock = 16;
torch::Tensor uncached_step(Policy& policy, const PrefixBatch& p, const torch::Tensor& tokens, int64_t t) {
  const int64_t N = tokens.size(0), Lp = p.embeds.size(1);
  const int64_t width = std::min(tokens.size(1), (t / kUncachedBlock + 1) * kUncachedBlock);  // >= t+1
  auto done = tokens.narrow(1, 0, width);
  auto x = torch::cat({p.embeds, policy->decoder->embed(done).to(p.embeds.scalar_type())}, 1);
  auto drawn = torch::arange(width, p.valid.options().dtype(torch::kInt64)) <= t;  // (width)
  auto valid = torch::cat({p.valid, drawn.view({1, width}).expand({N, width})}, 1);
  auto h = policy->decoder->forward(x, positions_from_valid(valid), prefix_lm_mask(valid, Lp));
  return policy->decoder->logits(h.select(1, Lp + t));
}

// Replaces the drawn tokens of the rows with words queued (GenerateOptions::fill), with the policy's
// log-probability of each; then records every live row's token and asks `fill` about the rows with
// nothing queued. draw (N), logits (N,V), live (N) bool. One more host copy a step (live and tokens).
void write_fills(Draw& draw, const torch::Tensor& logits, const torch::Tensor& live, const GenerateOptions& o,
                 std::vector<std::vector<int64_t>>& so_far, std::vector<std::vector<int64_t>>& queued) {
  const int64_t N = int64_t(so_far.size());
  auto host = torch::stack({live.to(torch::kInt64), draw.tokens}).to(torch::kCPU);  // (2,N)
  auto h = host.accessor<int64_t, 2>();
  std::vector<int64_t> rows, ids;
  for (int64_t n = 0; n < N; ++n)
    if (h[0][n] && !queued[size_t(n)].empty()) {
      rows.push_back(n);
      ids.push_back(queued[size_t(n)].front());
      queued[size_t(n)].erase(queued[size_t(n)].begin());
      h[1][n] = ids.back();
    }
  if (!rows.empty()) {
    const auto dev = draw.tokens.device();
    const auto r = torch::tensor(rows, torch::kInt64).to(dev), id = torch::tensor(ids, torch::kInt64).to(dev);
    const double temperature = o.sampling.greedy ? 1.0 : o.sampling.temperature;  // as sample_tokens scales
    const auto logp = torch::log_softmax(logits.index_select(0, r).to(torch::kFloat32) / temperature, -1);  // (R,V)
    draw.tokens = draw.tokens.index_put({r}, id);
    draw.logprobs = draw.logprobs.index_put({r}, logp.gather(-1, id.unsqueeze(-1)).squeeze(-1));
  }
  for (int64_t n = 0; n < N; ++n) {
    if (!h[0][n]) continue;
    so_far[size_t(n)].push_back(h[1][n]);
    if (queued[size_t(n)].empty()) queued[size_t(n)] = o.fill(n, so_far[size_t(n)]);
  }
}

}  // namespace

Generation generate(Policy& policy, const torch::Tensor& images, const TokenRows& prompts, const GenerateOptions& o) {
  torch::NoGradGuard no_grad;
  const int64_t B = int64_t(prompts.size()), G = o.group, N = B * G, C = o.max_new_tokens;
  if (G < 1 || C < 1) throw Error("generate: group and max_new_tokens must be >= 1");
  if (o.fill && o.rows_total > N)
    throw Error("generate: fill names rows 0..N-1 of this call, not of a data-parallel batch",
                "fill words into one process's generation");
  const auto dev = policy->device();
  at::Generator gen = make_generator(o.seed);

  // 1) Prefix: encoded once per prompt when shared, else once per completion.
  const bool shared = o.use_cache && o.share_prefix;
  PrefixBatch p = shared ? policy->prefix(images, prompts)
                         : policy->prefix(images.repeat_interleave(G, 0), repeat_rows(prompts, G));
  const int64_t Lp = p.embeds.size(1);
  if (Lp + C > policy->config.max_seq_len)
    throw Error("generate: prefix " + std::to_string(Lp) + " + " + std::to_string(C) +
                    " new tokens exceed model.max_seq_len " + std::to_string(policy->config.max_seq_len),
                "shorten the prompt or max_new_tokens");

  // 2) Prefill (cached paths) or the first full pass.
  KVCache cache;
  torch::Tensor logits;
  if (o.use_cache) {
    const auto& d = *policy->decoder;
    // Keys and values are kept in the dtype the products make them (bf16 under autocast): a cache
    // of another dtype would be cast whole at every step.
    const auto dtype = compute_dtype(dev, p.embeds.scalar_type());
    cache = KVCache(d.layers, p.embeds.size(0), d.kv_heads, Lp + C, d.head_dim, p.embeds.options().dtype(dtype));
    logits = prefill(policy, p, &cache);
    if (shared) {
      cache.repeat_rows(G);
      logits = logits.repeat_interleave(G, 0);
    }
  } else {
    logits = prefill(policy, p, nullptr);
  }

  // 3) Decode until every row has produced eos or C tokens.
  Decoding s{torch::full({N, C}, o.pad_id, torch::TensorOptions(torch::kInt64).device(dev)),
             torch::zeros({N, C}, torch::TensorOptions(torch::kBool).device(dev)),
             torch::zeros({N, C}, torch::TensorOptions(torch::kFloat32).device(dev)),
             torch::zeros({N}, torch::TensorOptions(torch::kBool).device(dev))};
  Generation out;
  std::vector<std::vector<int64_t>> so_far(o.fill ? size_t(N) : 0), queued(so_far.size());  // per row (o.fill)
  for (int64_t t = 0; t < C; ++t) {
    Draw draw = sample_tokens(logits, o.sampling, gen, o.rows_total, o.first_row);
    auto live = s.finished.logical_not();
    if (o.fill) write_fills(draw, logits, live, o, so_far, queued);
    auto token = torch::where(live, draw.tokens, torch::full_like(draw.tokens, o.pad_id));
    s.tokens.select(1, t).copy_(token);
    s.mask.select(1, t).copy_(live);
    s.logprobs.select(1, t).copy_(torch::where(live, draw.logprobs, torch::zeros_like(draw.logprobs)));
    s.finished = s.finished | (token == o.eos_id);
    out.steps = t + 1;
    if (t + 1 == C || s.finished.all().item<bool>()) break;  // the one host sync per step (and write_fills')
    logits = o.use_cache ? cached_step(policy, cache, token) : uncached_step(policy, p, s.tokens, t);
  }
  out.tokens = s.tokens;
  out.mask = s.mask;
  out.logprobs = s.logprobs;
  out.lengths = s.mask.sum(1);
  out.truncated = s.finished.logical_not();
  return out;
}

torch::Tensor completion_logprobs(Policy& policy, const torch::Tensor& images, const TokenRows& prompts,
                                  const torch::Tensor& tokens, const torch::Tensor& mask, double temperature) {
  auto logits = policy->completion_logits(images, prompts, tokens, mask).to(torch::kFloat32);  // (N,C,V)
  auto logp = torch::log_softmax(logits / temperature, -1)
                  .gather(-1, tokens.to(logits.device()).unsqueeze(-1))
                  .squeeze(-1);  // (N,C)
  return logp * mask.to(logp.device()).to(logp.scalar_type());
}

}  // namespace lriad::model
