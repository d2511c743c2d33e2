// The policy: KV cache parity, padding invariance, prefix sharing, scorer vs generation, sampling.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "fixtures.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>

#include "lriad/anomaly/anomaly.h"
#include "lriad/data/image_io.h"
#include "lriad/reference/patch_distance.h"
#include "lriad/reference/reference.h"
#include "lriad/model/flops.h"
#include "lriad/model/generate.h"
#include "lriad/model/layers.h"
#include "lriad/model/policy.h"
#include "lriad/model/sampling.h"
#include "lriad/model/weights.h"
#include "lriad/model/policy_input.h"
#include "lriad/model/precision.h"
#include "lriad/io/error.h"

using namespace lriad;
using namespace lriad::model;

namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.image_size = 16;
  c.patch_size = 8;  // 4 image tokens
  c.vision_dim = 32;
  c.vision_layers = 1;
  c.vision_heads = 2;
  c.dim = 32;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;  // grouped-query attention
  c.mlp_hidden = 64;
  c.vocab_size = 50;
  c.max_seq_len = 64;
  c.init_std = 0.3;  // peaked logits so that sampling paths are distinguishable
  return c;
}

struct Fixture {
  Policy policy = make_policy(tiny_config(), 1);
  torch::Tensor images = torch::rand({3, 3, 16, 16}, torch::TensorOptions().dtype(torch::kFloat32));
  TokenRows prompts = {{1, 5, 6, 7}, {1, 8}, {1, 9, 10, 11, 12, 13}};  // different lengths: padding
};

GenerateOptions sampled(int group, bool cache, bool share) {
  GenerateOptions o;
  o.group = group;
  o.max_new_tokens = 12;
  o.use_cache = cache;
  o.share_prefix = share;
  o.seed = 42;
  o.eos_id = 2;
  o.pad_id = 0;
  return o;
}

}  // namespace

// Grouped-query attention written out head by head: query head h reads key/value head h / (H/Hkv).
TEST(Layers, GroupedAttentionEqualsEachHeadWrittenOut) {
  torch::manual_seed(3);
  const int64_t B = 2, H = 6, Hkv = 2, T = 5, Tk = 7, hd = 8;
  const auto q = torch::randn({B, H, T, hd}), k = torch::randn({B, Hkv, Tk, hd}), v = torch::randn({B, Hkv, Tk, hd});
  auto full = torch::rand({B, 1, T, Tk}) > 0.4;
  full.select(3, 0).fill_(true);  // every query row may attend somewhere
  auto one = torch::rand({B, 1, 1, Tk}) > 0.4;
  one.select(3, Tk - 1).fill_(true);
  for (const auto& mask : {full, one}) {
    const auto got = attention(q, k, v, mask);  // (B,H,T,hd)
    ASSERT_EQ(got.sizes(), q.sizes());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        const auto kh = k[b][h / (H / Hkv)], vh = v[b][h / (H / Hkv)];    // (Tk,hd)
        auto s = torch::matmul(q[b][h], kh.t()) / std::sqrt(double(hd));  // (T,Tk)
        s = s.masked_fill(mask[b][0].expand({T, Tk}).logical_not(), -1e30);
        const auto want = torch::matmul(torch::softmax(s, -1), vh);  // (T,hd)
        EXPECT_LT((got[b][h] - want).abs().max().item<float>(), 1e-5) << "row " << b << " head " << h;
      }
  }
}

// Rotary positions: a rotation keeps lengths, and the product of a rotated query and key depends
// only on how far apart their positions are.
TEST(Layers, RotaryKeepsNormsAndDependsOnOffsetOnly) {
  torch::manual_seed(4);
  const Rotary rotary(8, 32, 10000.0);
  const auto q = torch::randn({1, 1, 1, 8}), k = torch::randn({1, 1, 1, 8});
  auto at = [&](const torch::Tensor& x, int64_t p) {
    return Rotary::apply(x, rotary.at(torch::full({1, 1}, p, torch::kInt64), x));
  };
  EXPECT_NEAR(at(q, 13).norm().item<double>(), q.norm().item<double>(), 1e-5);
  const double a = (at(q, 3) * at(k, 8)).sum().item<double>(), b = (at(q, 20) * at(k, 25)).sum().item<double>();
  const double c = (at(q, 3) * at(k, 9)).sum().item<double>();
  EXPECT_NEAR(a, b, 1e-4);
  EXPECT_GT(std::abs(a - c), 1e-4);  // another offset, another product
}

