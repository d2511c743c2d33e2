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

#include "lriad/data/anomaly.h"
#include "lriad/data/image_io.h"
#include "lriad/data/patch_distance.h"
#include "lriad/data/reference.h"
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
        const auto kh = k[b][h / (H / Hkv)], vh = v[b][h / (H / Hkv)];        // (Tk,hd)
        auto s = torch::matmul(q[b][h], kh.t()) / std::sqrt(double(hd));      // (T,Tk)
        s = s.masked_fill(mask[b][0].expand({T, Tk}).logical_not(), -1e30);
        const auto want = torch::matmul(torch::softmax(s, -1), vh);            // (T,hd)
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
    auto row = f.policy->completion_logits(f.images.narrow(0, b, 1), {f.prompts[size_t(b)]},
                                           comp.narrow(0, b, 1).narrow(1, 0, len),
                                           mask.narrow(0, b, 1).narrow(1, 0, len));
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
    EXPECT_NE(msg.find("tensor 'vision.out.weight' has shape [32,32], config expects [64,32]"), std::string::npos) << msg;
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
  EXPECT_TRUE(bf16_pays(100.0, 338.0));    // a CPU with AVX-512 BF16 (3.4x)
  EXPECT_FALSE(bf16_pays(125.8, 4.9));     // a CPU that emulates bf16 (0.04x)
  EXPECT_FALSE(bf16_pays(100.0, 149.0));   // faster, but not by the margin
  EXPECT_TRUE(bf16_pays(100.0, 150.0));
  EXPECT_FALSE(bf16_pays(0.0, 10.0));      // no fp32 figure: no decision for bf16
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

// ---- normal reference (model.reference = "knn") -------------------------------------------

namespace {

// A flat grey image with mild pixel noise; `defect` paints a dark 4x4 square at (x, y).
cv::Mat grey(int size, uint64_t seed, int defect_x = -1, int defect_y = -1) {
  cv::Mat img(size, size, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
  cv::Mat noise(size, size, CV_32FC3);
  cv::RNG rng(seed);
  rng.fill(noise, cv::RNG::NORMAL, 0.0, 0.02);
  img += noise;
  if (defect_x >= 0) img(cv::Rect(defect_x, defect_y, 4, 4)).setTo(cv::Scalar(0.05, 0.05, 0.05));
  return img;
}

data::NormalReference grey_reference() {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 6; ++i) halves["plate"][size_t(i % 2)].push_back(grey(24, 100 + uint64_t(i)));
  data::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 600;
  return data::NormalReference::build(halves, o);
}

// A texture's reference: 5x5 patches, `bank` of them kept, maps at `side`, the fine comparison at `fine`.
data::NormalReference::Options texture_options(int side, int fine, int bank) {
  data::NormalReference::Options o;
  o.patch = 5;
  o.bank_size = bank;
  o.side = side;
  o.fine_side = fine;
  return o;
}

// `ref` written to a temporary file named `name` and read back.
data::NormalReference saved_and_loaded(const data::NormalReference& ref, const std::string& name) {
  const std::string path = ::testing::TempDir() + "/" + name + ".safetensors";
  ref.save(path);
  auto back = data::NormalReference::load(path);
  std::remove(path.c_str());
  return back;
}

// Eight noisy grey plates (seeds first .. first + 7) in two halves, every 3x3 patch kept.
data::NormalReference plate_reference(uint64_t first, bool colour = true) {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 8; ++i) halves["plate"][size_t(i % 2)].push_back(grey(24, first + uint64_t(i)));
  data::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 100000;
  o.colour = colour;
  return data::NormalReference::build(halves, o);
}

}  // namespace

TEST(PatchDistance, NearestDistancesGoldenAndInChunks) {
  // Golden: (0,0) is 1 from (0,1); (3,4) is sqrt(18) from (0,1) and 5 from (6,8).
  const auto bank = torch::tensor({0.f, 1.f, 6.f, 8.f}).view({2, 2});
  const auto q = torch::tensor({0.f, 0.f, 3.f, 4.f}).view({2, 2});
  const auto d = data::nearest_distances(q, bank, bank.pow(2).sum(1));
  EXPECT_NEAR(d[0].item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(d[1].item<float>(), std::sqrt(18.0f), 1e-5);
  // More rows than a chunk (512): every row against the bank written out.
  torch::manual_seed(3);
  const auto qs = torch::rand({1100, 12}), bs = torch::rand({300, 12});
  const auto got = data::nearest_distances(qs, bs, bs.pow(2).sum(1));
  const auto want = std::get<0>((qs.unsqueeze(1) - bs.unsqueeze(0)).pow(2).sum(2).min(1)).sqrt();  // (1100)
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-4);
}

