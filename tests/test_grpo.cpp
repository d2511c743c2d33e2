// GRPO's update (micro-batches equal the whole batch) and the verdict probabilities it reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fixtures.h"
#include "train_fixtures.h"
#include "lriad/data/dataset.h"
#include "lriad/io/error.h"
#include "lriad/demo/synth.h"
#include "lriad/model/generate.h"
#include "lriad/model/verdict.h"
#include "lriad/text/evidence.h"
#include "lriad/text/prompt.h"
#include "lriad/text/tokenizer.h"
#include "lriad/model/weights.h"
#include "lriad/train/evidence_check.h"
#include "lriad/train/grpo.h"
#include "lriad/train/prefetch.h"
#include "lriad/train/source.h"
#include "lriad/train/trainer.h"

using namespace lriad;
using lriad::test::small_run;
using lriad::test::TempDir;

TEST(Grpo, TinyUpdateChangesEveryParameterAndStaysFinite) {
  torch::manual_seed(0);
  ModelConfig m = small_run("").model;
  m.vocab_size = 40;
  auto policy = model::make_policy(m, 3);
  auto reference = model::make_policy(m, 3);
  const auto images = torch::rand({2, 3, 32, 32});
  const model::TokenRows prompts = {{1, 5, 6}, {1, 7, 8, 9}};
  model::GenerateOptions go;
  go.group = 3;
  go.max_new_tokens = 8;
  go.seed = 5;
  go.eos_id = 2;
  go.pad_id = 3;
  const auto gen = model::generate(policy, images, prompts, go);
  train::GrpoBatch b;
  b.images = images.repeat_interleave(3, 0);
  b.prompts = {prompts[0], prompts[0], prompts[0], prompts[1], prompts[1], prompts[1]};
  b.tokens = gen.tokens;
  b.mask = gen.mask;
  b.truncated = gen.truncated;
  b.group = 3;
  GrpoConfig g;
  g.beta = 0.04;
  g.mask_truncated_completions = false;
  g.num_iterations = 2;
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : policy->named_parameters()) before[p.key()] = p.value().detach().clone();
  torch::optim::AdamW opt(policy->parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0));
  // Rewards: the share of even token ids — differs within each group.
  const auto u = train::grpo_update(policy, &reference, opt, b, g, 8, false, [&](const torch::Tensor& logits) {
    EXPECT_EQ(logits.size(0), 6);
    const auto even = ((b.tokens % 2) == 0).to(torch::kFloat) * b.mask.to(torch::kFloat);
    return even.sum(1) / b.mask.sum(1).clamp_min(1);
  });
  EXPECT_TRUE(u.finite);
  EXPECT_TRUE(std::isfinite(u.loss));
  EXPECT_EQ(u.updates, 2);
  EXPECT_GT(u.stats.std.max().item<double>(), 0.0);
  for (const auto& p : policy->named_parameters())
    EXPECT_FALSE(torch::equal(before[p.key()], p.value())) << p.key() << " did not change";
  // After the first update the policy has moved away from the reference: KL > 0.
  EXPECT_GT(u.kl, 0.0);
}

TEST(Grpo, MicroBatchesSplitTheRowsInOrder) {
  auto spans = [](int64_t rows, int64_t m) {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (const auto& r : train::micro_batches(rows, m)) out.push_back({r.start, r.rows});
    return out;
  };
  using V = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(spans(64, 0), (V{{0, 64}}));
  EXPECT_EQ(spans(64, 64), (V{{0, 64}}));
  EXPECT_EQ(spans(64, 100), (V{{0, 64}}));
  EXPECT_EQ(spans(64, 24), (V{{0, 24}, {24, 24}, {48, 16}}));
  EXPECT_EQ(spans(5, 1), (V{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}}));
}