TEST(Policy, CachedGenerationMatchesFullRecompute) {
  torch::manual_seed(0);
  Fixture f;
  auto cached = generate(f.policy, f.images, f.prompts, sampled(2, true, false));
  auto full = generate(f.policy, f.images, f.prompts, sampled(2, false, false));
  EXPECT_TRUE(torch::equal(cached.tokens, full.tokens));
  EXPECT_LT((cached.logprobs - full.logprobs).abs().max().item<float>(), 1e-5);
  EXPECT_GT(cached.mask.sum().item<int64_t>(), 6);  // something was generated
}

// The uncached path recomputes the sequence in blocks of 16 tokens with the undrawn ones masked
// out: over 40 tokens (three blocks) it draws what the cache draws.
TEST(Policy, UncachedGenerationAcrossBlocksMatchesTheCache) {
  torch::manual_seed(0);
  Fixture f;
  auto o = sampled(2, true, false);
  o.max_new_tokens = 40;
  o.eos_id = -1;  // every row runs to 40 tokens
  auto cached = generate(f.policy, f.images, f.prompts, o);
  o.use_cache = false;
  auto full = generate(f.policy, f.images, f.prompts, o);
  ASSERT_EQ(full.steps, 40);
  EXPECT_TRUE(torch::equal(cached.tokens, full.tokens));
  EXPECT_LT((cached.logprobs - full.logprobs).abs().max().item<float>(), 1e-5);
}

TEST(Policy, GreedyCachedLogitsMatchFullPassTokenByToken) {
  torch::manual_seed(0);
  Fixture f;
  auto o = sampled(1, true, true);
  o.sampling.greedy = true;
  auto g = generate(f.policy, f.images, f.prompts, o);
  // One full pass over prefix + completion gives the same per-token log-probs.
  torch::NoGradGuard ng;
  auto logits = f.policy->completion_logits(f.images, f.prompts, g.tokens, g.mask);  // (B,C,V)
  auto logp = torch::log_softmax(logits, -1).gather(-1, g.tokens.unsqueeze(-1)).squeeze(-1) * g.mask;
  EXPECT_LT((logp - g.logprobs).abs().max().item<float>(), 1e-5);
  // Greedy picks the argmax at every real position.
  auto argmax = logits.argmax(-1);
  EXPECT_TRUE(torch::equal(argmax.masked_select(g.mask), g.tokens.masked_select(g.mask)));
}

// Under bf16 autocast the KV cache holds bf16 (model::compute_dtype): greedy cached decoding agrees
// with one full pass over prefix + completion, to bf16's precision.
TEST(Policy, GreedyCachedDecodingUnderBf16AutocastMatchesAFullPass) {
  torch::manual_seed(0);
  Fixture f;
  auto o = sampled(1, true, true);
  o.sampling.greedy = true;
  AutocastGuard autocast(torch::kCPU, true);
  EXPECT_EQ(compute_dtype(torch::kCPU, torch::kFloat32), torch::kBFloat16);
  auto g = generate(f.policy, f.images, f.prompts, o);
  torch::NoGradGuard ng;
  auto logits = f.policy->completion_logits(f.images, f.prompts, g.tokens, g.mask).to(torch::kFloat32);  // (B,C,V)
  auto logp = torch::log_softmax(logits, -1).gather(-1, g.tokens.unsqueeze(-1)).squeeze(-1) * g.mask;
  EXPECT_LT((logp - g.logprobs).abs().max().item<float>(), 0.15);  // bf16 keeps 8 bits of mantissa
  const auto agree = (logits.argmax(-1) == g.tokens).masked_select(g.mask).to(torch::kFloat32).mean().item<float>();
  EXPECT_GT(agree, 0.9);
  EXPECT_GT(g.mask.sum().item<int64_t>(), 6);
}