TEST(PatchDistance, BoxSumGoldenAndEqualToAveragePooling) {
  // 0..15 in a 4x4: the 3x3 windows sum to 45, 54 / 81, 90.
  const auto e = torch::arange(16, torch::kFloat32).view({1, 1, 4, 4});
  const auto s = data::box_sum(e, 3);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_FLOAT_EQ(s[0][0][0][0].item<float>(), 45);
  EXPECT_FLOAT_EQ(s[0][0][0][1].item<float>(), 54);
  EXPECT_FLOAT_EQ(s[0][0][1][0].item<float>(), 81);
  EXPECT_FLOAT_EQ(s[0][0][1][1].item<float>(), 90);
  torch::manual_seed(4);
  const auto r = torch::rand({3, 1, 9, 11});
  EXPECT_TRUE(torch::allclose(data::box_sum(r, 5), torch::avg_pool2d(r, 5, 1) * 25, 1e-5, 1e-5));
}

TEST(PatchDistance, PositionalDistanceFindsTheShiftedPatchAndMatchesLoops) {
  // An image that is a normal image moved one pixel right: within +-1 pixel every patch away from
  // the left edge has its exact match (0); compared in place only, it does not.
  torch::manual_seed(5);
  const auto normal = torch::rand({1, 1, 8, 8});
  auto image = normal[0].clone();  // (1,8,8)
  image.narrow(2, 1, 7).copy_(normal[0].narrow(2, 0, 7));
  const auto slack = data::positional_distance(image, normal, 3, 1);  // (6,6)
  EXPECT_LT(slack.narrow(1, 1, 5).abs().max().item<float>(), 1e-3);
  EXPECT_GT(data::positional_distance(image, normal, 3, 0).narrow(1, 1, 5).min().item<float>(), 0.05);
  // Against the definition written out: min over normals and shifts (edges repeated) of the 3x3
  // window's summed squared difference over channels.
  const int64_t C = 3, S = 7, N = 2, k = 3, shift = 1, g = S - k + 1;
  const auto chw = torch::rand({C, S, S}), normals = torch::rand({N, C, S, S});
  const auto got = data::positional_distance(chw, normals, k, shift);  // (g,g)
  auto a = chw.accessor<float, 3>();
  auto b = normals.accessor<float, 4>();
  auto clampi = [&](int64_t v) { return std::min<int64_t>(S - 1, std::max<int64_t>(0, v)); };
  for (int64_t y = 0; y < g; ++y)
    for (int64_t x = 0; x < g; ++x) {
      double best = 1e30;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t dy = -shift; dy <= shift; ++dy)
          for (int64_t dx = -shift; dx <= shift; ++dx) {
            double sum = 0;
            for (int64_t c = 0; c < C; ++c)
              for (int64_t i = 0; i < k; ++i)
                for (int64_t j = 0; j < k; ++j) {
                  const double t = a[c][y + i][x + j] - b[n][c][clampi(y + i + dy)][clampi(x + j + dx)];
                  sum += t * t;
                }
            best = std::min(best, sum);
          }
      EXPECT_NEAR(got[y][x].item<float>(), std::sqrt(best), 1e-5) << "at " << y << "," << x;
    }
}

TEST(NormalReference, DefectsStandOutNormalImagesPeakNearOne) {
  const auto ref = grey_reference();
  const auto normal = ref.deviation(grey(24, 7), "plate");  // (S,S)
  ASSERT_EQ(normal.sizes(), torch::IntArrayRef({24, 24}));
  EXPECT_GT(normal.max().item<double>(), 0.5);  // scaled by the typical peak of unseen normals
  EXPECT_LT(normal.max().item<double>(), 2.0);
  const auto bad = ref.deviation(grey(24, 7, 16, 4), "plate");
  EXPECT_GT(bad.max().item<double>(), 5 * normal.max().item<double>());
  // The peak lies on the defect (x 16..19, y 4..7).
  const int64_t at = bad.argmax().item<int64_t>(), y = at / 24, x = at % 24;
  EXPECT_GE(x, 15);
  EXPECT_LE(x, 20);
  EXPECT_GE(y, 3);
  EXPECT_LE(y, 8);
  // Fourth channel and errors.
  const auto four = ref.with_deviation(grey(24, 7), "plate");
  EXPECT_EQ(four.sizes(), torch::IntArrayRef({4, 24, 24}));
  EXPECT_TRUE(torch::equal(four[3], normal));
  EXPECT_THROW(ref.deviation(grey(24, 7), "bottle"), lriad::Error);
}

// The scale is the median peak of the unseen half's normals: one odd normal image (here with a
// dark spot) does not move it, so it does not move where "above normal" starts either.
TEST(NormalReference, ScaleIsTheMedianPeakOfTheOtherHalfSoOneOddNormalDoesNotMoveIt) {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 4; ++i) halves["plate"][0].push_back(grey(24, 200 + uint64_t(i)));
  for (int i = 0; i < 4; ++i) halves["plate"][1].push_back(grey(24, 300 + uint64_t(i)));
  halves["plate"][1].push_back(grey(24, 304, 10, 10));  // the odd one of five
  data::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 100000;
  const auto ref = data::NormalReference::build(halves, o);
  const double scale = ref.scale("plate", 0);
  std::vector<double> raw;  // the raw peaks against bank 0 = scaled peaks x scale
  for (const auto& img : halves["plate"][1]) raw.push_back(ref.deviation(img, "plate", 0).max().item<double>() * scale);
  std::vector<double> sorted = raw;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NEAR(scale, sorted[2], 1e-4 * scale);  // the middle of five
  EXPECT_GT(raw.back(), 3 * sorted[2]);         // the odd image peaks far above the rest...
  const double mean = std::accumulate(raw.begin(), raw.end(), 0.0) / double(raw.size());
  EXPECT_GT(mean, 1.3 * scale);                 // ...and a mean would have moved with it
}