// The update over micro-batches is the whole batch's: the same rewards' logits, loss, metrics and
// weights after two updates, for every loss type, with the KL term.
TEST(Grpo, MicroBatchedUpdateEqualsTheWholeBatchs) {
  ModelConfig m = small_run("").model;
  m.vocab_size = 40;
  const auto images = torch::rand({2, 3, 32, 32}, torch::TensorOptions().dtype(torch::kFloat));
  const model::TokenRows prompts = {{1, 5, 6}, {1, 7, 8, 9}};
  model::GenerateOptions go;
  go.group = 3;
  go.max_new_tokens = 8;
  go.seed = 5;
  go.eos_id = 2;
  go.pad_id = 3;
  auto sampler = model::make_policy(m, 3);
  const auto gen = model::generate(sampler, images, prompts, go);
  train::GrpoBatch b;
  b.images = images.repeat_interleave(3, 0);
  b.prompts = {prompts[0], prompts[0], prompts[0], prompts[1], prompts[1], prompts[1]};
  b.tokens = gen.tokens;
  b.mask = gen.mask;
  b.truncated = gen.truncated;
  b.group = 3;
  ASSERT_GT(b.mask.sum(1).max().item<int64_t>(), b.mask.sum(1).min().item<int64_t>()) << "rows of one length test less";
  for (const char* loss_type : {"grpo", "dr_grpo", "dapo"}) {
    GrpoConfig g;
    g.beta = 0.04;
    g.mask_truncated_completions = false;
    g.num_iterations = 2;
    g.loss_type = loss_type;
    struct Result {
      train::GrpoUpdate u;
      torch::Tensor reward_logits;
      std::map<std::string, torch::Tensor> weights;
    };
    auto run = [&](int micro_batch) {
      g.micro_batch = micro_batch;
      auto policy = model::make_policy(m, 3);
      auto reference = model::make_policy(m, 3);
      torch::optim::AdamW opt(policy->parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0));
      Result r;
      r.u = train::grpo_update(policy, &reference, opt, b, g, 8, false, [&](const torch::Tensor& logits) {
        r.reward_logits = logits.clone();
        const auto even = ((b.tokens % 2) == 0).to(torch::kFloat) * b.mask.to(torch::kFloat);
        return even.sum(1) / b.mask.sum(1).clamp_min(1);
      });
      for (const auto& p : policy->named_parameters()) r.weights[p.key()] = p.value().detach().clone();
      return r;
    };
    const Result whole = run(0);
    for (int micro : {1, 4}) {
      SCOPED_TRACE(std::string(loss_type) + ", micro_batch " + std::to_string(micro));
      const Result split = run(micro);
      EXPECT_EQ(split.u.updates, 2);
      EXPECT_TRUE(torch::allclose(split.reward_logits, whole.reward_logits, 1e-5, 1e-5));
      EXPECT_NEAR(split.u.loss, whole.u.loss, 1e-6 * (1 + std::abs(whole.u.loss)));
      EXPECT_GT(whole.u.kl, 0.0);
      EXPECT_NEAR(split.u.kl, whole.u.kl, 1e-6 * (1 + whole.u.kl));
      EXPECT_NEAR(split.u.clip_region, whole.u.clip_region, 1e-9);
      EXPECT_NEAR(split.u.entropy, whole.u.entropy, 1e-5);
      EXPECT_NEAR(split.u.grad_norm, whole.u.grad_norm, 1e-5 * (1 + whole.u.grad_norm));
      for (const auto& [name, w] : whole.weights) {
        const double moved = (w - split.weights.at(name)).abs().max().item<double>();
        EXPECT_LT(moved, 1e-5) << name;
      }
    }
  }
}