TEST(Policy, PaddedBatchEqualsRowsOneAtATime) {
  torch::manual_seed(0);
  Fixture f;
  torch::NoGradGuard ng;
  // Completions of different lengths: right padding.
  auto comp = torch::tensor({{4, 5, 6, 7}, {8, 9, 0, 0}, {10, 0, 0, 0}}, torch::kInt64);
  auto mask = comp != 0;
  auto batched = f.policy->completion_logits(f.images, f.prompts, comp, mask);  // (3,4,V)
  for (int64_t b = 0; b < 3; ++b) {
    const int64_t len = mask[b].sum().item<int64_t>();
    auto row =
        f.policy->completion_logits(f.images.narrow(0, b, 1), {f.prompts[size_t(b)]},
                                    comp.narrow(0, b, 1).narrow(1, 0, len), mask.narrow(0, b, 1).narrow(1, 0, len));
    // Equal up to float32 rounding of the logits' size (padding that leaked in would move them by
    // far more: the rows' prompts and completions differ).
    auto diff = (batched.narrow(0, b, 1).narrow(1, 0, len) - row).abs().max().item<float>();
    EXPECT_LT(diff, 1e-5 * (1 + row.abs().max().item<float>())) << "row " << b;
  }
}

TEST(Policy, PrefixSharedGroupSamplingEqualsUnshared) {
  torch::manual_seed(0);
  Fixture f;
  auto shared = generate(f.policy, f.images, f.prompts, sampled(4, true, true));
  auto unshared = generate(f.policy, f.images, f.prompts, sampled(4, true, false));
  ASSERT_EQ(shared.tokens.sizes(), (std::vector<int64_t>{12, 12}));
  EXPECT_TRUE(torch::equal(shared.tokens, unshared.tokens));
  EXPECT_LT((shared.logprobs - unshared.logprobs).abs().max().item<float>(), 1e-5);
  // The G completions of one prompt are not all identical (sampling, not copying).
  EXPECT_FALSE(torch::equal(shared.tokens[0], shared.tokens[1]) && torch::equal(shared.tokens[1], shared.tokens[2]));
  // Same seed, same completions; another seed, others.
  auto again = generate(f.policy, f.images, f.prompts, sampled(4, true, true));
  EXPECT_TRUE(torch::equal(shared.tokens, again.tokens));
  auto o = sampled(4, true, true);
  o.seed = 7;
  EXPECT_FALSE(torch::equal(shared.tokens, generate(f.policy, f.images, f.prompts, o).tokens));
}

TEST(Policy, BatchedScorerMatchesGenerationLogprobs) {
  torch::manual_seed(0);
  Fixture f;
  auto o = sampled(3, true, true);
  o.sampling.temperature = 0.7;
  auto g = generate(f.policy, f.images, f.prompts, o);
  auto scored = completion_logprobs(f.policy, f.images.repeat_interleave(3, 0),
                                    {f.prompts[0], f.prompts[0], f.prompts[0], f.prompts[1], f.prompts[1], f.prompts[1],
                                     f.prompts[2], f.prompts[2], f.prompts[2]},
                                    g.tokens, g.mask, 0.7);
  // Per token and summed per sequence.
  EXPECT_LT((scored - g.logprobs).abs().max().item<float>(), 1e-4);
  EXPECT_LT((scored.sum(1) - g.logprobs.sum(1)).abs().max().item<float>(), 1e-4);
}

// Words written into a row (GenerateOptions::fill): after row 1's second token the next three
// tokens are 40, 41, 42, whatever the policy would draw; each with the policy's log-probability of it,
// as completion_logprobs scores the finished rows; the other rows draw what they draw without fills.
TEST(Policy, FilledTokensAreWrittenWithThePolicysLogprobs) {
  torch::manual_seed(0);
  Fixture f;
  auto o = sampled(2, true, true);
  o.sampling.temperature = 0.7;
  o.max_new_tokens = 12;
  o.eos_id = -1;  // every row runs to 12 tokens
  const auto plain = generate(f.policy, f.images, f.prompts, o);
  int calls = 0;
  o.fill = [&](int64_t row, const std::vector<int64_t>& so_far) -> std::vector<int64_t> {
    ++calls;
    EXPECT_FALSE(so_far.empty());
    if (row == 1 && so_far.size() == 2) return {40, 41, 42};
    return {};
  };
  const auto g = generate(f.policy, f.images, f.prompts, o);
  EXPECT_EQ(g.tokens[1][2].item<int64_t>(), 40);
  EXPECT_EQ(g.tokens[1][3].item<int64_t>(), 41);
  EXPECT_EQ(g.tokens[1][4].item<int64_t>(), 42);
  EXPECT_TRUE(torch::equal(g.tokens[1].narrow(0, 0, 2), plain.tokens[1].narrow(0, 0, 2)));
  EXPECT_FALSE(torch::equal(g.tokens[1].narrow(0, 2, 3), plain.tokens[1].narrow(0, 2, 3)));  // not drawn
  for (int64_t n : {0, 2, 3, 4, 5}) EXPECT_TRUE(torch::equal(g.tokens[n], plain.tokens[n])) << n;
  EXPECT_EQ(calls, 6 * 12 - 2);  // once per token a row gains, but not while more of a fill is queued
  model::TokenRows rows;
  for (const auto& p : f.prompts) rows.insert(rows.end(), {p, p});
  const auto scored = completion_logprobs(f.policy, f.images.repeat_interleave(2, 0), rows, g.tokens, g.mask, 0.7);
  EXPECT_LT((scored - g.logprobs).abs().max().item<float>(), 1e-4);
  o.rows_total = 12;  // a data-parallel share: fill's rows would not be the batch's
  EXPECT_THROW(generate(f.policy, f.images, f.prompts, o), lriad::Error);
}