// An image in neither bank (held out, test) is compared with both and the maps averaged: a
// defect keeps its peak (what averaging gains on real normals is measured in the issue notes).
TEST(NormalReference, AnImageInNeitherBankIsComparedWithBothAndTheMapsAveraged) {
  const auto ref = plate_reference(400);
  constexpr int kBoth = data::NormalReference::kBothBanks;
  const cv::Mat bad = grey(24, 9, 10, 12);
  const auto mean = (ref.deviation(bad, "plate", 0) + ref.deviation(bad, "plate", 1)) / 2;
  EXPECT_TRUE(torch::allclose(ref.deviation(bad, "plate", kBoth), mean));
  EXPECT_TRUE(torch::allclose(ref.with_deviation(bad, "plate", kBoth)[3], mean));
  // The defect keeps its peak against both banks (a defect deviates from each alike) and stands
  // far above every unseen normal image's averaged peak.
  const double defect = ref.deviation(bad, "plate", kBoth).max().item<double>();
  EXPECT_GT(defect, 0.8 * ref.deviation(bad, "plate", 0).max().item<double>());
  for (int i = 0; i < 6; ++i) EXPECT_LT(5 * ref.deviation(grey(24, 500 + uint64_t(i)), "plate", kBoth).max().item<double>(), defect);
}

// A speck of a colour no normal image shows: with the palette the map is at least its bins beyond
// the tolerance there; normal images gain nothing; the palette survives save and load.
TEST(NormalReference, AColourNoNormalImageShowsStandsOut) {
  const auto with = plate_reference(600), without = plate_reference(600, /*colour=*/false);
  EXPECT_TRUE(with.colour("plate"));
  EXPECT_FALSE(without.colour("plate"));
  // Blue (0.2, 0.3, 0.9): bins (6, 9, 28); the noisy greys (0.5 +- 3.5 sigma = 0.07) fill bins
  // 13-18 of each channel, so the speck lies >= 7 + 4 + 10 = 21 bins away: novelty >= 20 inside.
  cv::Mat bad = grey(24, 9);
  bad(cv::Rect(10, 12, 4, 4)).setTo(cv::Scalar(0.2, 0.3, 0.9));
  const double peak = with.deviation(bad, "plate", 0).max().item<double>();
  EXPECT_GE(peak, 15.0);
  EXPECT_GT(peak, 1.5 * without.deviation(bad, "plate", 0).max().item<double>());
  for (int i = 0; i < 4; ++i) {
    const cv::Mat normal = grey(24, 700 + uint64_t(i));
    EXPECT_TRUE(torch::allclose(with.deviation(normal, "plate", 0), without.deviation(normal, "plate", 0)));
  }
  const auto back = saved_and_loaded(with, "lriad_reference_colour");
  EXPECT_TRUE(back.colour("plate"));
  EXPECT_TRUE(torch::allclose(back.deviation(bad, "plate", 1), with.deviation(bad, "plate", 1)));
}

// A stain tints a region by a shade of colour (here red up 8%, blue down 8%) on a grey texture
// whose normal images differ in brightness (gains 0.7-1.3): each stained 5x5 patch finds a close
// grey one, and the palette knows each pixel's colour, so without the region comparison the stain
// barely passes the normal level. With it (48 px averaged down to 12: 4x4 pixels, noise / 4), the
// stain's r/(r+g+b) is 0.54/1.55 = 0.348 where every normal region has 0.5/1.55 = 0.323 (to within
// 0.004 over the gains): its 3x3 patches lie ~0.075 from the bank, several times the normal level.
TEST(NormalReference, AStainThatTintsARegionStandsOutByTheColourOfRegions) {
  constexpr int S = 48;
  auto plate = [](uint64_t seed, double gain) {
    cv::Mat img = grey(S, seed);
    img *= gain;
    return img;
  };
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 12; ++i) halves["plate"][size_t(i % 2)].push_back(plate(800 + uint64_t(i), 0.7 + 0.6 * i / 11.0));
  data::NormalReference::Options o;
  o.patch = 5;
  o.bank_size = 4000;
  o.side = S;
  const auto without = data::NormalReference::build(halves, o);
  o.region_side = 12;
  const auto with = data::NormalReference::build(halves, o);
  EXPECT_TRUE(with.region("plate"));
  EXPECT_FALSE(without.region("plate"));
  constexpr int kBoth = data::NormalReference::kBothBanks;
  cv::Mat stained = plate(900, 1.0);
  cv::Mat stain = stained(cv::Rect(24, 8, 16, 16));
  cv::multiply(stain, cv::Scalar(1.08, 1.0, 0.92), stain);  // RGB, in place
  const auto map = with.deviation(stained, "plate", kBoth);  // (S,S)
  const double peak = map.max().item<double>(), before = without.deviation(stained, "plate", kBoth).max().item<double>();
  EXPECT_GT(peak, 3.0);  // 4.8 when written; 1.2 without the region comparison, normal images 0.91-0.96
  EXPECT_GT(peak, 1.5 * before) << "without the region comparison the stain peaks at " << before;
  const int64_t at = map.argmax().item<int64_t>(), y = at / S, x = at % S;  // on the stain (x 24..39, y 8..23)
  EXPECT_TRUE(x >= 20 && x <= 43 && y >= 4 && y <= 27) << "peak at x " << x << ", y " << y;
  for (int i = 0; i < 4; ++i) {  // unseen normal images at other gains stay near the normal level
    const double normal = with.deviation(plate(950 + uint64_t(i), 0.75 + 0.15 * i), "plate", kBoth).max().item<double>();
    EXPECT_LT(normal, 2.0) << "normal image " << i;
  }
  const auto back = saved_and_loaded(with, "lriad_reference_region");
  EXPECT_TRUE(back.region("plate"));
  EXPECT_EQ(back.options().region_side, 12);
  EXPECT_TRUE(torch::allclose(back.deviation(stained, "plate", 1), with.deviation(stained, "plate", 1)));
}