TEST(Verdict, DecisionPointIsWhereTheChainsPartAndItsProbabilityIsRead) {
  TempDir dir;
  text::TokenizerTrainOptions o;
  o.vocab_size = 320;
  o.categories = {"hex_nut", "wood"};
  o.defect_types = {"scratch", "crack"};
  const text::Tokenizer tok = text::Tokenizer::train(dir.path(), o);
  const auto points = model::decision_points(tok, {"hex_nut", "wood"});
  ASSERT_EQ(points.size(), 2u);
  std::vector<model::DecisionPoint> hex;  // the short templates' points: each phrasing has its own shared start
  for (const auto& d : points.at("hex_nut"))
    if (!d.anywhere) hex.push_back(d);
  ASSERT_EQ(hex.size(), size_t(text::kCotVariants));
  for (int v = 0; v < text::kCotVariants; ++v) {
    const auto normal = tok.encode(text::build_completion({"hex_nut", false, "", std::nullopt, v}));
    const auto anomalous = tok.encode(text::build_completion({"hex_nut", true, "crack", text::Region::Top, v}));
    int found = 0;
    for (const auto& d : hex) {
      const size_t k = d.prefix.size();
      if (k >= normal.size() || !std::equal(d.prefix.begin(), d.prefix.end(), normal.begin())) continue;
      ++found;
      EXPECT_EQ(normal[k], d.normal);
      ASSERT_GT(anomalous.size(), k);
      EXPECT_TRUE(std::equal(d.prefix.begin(), d.prefix.end(), anomalous.begin()));  // shared start
      EXPECT_NE(anomalous[k], d.normal);                                             // then they part
    }
    EXPECT_EQ(found, 1) << "phrasing " << v;
  }

  // Rows: a normal chain, an anomalous chain (both hex_nut, phrasing 1), a chain the templates do
  // not describe, and a category without points. Golden logits at the decision: p(normal) 0.5, 0.75.
  const int v = 1;
  const auto n_ids = tok.encode(text::build_completion({"hex_nut", false, "", std::nullopt, v}));
  const auto a_ids = tok.encode(text::build_completion({"hex_nut", true, "crack", text::Region::Left, v}));
  const auto x_ids = tok.encode("<think>odd words</think><answer>normal</answer>");
  const model::DecisionPoint* d = nullptr;
  for (const auto& p : hex)
    if (p.prefix.size() < n_ids.size() && std::equal(p.prefix.begin(), p.prefix.end(), n_ids.begin())) d = &p;
  ASSERT_NE(d, nullptr);
  const int64_t k = int64_t(d->prefix.size()), V = tok.vocab_size();
  const int64_t C = int64_t(std::max({n_ids.size(), a_ids.size(), x_ids.size()}));
  auto tokens = torch::zeros({4, C}, torch::kInt64);
  auto mask = torch::zeros({4, C}, torch::kInt64);
  const std::vector<const std::vector<int>*> rows = {&n_ids, &a_ids, &x_ids, &n_ids};
  for (int64_t r = 0; r < 4; ++r)
    for (size_t c = 0; c < rows[size_t(r)]->size(); ++c) {
      tokens[r][int64_t(c)] = (*rows[size_t(r)])[c];
      mask[r][int64_t(c)] = 1;
    }
  auto logits = torch::zeros({4, C, V});
  logits[0][k][d->normal] = std::log(double(V - 1));        // p(normal) = (V-1) / (2(V-1)) = 0.5
  logits[1][k][d->normal] = std::log(3.0 * double(V - 1));  // 3(V-1) / (4(V-1)) = 0.75
  logits[0][k - 1][d->normal] = 9.0;                        // other positions are not read
  const auto fallback = torch::tensor({0.1f, 0.9f, 0.2f, 0.8f, 0.3f, 0.7f, -1.f, -1.f}).view({4, 2});
  const auto p =
      model::decision_probs(logits, tokens, mask, {"hex_nut", "hex_nut", "hex_nut", "pill"}, points, fallback);
  ASSERT_EQ(p.sizes(), torch::IntArrayRef({4, 2}));
  EXPECT_NEAR(p[0][0].item<double>(), 0.5, 1e-6);
  EXPECT_NEAR(p[0][1].item<double>(), 0.5, 1e-6);
  EXPECT_NEAR(p[1][0].item<double>(), 0.75, 1e-6);
  EXPECT_NEAR(p[1][1].item<double>(), 0.25, 1e-6);
  EXPECT_FLOAT_EQ(p[2][0].item<float>(), 0.3f);  // not a template chain: the fallback row
  EXPECT_FLOAT_EQ(p[3][1].item<float>(), -1.f);  // no points for "pill"
  const auto scores = model::anomaly_scores(p);
  EXPECT_NEAR(scores[1], 0.25, 1e-6);
  EXPECT_THROW(model::decision_probs(logits, tokens, mask, {"hex_nut"}, points, fallback), std::invalid_argument);
}

// A small tokenizer of the wood category's chains (crack defects), trained into `dir`.
text::Tokenizer wood_tokenizer(const std::string& dir) {
  text::TokenizerTrainOptions o;
  o.vocab_size = 400;
  o.categories = {"wood"};
  o.defect_types = {"crack"};
  return text::Tokenizer::train(dir, o);
}