TEST(Policy, EosStopsARowAndPadsTheRest) {
  torch::manual_seed(0);
  Fixture f;
  auto o = sampled(2, true, true);
  o.sampling.greedy = true;
  auto g = generate(f.policy, f.images, f.prompts, o);
  // Make the first greedy token the eos: every row then stops after one token.
  o.eos_id = g.tokens[0][0].item<int64_t>();
  auto stopped = generate(f.policy, f.images, f.prompts, o);
  EXPECT_EQ(stopped.lengths[0].item<int64_t>(), 1);
  EXPECT_FALSE(stopped.truncated[0].item<bool>());
  EXPECT_EQ(stopped.tokens[0][1].item<int64_t>(), o.pad_id);
  EXPECT_EQ(stopped.logprobs[0][1].item<float>(), 0.f);
}

TEST(Policy, GradientsReachEveryParameter) {
  torch::manual_seed(0);
  Fixture f;
  auto comp = torch::tensor({{4, 5}, {6, 7}, {8, 9}}, torch::kInt64);
  auto lp = completion_logprobs(f.policy, f.images, f.prompts, comp, comp != 0);
  (-lp.sum()).backward();
  for (const auto& p : f.policy->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<float>(), 0.f) << p.key();
  }
}

TEST(Sampling, TopKAndTopPKeepTheExpectedTokens) {
  // probs {0.1, 0.2, 0.3, 0.4}: top_k=2 keeps {0.3, 0.4} -> renormalised {0.4286, 0.5714}.
  auto logits = torch::tensor({{0.1f, 0.2f, 0.3f, 0.4f}}).log();
  auto k2 = torch::softmax(filter_logits(logits, 2, 1.0), -1);
  EXPECT_NEAR(k2[0][0].item<float>(), 0.f, 1e-7);
  EXPECT_NEAR(k2[0][2].item<float>(), 0.3f / 0.7f, 1e-6);
  EXPECT_NEAR(k2[0][3].item<float>(), 0.4f / 0.7f, 1e-6);
  // top_p=0.6: 0.4 (mass before 0) and 0.3 (mass before 0.4 < 0.6) stay; 0.2 (before 0.7) goes.
  auto p6 = torch::softmax(filter_logits(logits, 0, 0.6), -1);
  EXPECT_NEAR(p6[0][1].item<float>(), 0.f, 1e-7);
  EXPECT_NEAR(p6[0][3].item<float>(), 0.4f / 0.7f, 1e-6);
  // top_p tiny keeps only the most likely token.
  auto p0 = torch::softmax(filter_logits(logits, 0, 1e-6), -1);
  EXPECT_NEAR(p0[0][3].item<float>(), 1.f, 1e-6);
}

TEST(Sampling, DrawsFollowTheDistributionAndGreedyTakesArgmax) {
  auto logits = torch::tensor({{0.1f, 0.2f, 0.3f, 0.4f}}).log().repeat({20000, 1});
  auto gen = make_generator(3);
  SamplingParams p;
  auto d = sample_tokens(logits, p, gen);
  auto freq = torch::bincount(d.tokens, {}, 4).to(torch::kFloat32) / 20000.0;
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(freq[i].item<float>(), 0.1f * (i + 1), 0.015f) << i;
  EXPECT_NEAR(d.logprobs[0].item<float>(), std::log(0.1f * (d.tokens[0].item<int64_t>() + 1)), 1e-5);
  p.greedy = true;
  EXPECT_TRUE((sample_tokens(logits, p, gen).tokens == 3).all().item<bool>());
}