// A scratch one pixel wide on a grainy texture: at the model's side (half the photograph's) it is
// averaged with the grain around it and its 5x5 patches find a close grainy match, so the map
// barely sees it. The fine comparison of textures looks at the photograph's side, high-passed.
TEST(NormalReference, AThinScratchOnAGrainyTextureStandsOutInTheFineComparisonOfTextures) {
  constexpr int S = 48, W = 96;
  auto grain = [](uint64_t seed) {  // grey with blotchy grain a few pixels across, at W
    cv::Mat noise(W, W, CV_32FC1);
    cv::RNG rng(seed);
    rng.fill(noise, cv::RNG::NORMAL, 0.0, 0.12);
    cv::GaussianBlur(noise, noise, cv::Size(0, 0), 1.0);
    cv::Mat img(W, W, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
    cv::Mat grey3;
    cv::merge(std::vector<cv::Mat>{noise, noise, noise}, grey3);
    return cv::Mat(img + grey3);
  };
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 12; ++i) halves["plate"][size_t(i % 2)].push_back(grain(700 + uint64_t(i)));
  auto o = texture_options(S, W, 4000);
  const auto without = data::NormalReference::build(halves, o);
  o.fine_textures = true;
  const auto with = data::NormalReference::build(halves, o);
  EXPECT_TRUE(with.fine("plate"));
  EXPECT_FALSE(with.aligned("plate"));
  EXPECT_FALSE(without.fine("plate"));
  constexpr int kBoth = data::NormalReference::kBothBanks;
  cv::Mat scratched = grain(790);
  cv::line(scratched, cv::Point(30, 20), cv::Point(62, 70), cv::Scalar(0.3, 0.3, 0.3), 1, cv::LINE_8);
  const auto map = with.deviation(scratched, "plate", kBoth);  // (S,S)
  EXPECT_EQ(map.sizes(), torch::IntArrayRef({S, S}));
  const double peak = map.max().item<double>(), before = without.deviation(scratched, "plate", kBoth).max().item<double>();
  double worst_normal = 0;
  for (int i = 0; i < 6; ++i)  // unseen normal images stay near the normal level
    worst_normal = std::max(worst_normal, with.deviation(grain(750 + uint64_t(i)), "plate", kBoth).max().item<double>());
  // When written: the scratch 3.75 with, 1.35 without; unseen normals up to 1.15.
  EXPECT_LT(worst_normal, 2.0);
  EXPECT_GT(peak, 2.0 * worst_normal) << "normal images peak at up to " << worst_normal;
  EXPECT_GT(peak, 2.0 * before) << "without the fine comparison the scratch peaks at " << before;
  const int64_t at = map.argmax().item<int64_t>(), y = at / S, x = at % S;  // on the line (x 15..31, y 10..35 at S)
  EXPECT_TRUE(x >= 12 && x <= 34 && y >= 7 && y <= 38) << "peak at x " << x << ", y " << y;
  const auto back = saved_and_loaded(with, "lriad_reference_fine_textures");
  EXPECT_TRUE(back.fine("plate"));
  EXPECT_TRUE(torch::allclose(back.deviation(scratched, "plate", 1), with.deviation(scratched, "plate", 1)));
}