// Grounded chains state the image's own region and ratio before their decision: it is found after
// the marker " times the normal level." wherever that lies, and its probability read there.
TEST(Verdict, GroundedChainsDecideAfterTheMarker) {
  TempDir dir;
  const text::Tokenizer tok = wood_tokenizer(dir.path());
  const auto points = model::decision_points(tok, {"wood"});
  const model::DecisionPoint* marker = nullptr;
  for (const auto& d : points.at("wood"))
    if (d.anywhere) marker = &d;
  ASSERT_NE(marker, nullptr);
  // Two images with other facts: the chains part right after the marker in both.
  text::EvidenceFacts a, b;
  a.ratio = 0.7;
  b.where = text::Region::LowerRight;
  b.also = text::Region::Bottom;
  b.ratio = 4.2;
  b.above = true;
  b.extent = text::EvidenceFacts::Extent::Thin;
  for (const auto* f : {&a, &b})
    for (int v = 0; v < text::kCotVariants; ++v) {
      const auto normal = tok.encode(text::build_completion({"wood", false, "", std::nullopt, v, f}));
      const auto anomalous = tok.encode(text::build_completion({"wood", true, "crack", std::nullopt, v, f}));
      size_t k = 0;
      while (normal[k] == anomalous[k]) ++k;
      EXPECT_EQ(normal[k], marker->normal);
      ASSERT_GE(k, marker->prefix.size());
      EXPECT_TRUE(
          std::equal(marker->prefix.begin(), marker->prefix.end(), normal.begin() + long(k - marker->prefix.size())));
      // decision_probs reads row 0 (the anomalous chain) at k.
      const int64_t C = int64_t(anomalous.size()), V = tok.vocab_size();
      auto tokens = torch::zeros({1, C}, torch::kInt64);
      auto mask = torch::ones({1, C}, torch::kInt64);
      for (int64_t c = 0; c < C; ++c) tokens[0][c] = anomalous[size_t(c)];
      auto logits = torch::zeros({1, C, V});
      logits[0][int64_t(k)][marker->normal] = std::log(double(V - 1));  // p(normal) 0.5 at the decision only
      const auto p = model::decision_probs(logits, tokens, mask, {"wood"}, points, torch::full({1, 2}, -1.f));
      EXPECT_NEAR(p[0][0].item<double>(), 0.5, 1e-6) << "phrasing " << v;
    }
}

// model.prompt_evidence: the prompt ends with the chain's opening, so the completion starts at the
// decision, and its probability is read at the finding's first word, whatever the facts.
TEST(Verdict, OpenedChainsDecideAtTheirFirstToken) {
  TempDir dir;
  const text::Tokenizer tok = wood_tokenizer(dir.path());
  const auto points = model::decision_points(tok, {"wood"}, /*opened=*/true);
  ASSERT_EQ(points.at("wood").size(), 1u);
  const model::DecisionPoint& d = points.at("wood")[0];
  EXPECT_LE(d.prefix.size(), 1u);  // at most a lone space piece before the finding's first word
  text::EvidenceFacts f;
  f.where = text::Region::LowerRight;
  f.ratio = 4.2;
  f.above = true;
  for (const bool anomalous : {false, true}) {
    const std::string chain =
        text::build_completion({"wood", anomalous, anomalous ? "crack" : "", std::nullopt, 0, &f});
    const auto rest = tok.encode(chain.substr(text::grounded_opening("wood", f).size()));  // what the policy writes
    const int64_t k = int64_t(d.prefix.size());
    ASSERT_TRUE(std::equal(d.prefix.begin(), d.prefix.end(), rest.begin()));
    EXPECT_EQ(rest.at(size_t(k)) == d.normal, !anomalous) << chain;
    const int64_t C = int64_t(rest.size()), V = tok.vocab_size();
    auto tokens = torch::zeros({1, C}, torch::kInt64);
    for (int64_t c = 0; c < C; ++c) tokens[0][c] = rest[size_t(c)];
    auto logits = torch::zeros({1, C, V});
    logits[0][k][d.normal] = std::log(double(V - 1));  // p(normal) 0.5 at the finding's first word only
    const auto p = model::decision_probs(logits, tokens, torch::ones({1, C}, torch::kInt64), {"wood"}, points,
                                         torch::full({1, 2}, -1.f));
    EXPECT_NEAR(p[0][0].item<double>(), 0.5, 1e-6);
  }
}

// The evidence gate's test: the map (channel 3) inside the footprint, brought to the map's side.