TEST(Weights, SaveLoadGivesIdenticalLogitsAndShapeErrorsNameTheTensor) {
  torch::manual_seed(0);
  Fixture f;
  const std::string path = ::testing::TempDir() + "/lriad_weights_test.safetensors";
  save_weights(*f.policy, path, {{"format", "lriad-policy-v1"}});
  Policy other = make_policy(tiny_config(), 99);  // different random weights
  torch::NoGradGuard ng;
  auto comp = torch::tensor({{4, 5, 6}, {7, 8, 9}, {10, 11, 12}}, torch::kInt64);
  auto before = f.policy->completion_logits(f.images, f.prompts, comp, comp != 0);
  EXPECT_FALSE(torch::allclose(before, other->completion_logits(f.images, f.prompts, comp, comp != 0)));
  auto meta = load_weights(*other, path);
  EXPECT_EQ(meta.at("format"), "lriad-policy-v1");
  EXPECT_TRUE(torch::equal(before, other->completion_logits(f.images, f.prompts, comp, comp != 0)));

  // A model with another width: the error names the first differing tensor and both shapes.
  auto wide = tiny_config();
  wide.dim = 64;
  Policy mismatched = make_policy(wide, 0);
  try {
    load_weights(*mismatched, path);
    FAIL() << "expected a shape error";
  } catch (const lriad::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tensor 'vision.out.weight' has shape [32,32], config expects [64,32]"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
  }
  std::remove(path.c_str());
}

TEST(Precision, Bf16AutocastIsScopedAndCloseToFp32) {
  torch::manual_seed(0);
  Fixture f;
  torch::NoGradGuard ng;
  auto comp = torch::tensor({{4, 5, 6}, {7, 8, 9}, {10, 11, 12}}, torch::kInt64);
  auto fp32 = f.policy->completion_logits(f.images, f.prompts, comp, comp != 0);
  torch::Tensor bf16;
  {
    AutocastGuard guard(torch::kCPU, true);
    bf16 = f.policy->completion_logits(f.images, f.prompts, comp, comp != 0);
  }
  EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16);  // matmuls ran in bf16
  auto diff = (bf16.to(torch::kFloat32) - fp32).abs().max().item<float>();
  EXPECT_GT(diff, 0.f);
  EXPECT_LT(diff, 0.1f * fp32.abs().max().item<float>());
  // The guard restored fp32.
  EXPECT_EQ(f.policy->completion_logits(f.images, f.prompts, comp, comp != 0).scalar_type(), torch::kFloat32);
}

TEST(Precision, AutoDecidesByTheMeasuredRatioAndOnlyOnCpu) {
  // The rule: bf16 where its products are at least kBf16Margin times fp32's.
  EXPECT_TRUE(bf16_pays(100.0, 338.0));   // a CPU with AVX-512 BF16 (3.4x)
  EXPECT_FALSE(bf16_pays(125.8, 4.9));    // a CPU that emulates bf16 (0.04x)
  EXPECT_FALSE(bf16_pays(100.0, 149.0));  // faster, but not by the margin
  EXPECT_TRUE(bf16_pays(100.0, 150.0));
  EXPECT_FALSE(bf16_pays(0.0, 10.0));  // no fp32 figure: no decision for bf16
  RunConfig c;
  c.precision = "fp32";
  EXPECT_FALSE(choose_precision(c).bf16);
  EXPECT_EQ(choose_precision(c).fp32_gflops, 0.0);  // no probe for an explicit precision
  c.precision = "bf16";
  EXPECT_TRUE(use_bf16(c));
  c.precision = "auto";
  c.device = "cuda";
  EXPECT_TRUE(use_bf16(c));
  c.device = "cpu";
  // auto on CPU: the probe ran, its figures and the rule agree with the choice, and a second call
  // (the evaluator after training, in one process) returns the same.
  const auto a = choose_precision(c), b = choose_precision(c);
  EXPECT_GT(a.fp32_gflops, 0.0);
  EXPECT_GT(a.bf16_gflops, 0.0);
  EXPECT_EQ(a.bf16, bf16_pays(a.fp32_gflops, a.bf16_gflops)) << a.reason;
  EXPECT_EQ(a.bf16, b.bf16);
  EXPECT_EQ(a.fp32_gflops, b.fp32_gflops);
  EXPECT_NE(a.reason.find(a.bf16 ? "bf16 autocast" : "fp32"), std::string::npos) << a.reason;
}