// The banks moved to a device (NormalReference::to): every map, whole and incremental, is the one
// computed where they were, maps come back on the CPU, and saving reads them back from the device.
// Run on the CPU everywhere, and on the GPU too where LibTorch sees one (the devices checked are
// recorded as the test's property "devices").
TEST(NormalReference, BanksMovedToADeviceGiveTheSameMaps) {
  constexpr int S = 32, W = 64;
  auto grain = [](uint64_t seed) {  // colour grain a few pixels across, at W
    cv::Mat img(W, W, CV_32FC3);
    cv::RNG rng(seed);
    rng.fill(img, cv::RNG::NORMAL, 0.5, 0.1);
    cv::GaussianBlur(img, img, cv::Size(0, 0), 1.0);
    return img;
  };
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 8; ++i) halves["cloth"][size_t(i % 2)].push_back(grain(900 + uint64_t(i)));
  auto o = texture_options(S, W, 1500);
  o.fine_textures = true;  // all three banks: colour patches, fine texture patches, region patches
  o.region_side = 16;
  const auto cpu = data::NormalReference::build(halves, o);
  ASSERT_TRUE(cpu.fine("cloth") && cpu.region("cloth"));
  cv::Mat marked = grain(990);
  cv::line(marked, cv::Point(10, 12), cv::Point(40, 44), cv::Scalar(0.2, 0.2, 0.2), 1);
  const cv::Rect changed(9, 11, 33, 35);
  const std::array<torch::Tensor, 2> base = {cpu.patch_distances(grain(991), "cloth", 0), cpu.patch_distances(grain(991), "cloth", 1)};
  const auto want = cpu.deviation(marked, "cloth", data::NormalReference::kBothBanks);  // (S,S)
  const auto want_changed = cpu.changed_deviation(marked, "cloth", 1, base, changed);
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA);
  std::string checked;
  for (const auto& device : devices) {
    auto moved = cpu;
    moved.to(device);
    EXPECT_EQ(moved.device(), device);
    // Another device's products round differently, and the square root of a small |b|^2 - 2q.b + |q|^2
    // magnifies it: a looser bound there.
    const float tol = device.is_cpu() ? 1e-4f : 2e-3f;
    const auto got = moved.deviation(marked, "cloth", data::NormalReference::kBothBanks);
    EXPECT_TRUE(got.device().is_cpu());
    EXPECT_LT((got - want).abs().max().item<float>(), tol) << device;
    EXPECT_LT((moved.changed_deviation(marked, "cloth", 1, base, changed) - want_changed).abs().max().item<float>(), tol) << device;
    const auto back = saved_and_loaded(moved, "lriad_reference_moved");
    EXPECT_TRUE(torch::allclose(back.deviation(marked, "cloth", 0), cpu.deviation(marked, "cloth", 0))) << device;
    checked += (checked.empty() ? "" : ",") + device.str();
  }
  RecordProperty("devices", checked);
  EXPECT_GT(want.max().item<double>(), 1.5);  // the line stands out: the maps compared are not all flat
}

TEST(NormalReference, ImagesAreNeverComparedWithThemselvesAndSaveLoadRoundTrips) {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  const cv::Mat a = grey(24, 1), b = grey(24, 2);
  halves["plate"] = {std::vector<cv::Mat>{a}, std::vector<cv::Mat>{b}};
  data::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 100000;  // every patch kept
  const auto ref = data::NormalReference::build(halves, o);
  // a is in bank 0: against bank 0 it matches itself exactly, against bank 1 it does not.
  EXPECT_LT(ref.deviation(a, "plate", 0).max().item<double>(), 0.05);  // float cancellation only
  EXPECT_GT(ref.deviation(a, "plate", 1).max().item<double>(), 0.3);
  // The scale of bank h is the median peak of the other half's raw maps (one image each here):
  // so b's own map against bank 0 peaks at exactly 1.
  EXPECT_NEAR(ref.deviation(b, "plate", 0).max().item<double>(), 1.0, 1e-4);
  const auto back = saved_and_loaded(ref, "lriad_reference_test");
  EXPECT_EQ(back.categories(), std::vector<std::string>{"plate"});
  EXPECT_TRUE(torch::allclose(back.deviation(b, "plate", 1), ref.deviation(b, "plate", 1)));
  EXPECT_DOUBLE_EQ(back.scale("plate", 0), double(float(ref.scale("plate", 0))));
}

TEST(NormalReference, PartsAtOtherPosesAreComparedInACanonicalPose) {
  // Eight normal parts at random places and angles; a texture-like category beside them.
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  cv::RNG rng(11);
  for (int i = 0; i < 8; ++i) {
    halves["screw"][size_t(i % 2)].push_back(
        test::draw_part(48, rng.uniform(20.0, 28.0), rng.uniform(20.0, 28.0), rng.uniform(0.0, 360.0), uint64_t(i)));
    halves["plate"][size_t(i % 2)].push_back(grey(48, 50 + uint64_t(i)));
  }
  data::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 2000;
  o.shift = 2;
  const auto ref = data::NormalReference::build(halves, o);
  EXPECT_TRUE(ref.aligned("screw"));
  EXPECT_FALSE(ref.aligned("plate"));
  o.align = false;
  const auto unaligned = data::NormalReference::build(halves, o);
  EXPECT_FALSE(unaligned.aligned("screw"));

  // A normal part at a pose none of the normals has: near the typical peak when aligned.
  const auto normal = test::draw_part(48, 25, 22, 137, 99);
  const double peak = ref.deviation(normal, "screw").max().item<double>();
  EXPECT_LT(peak, 2.0);
  // A bright spot on the shaft stands out, and the map's peak is on the spot in the image's own frame.
  const auto bad = test::draw_part(48, 25, 22, 137, 99, 8);
  const auto map = ref.deviation(bad, "screw");  // (S,S)
  ASSERT_EQ(map.sizes(), torch::IntArrayRef({48, 48}));
  EXPECT_GT(map.max().item<double>(), 3 * peak);
  const int64_t at = map.argmax().item<int64_t>(), y = at / 48, x = at % 48;
  const double t = 137 * M_PI / 180.0;
  const double sx = 25 + 5 * std::cos(t), sy = 22 - 5 * std::sin(t);  // the spot: 5 px along the axis
  EXPECT_LE(std::hypot(double(x) - sx, double(y) - sy), 3.0) << x << "," << y;

  // Save/load keeps the aligned comparison.
  const auto back = saved_and_loaded(ref, "lriad_reference_pose_test");
  EXPECT_TRUE(back.aligned("screw"));
  EXPECT_FALSE(back.aligned("plate"));
  EXPECT_TRUE(torch::allclose(back.deviation(bad, "screw", 1), ref.deviation(bad, "screw", 1)));
}

// A part drawn at 48 px and enlarged to 96 (the "photograph"), optionally with a 1-px bright line
// across its shaft: at the model's 48 px the line is half a pixel wide.
cv::Mat part96(double cx, double cy, double degrees, uint64_t seed, bool line) {
  cv::Mat big;
  cv::resize(test::draw_part(48, cx, cy, degrees, seed), big, cv::Size(96, 96), 0, 0, cv::INTER_LINEAR);
  if (line) {
    const double t = degrees * M_PI / 180.0, ux = std::cos(t), uy = -std::sin(t);
    const cv::Point2d mid(2 * (cx - 3 * ux), 2 * (cy - 3 * uy)), across(-uy * 5, ux * 5);
    cv::line(big, cv::Point(mid - across), cv::Point(mid + across), cv::Scalar(0.5, 0.5, 0.5), 1, cv::LINE_8);
  }
  return big;
}

TEST(NormalReference, FineComparisonSeesALineThatIsHalfAPixelAtTheModelsSide) {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  cv::RNG rng(5);
  for (int i = 0; i < 10; ++i) {
    halves["screw"][size_t(i % 2)].push_back(
        part96(rng.uniform(21.0, 27.0), rng.uniform(21.0, 27.0), rng.uniform(0.0, 360.0), uint64_t(i), false));
    cv::Mat plate;
    cv::resize(grey(48, 70 + uint64_t(i)), plate, cv::Size(96, 96));
    halves["plate"][size_t(i % 2)].push_back(plate);
  }
  data::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 2000;
  o.shift = 2;
  o.side = 48;
  const auto coarse = data::NormalReference::build(halves, o);
  o.fine_side = 96;
  o.fine_sigma = 2.0;
  o.fine_shift = 2;
  o.neighbours = 3;
  const auto ref = data::NormalReference::build(halves, o);
  EXPECT_TRUE(ref.fine("screw"));
  EXPECT_FALSE(ref.polar("screw"));  // elongated: the high-passed luminance
  EXPECT_FALSE(ref.fine("plate"));  // textures keep the patch bank at the model's side
  EXPECT_FALSE(coarse.fine("screw"));
  // Images smaller than fine_side get none: its normals would be enlarged, blurrier than its inputs.
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> small;
  for (int h = 0; h < 2; ++h)
    for (const auto& img : halves["screw"][size_t(h)]) small["screw"][size_t(h)].push_back(data::resize_square(img, 48));
  const auto from_small = data::NormalReference::build(small, o);
  EXPECT_TRUE(from_small.aligned("screw"));
  EXPECT_FALSE(from_small.fine("screw"));

  const cv::Mat normal = part96(24, 23, 61, 77, false), bad = part96(24, 23, 61, 77, true);
  const auto map = ref.deviation(bad, "screw");  // maps come back at the model's side
  ASSERT_EQ(map.sizes(), torch::IntArrayRef({48, 48}));
  EXPECT_EQ(ref.with_deviation(bad, "screw").sizes(), torch::IntArrayRef({4, 48, 48}));
  const double normal_peak = ref.deviation(normal, "screw").max().item<double>();
  const double fine_peak = map.max().item<double>(), coarse_peak = coarse.deviation(bad, "screw").max().item<double>();
  EXPECT_LT(normal_peak, 2.0);                 // both maps are normalised to their normal peaks
  EXPECT_GT(fine_peak, 2 * normal_peak);       // the line stands out...
  EXPECT_GT(fine_peak, 1.5 * coarse_peak);     // ...more than at 48 px alone
  // On the line (the shaft 3 px from the centre, at the model's side), in the image's own frame.
  const int64_t at = map.argmax().item<int64_t>(), y = at / 48, x = at % 48;
  const double t = 61 * M_PI / 180.0;
  EXPECT_LE(std::hypot(double(x) - (24 - 3 * std::cos(t)), double(y) - (23 + 3 * std::sin(t))), 3.5) << x << "," << y;
  // The texture's map is the same as without the fine comparison.
  EXPECT_TRUE(torch::allclose(ref.deviation(halves["plate"][1][0], "plate", 0),
                              coarse.deviation(halves["plate"][1][0], "plate", 0)));

  const auto back = saved_and_loaded(ref, "lriad_reference_fine_test");
  EXPECT_TRUE(back.fine("screw"));
  EXPECT_EQ(back.options().side, 48);
  EXPECT_EQ(back.options().fine_side, 96);
  EXPECT_TRUE(torch::allclose(back.deviation(bad, "screw", 1), ref.deviation(bad, "screw", 1)));

  // The comparison by place and the fine one run where the reference was moved (a GPU's, with
  // --device cuda), and give the host's maps.
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA);
  for (const auto& device : devices) {
    auto moved = ref;
    moved.to(device);
    const auto got = moved.deviation(bad, "screw");
    EXPECT_TRUE(got.device().is_cpu());
    EXPECT_LT((got - map).abs().max().item<float>(), device.is_cpu() ? 1e-6f : 2e-3f) << device;
  }
}