TEST(Policy, TakesTheDeviationChannelAndOneSummaryToken) {
  auto c = tiny_config();
  c.reference = "knn";
  auto policy = make_policy(c, 3);
  const auto four = torch::rand({2, 4, 16, 16});
  const auto tokens = policy->vision->forward(four);  // (B, N+1, D)
  EXPECT_EQ(tokens.sizes(), torch::IntArrayRef({2, c.image_tokens(), c.dim}));
  EXPECT_EQ(c.image_tokens(), 5);
  EXPECT_THROW(policy->vision->forward(torch::rand({2, 3, 16, 16})), std::exception);
  // The deviation channel changes the output: the evidence reaches the tokens.
  auto other = four.clone();
  other.narrow(1, 3, 1).fill_(4.0);
  EXPECT_GT((policy->vision->forward(other) - tokens).abs().max().item<double>(), 1e-3);
}

TEST(Flops, GoldenCountOnAHandSizedModel) {
  ModelConfig c;
  c.image_size = 16;
  c.patch_size = 8;  // 4 patch tokens
  c.vision_dim = 4;
  c.vision_layers = 1;
  c.vision_mlp_ratio = 2;
  c.dim = 6;
  c.layers = 1;
  c.heads = 2;
  c.kv_heads = 1;  // head_dim 3
  c.mlp_hidden = 8;
  c.vocab_size = 10;
  // By hand, multiply-adds: stem 4*(3*8*8)*4 = 3072; block 4*(4*16 + 2*4*8) + 2*4*4*4 = 640;
  // projection 4*4*6 = 96. Decoder over 4 + 2 + 3 = 9 tokens: per token 6*(2+2)*3 + 2*3*6 +
  // 3*6*8 = 252, so 9*252 + 2*81*2*3 = 3240. Head 3*6*10 = 180. FLOPs are twice these.
  const auto f = forward_flops(c, 2, 3);
  EXPECT_DOUBLE_EQ(f.vision, 2 * 3808.0);
  EXPECT_DOUBLE_EQ(f.decoder, 2 * 3240.0);
  EXPECT_DOUBLE_EQ(f.head, 2 * 180.0);
  EXPECT_DOUBLE_EQ(f.total(), 2 * (3808.0 + 3240.0 + 180.0));
}

TEST(Flops, PerTokenCountMatchesTheBuiltPolicysWeights) {
  // The decoder's per-token multiply-adds are its blocks' matrix weights: tie the formula to the
  // architecture so that a changed layer shows up here.
  ModelConfig c = tiny_config();
  c.reference = "knn";
  auto policy = make_policy(c, 0);
  double block_weights = 0, vision_weights = 0;
  for (const auto& p : policy->named_parameters()) {
    if (p.value().dim() != 2) continue;
    if (p.key().rfind("decoder.blocks.", 0) == 0) block_weights += double(p.value().numel());
  }
  for (const auto& p : policy->vision->named_parameters())
    if (p.value().dim() == 2 && p.key().rfind("blocks.", 0) == 0) vision_weights += double(p.value().numel());
  const auto one = forward_flops(c, 5, 1), two = forward_flops(c, 5, 2);
  // One more completion token adds its pass through every block, attention over the longer
  // sequence ((t+1)^2 - t^2 = 2t + 1 query-key pairs per layer) and one head row.
  const double t = c.image_tokens() + 6;
  const double attention = c.layers * 2 * (2 * t + 1) * c.heads * c.head_dim();
  EXPECT_DOUBLE_EQ(two.decoder - one.decoder, 2 * (block_weights + attention));
  EXPECT_DOUBLE_EQ(two.head - one.head, 2.0 * c.dim * c.vocab_size);
  EXPECT_EQ(two.vision, one.vision);
  const double np = (c.image_size / c.patch_size) * (c.image_size / c.patch_size);
  EXPECT_GT(one.vision, 2 * np * vision_weights);  // blocks are part of the vision count
}