// A turned round part at 96 px: turning marks of its own along the radius (two waves of random
// phase), a bow-tie highlight at its own angle, a bore; optionally a bright 1-px scratch on the face.
cv::Mat turned96(cv::RNG& rng, bool scratch) {
  const int S = 96;
  const double cx = 48 + rng.uniform(-3.0, 3.0), cy = 48 + rng.uniform(-3.0, 3.0);
  const double light = rng.uniform(0.0, M_PI), p1 = rng.uniform(0.0, 2 * M_PI), p2 = rng.uniform(0.0, 2 * M_PI);
  cv::Mat img(S, S, CV_32FC3);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const double r = std::hypot(x - cx, y - cy), t = std::atan2(y - cy, x - cx);
      const double cover = std::clamp(30.5 - r, 0.0, 1.0) * std::clamp(r - 10.5, 0.0, 1.0);
      const double face = 0.45 + 0.2 * (0.5 + 0.5 * std::cos(2 * (t - light))) + 0.05 * std::sin(r / 0.9 + p1) +
                          0.04 * std::sin(r / 1.7 + p2);
      const float v = float(0.12 + cover * (face - 0.12));
      img.at<cv::Vec3f>(y, x) = cv::Vec3f(v, v, v);
    }
  if (scratch) cv::line(img, cv::Point(int(cx) + 6, int(cy) - 20), cv::Point(int(cx) + 18, int(cy) - 8),
                        cv::Scalar::all(0.85), 1, cv::LINE_8);
  return img;
}

TEST(NormalReference, RoundPartsAreComparedAfterARingByRingFit) {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  cv::RNG rng(11);
  for (int i = 0; i < 16; ++i) halves["nut"][size_t(i % 2)].push_back(turned96(rng, false));
  data::NormalReference::Options o;
  o.patch = 3;
  o.shift = 2;
  o.side = 48;
  o.fine_side = 96;
  o.fine_shift = 2;
  o.neighbours = 4;
  const auto ref = data::NormalReference::build(halves, o);
  o.polar = false;
  const auto highpass = data::NormalReference::build(halves, o);
  ASSERT_TRUE(ref.fine("nut"));
  EXPECT_TRUE(ref.polar("nut"));
  EXPECT_FALSE(highpass.polar("nut"));

  std::vector<double> normal, scratched, normal_hp, scratched_hp;
  for (int i = 0; i < 6; ++i) {
    cv::RNG a(100 + uint64_t(i)), b(100 + uint64_t(i));
    const cv::Mat good = turned96(a, false), bad = turned96(b, true);  // the same part, with and without
    normal.push_back(ref.deviation(good, "nut").max().item<double>());
    scratched.push_back(ref.deviation(bad, "nut").max().item<double>());
    normal_hp.push_back(highpass.deviation(good, "nut").max().item<double>());
    scratched_hp.push_back(highpass.deviation(bad, "nut").max().item<double>());
  }
  // Each part's own rings are noise to a comparison with other parts; the fit removes them first.
  const double worst_normal = *std::max_element(normal.begin(), normal.end());
  const double least_scratch = *std::min_element(scratched.begin(), scratched.end());
  EXPECT_LT(worst_normal, 3.0);  // normalised: a normal part peaks near 1 (0.8-2.2 here, 8 normals a half)
  EXPECT_GT(least_scratch, 1.5 * worst_normal);  // every scratch above every normal part
  const double margin = least_scratch / worst_normal;
  const double margin_hp = *std::min_element(scratched_hp.begin(), scratched_hp.end()) /
                           *std::max_element(normal_hp.begin(), normal_hp.end());
  EXPECT_GT(margin, 1.3 * margin_hp) << margin << " vs high-pass " << margin_hp;

  const auto back = saved_and_loaded(ref, "lriad_reference_polar_test");
  EXPECT_TRUE(back.polar("nut"));
  cv::RNG c(100);
  const cv::Mat bad = turned96(c, true);
  EXPECT_TRUE(torch::allclose(back.deviation(bad, "nut", 1), ref.deviation(bad, "nut", 1)));
}

TEST(NormalReference, PolicyTakesTheDeviationChannelAndOneSummaryToken) {
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

// Incremental maps (NormalReference::changed_deviation via model::changed_policy_input): a
// synthetic anomaly changes part of a normal image; recomputing only the patches the change
// touches gives the map a full recomputation gives, on random draws of every kind, either bank
// and both banks; at the model's side, and for a texture compared finely too (drawn at twice it).
class ChangedMaps : public ::testing::TestWithParam<bool> {};

TEST_P(ChangedMaps, EqualAFullRecomputationOnRandomDraws) {
  constexpr int S = 48;
  const bool fine = GetParam();
  const int W = fine ? 2 * S : S;  // the side the images come at
  auto texture = [W](uint64_t seed) {  // stripes with noise: patches differ from place to place
    cv::Mat img = grey(W, seed);
    for (int y = 0; y < W; ++y)
      for (int x = 0; x < W; ++x) img.at<cv::Vec3f>(y, x) += cv::Vec3f(0.1f, 0.05f, 0.f) * float(((x + 2 * y) / 5) % 2);
    return img;
  };
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 6; ++i) halves["plate"][size_t(i % 2)].push_back(texture(200 + uint64_t(i)));
  data::NormalReference::Options o;
  o.patch = 5;
  o.bank_size = 1500;  // more than one 512-row chunk of patches per image
  o.side = S;
  o.region_side = 12;  // the region map is made anew from the changed image
  o.fine_side = fine ? W : 0;
  o.fine_textures = fine;
  const auto ref = data::NormalReference::build(halves, o);
  ASSERT_TRUE(ref.region("plate"));
  ASSERT_EQ(ref.fine("plate"), fine);
  ASSERT_TRUE(ref.updatable("plate", W));
  EXPECT_FALSE(ref.updatable("plate", W + 1));  // the map is made from W: another side is resized first
  EXPECT_FALSE(ref.updatable("bottle", W));
  ModelConfig model;
  model.image_size = S;
  model.reference = "knn";
  model.reference_fine_size = fine ? W : 0;
  model.reference_fine_textures = fine;
  std::map<data::AnomalyKind, double> mix;
  for (auto k : data::all_anomaly_kinds()) mix[k] = 1.0;
  const cv::Mat base = texture(300), donor = texture(301);
  int partial = 0, distance_calls = 0;
  for (uint64_t seed = 0; seed < 24; ++seed) {
    const auto a = data::make_random_anomaly(base, donor, mix, seed);
    const int bank = int(seed % 3) - 1;  // kBothBanks, 0, 1
    const auto full = model::policy_input(a.image, "plate", bank, model, &ref);  // (4,S,S)
    const auto fast = model::changed_policy_input(
        a.image, base, [&](int h) { ++distance_calls; return ref.patch_distances(base, "plate", h); }, "plate", bank, model, &ref);
    ASSERT_EQ(fast.sizes(), full.sizes());
    EXPECT_TRUE(torch::equal(fast.narrow(0, 0, 3), full.narrow(0, 0, 3))) << "seed " << seed;  // the RGB channels
    EXPECT_LE((fast[3] - full[3]).abs().max().item<double>(), 1e-4 * std::max(1.0, full[3].max().item<double>()))
        << "seed " << seed << " (" << a.type_name() << ", bank " << bank << ")";
    const cv::Rect r = model::changed_rect(a.image, base);
    partial += r.area() > 0 && r.area() < W * W / 2;
  }
  EXPECT_GE(partial, 12) << "most draws change a small part of the image, which the update recomputes";
  EXPECT_EQ(distance_calls, 8 * 2 + 16) << "both banks for kBothBanks draws, one bank otherwise";
  // An unchanged copy gives the normal image's own map.
  const auto same = model::changed_policy_input(
      base, base, [&](int h) { return ref.patch_distances(base, "plate", h); }, "plate", 0, model, &ref);
  EXPECT_LE((same[3] - ref.deviation(base, "plate", 0)).abs().max().item<double>(), 1e-6);
  EXPECT_THROW(ref.patch_distances(base, "plate", data::NormalReference::kBothBanks), lriad::Error);
}

INSTANTIATE_TEST_SUITE_P(NormalReference, ChangedMaps, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "FineTexture" : "ModelSide"; });

TEST(NormalReference, ChangedRectIsTheBoundingBoxOfEveryChangedChannel) {
  const cv::Mat a = grey(20, 1);
  cv::Mat b = a.clone();
  EXPECT_TRUE(model::changed_rect(a, b).empty());
  b.at<cv::Vec3f>(3, 7)[2] += 0.5f;   // last channel of (x 7, y 3)
  b.at<cv::Vec3f>(11, 2)[0] -= 0.5f;  // first channel of (x 2, y 11)
  EXPECT_EQ(model::changed_rect(a, b), cv::Rect(2, 3, 6, 9));
  EXPECT_THROW(model::changed_rect(a, grey(21, 1)), lriad::Error);
}
