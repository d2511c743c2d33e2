// PaliGemma import (model/paligemma.h, model/hf_checkpoint.h) against tests/golden/paligemma_tiny:
// a tiny random PaliGemma saved in the Hugging Face layout (two shards, F32/F16/BF16 tensors, a
// small sentencepiece tokenizer) with reference logits and greedy tokens. They were made by
// scripts/make_paligemma_golden.py with Debian's python3-torch, following transformers'
// modeling_paligemma/siglip/gemma line by line (transformers itself was not at hand; see the
// folder's SEMANTICS.md for the version read and what each step does).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <unistd.h>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fixtures.h"
#include "lriad/io/error.h"
#include "lriad/io/safetensors.h"
#include "lriad/io/st_tensor.h"
#include "lriad/model/hf_checkpoint.h"
#include "lriad/model/paligemma.h"
#include "lriad/text/tokenizer.h"
#include "lriad/train/paligemma_grpo.h"

#include <ATen/CPUGeneratorImpl.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "lriad/data/image_io.h"

namespace fs = std::filesystem;
using namespace lriad;

namespace {

const std::string kGolden = std::string(LRIAD_SOURCE_DIR) + "/tests/golden/paligemma_tiny";
const std::string kGolden2 = std::string(LRIAD_SOURCE_DIR) + "/tests/golden/paligemma2_tiny";  // PaliGemma 2

// A reference tensor of `folder` (the PaliGemma golden by default).
torch::Tensor golden(const std::string& name, const std::string& folder = kGolden) {
  static std::map<std::string, io::StFile> files;
  if (!files.count(folder)) files[folder] = io::read_safetensors(folder + "/reference.safetensors");
  return io::from_st_tensor(files.at(folder).tensors.at(name));
}

model::PaliGemma load_tiny(const std::string& folder = kGolden) {
  const auto ckpt = model::open_hf_checkpoint(folder);
  model::PaliGemma m(ckpt.config);
  model::load_hf_weights(*m, ckpt);
  m->eval();
  return m;
}

std::vector<int64_t> as_vector(const torch::Tensor& t) {
  const auto c = t.to(torch::kInt64).contiguous().view({-1});
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// A copy of the golden folder to break.
std::string copy_golden(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("lriad_paligemma_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::copy(kGolden, dir, fs::copy_options::recursive);
  return dir.string();
}

void edit_config(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j;
  std::ifstream(dir + "/config.json") >> j;
  edit(j);
  std::ofstream(dir + "/config.json") << j.dump(1);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(PaliGemma, TinyCheckpointMatchesTheReferenceLogits) {
  auto m = load_tiny();
  EXPECT_EQ(m->config.image_tokens(), 16);
  torch::NoGradGuard no_grad;
  const auto ids = golden("input_ids"), valid = golden("attention_mask").gt(0), types = golden("token_type_ids");
  EXPECT_TRUE(torch::equal(model::paligemma_positions(valid).masked_select(valid),
                           golden("position_ids").to(torch::kInt64).masked_select(valid)));
  const auto logits = m->forward(golden("pixel_values"), ids, valid, types.eq(0), golden("position_ids"));
  // lriad hides padding from every row, as transformers does after PR #35859 (~4.49; logits_pads_hidden); the
  // 4.44-4.45 code read let rows see the padding columns (logits), which only row 1 has.
  const auto want = golden("logits_pads_hidden");
  ASSERT_EQ(logits.sizes(), want.sizes());
  // Padding rows' logits are not compared: nobody reads them.
  const auto diff = (logits - want).abs().amax(-1).masked_select(valid);
  EXPECT_LT(diff.max().item<double>(), 1e-4) << "largest |lriad - reference| over valid positions";
  EXPECT_LT((logits[0] - golden("logits")[0]).abs().max().item<double>(), 1e-4) << "the unpadded row, either rule";
  EXPECT_GT(want.abs().max().item<double>(), 0.5) << "the reference logits are not all tiny";
  EXPECT_LT((m->image_features(golden("pixel_values")) - golden("image_features")).abs().max().item<double>(), 1e-5);
  // Only the positions asked for through the head (training's log-probabilities): the same logits.
  const int64_t B = ids.size(0), L = ids.size(1);
  const auto at = torch::stack({torch::arange(L - 3, L), torch::arange(2, 5)}).to(torch::kInt64).narrow(0, 0, B);
  const auto some = m->forward(golden("pixel_values"), ids, valid, types.eq(0), golden("position_ids"), at);
  ASSERT_EQ(some.sizes().vec(), (std::vector<int64_t>{B, 3, logits.size(2)}));
  EXPECT_LT((some - logits.gather(1, at.unsqueeze(-1).expand({B, 3, logits.size(2)}))).abs().max().item<double>(),
            1e-5);
}

TEST(PaliGemma, GreedyGenerationMatchesTokenForToken) {
  auto m = load_tiny();
  const auto pixels = golden("pixel_values");
  for (int row = 0; row < 2; ++row) {
    const auto prompt = as_vector(golden("prompt_ids_" + std::to_string(row)));
    const auto want = as_vector(golden("greedy_" + std::to_string(row)));
    const auto got = model::greedy_generate(*m, pixels.narrow(0, row, 1), prompt, int(want.size()), false);
    EXPECT_EQ(got, want) << "row " << row;
  }
}

TEST(PaliGemma, TokenizerEncodesThePromptsAsTheReference) {
  const auto ckpt = model::open_hf_checkpoint(kGolden);
  ASSERT_FALSE(ckpt.tokenizer.empty());
  text::Tokenizer tok(ckpt.tokenizer);
  EXPECT_EQ(tok.vocab_size(), ckpt.config.vocab_size);
  EXPECT_EQ(tok.bos_id(), ckpt.config.bos_id);
  EXPECT_EQ(tok.eos_id(), ckpt.config.eos_id);
  EXPECT_EQ(tok.piece(int(ckpt.config.image_token_index)), "<image>");
  nlohmann::json j;
  std::ifstream(kGolden + "/reference.json") >> j;
  for (int row = 0; row < 2; ++row) {
    const auto prompt = as_vector(golden("prompt_ids_" + std::to_string(row)));
    const std::string prefix = j.at("training_batch").at("prefixes").at(row).get<std::string>();
    std::vector<int64_t> built(size_t(ckpt.config.image_tokens()), ckpt.config.image_token_index);
    built.push_back(ckpt.config.bos_id);
    for (int id : tok.encode(prefix + "\n")) built.push_back(id);
    EXPECT_EQ(built, prompt) << "row " << row << ": " << prefix;
  }
}

TEST(PaliGemma, WrongFoldersGetErrorsNamingTheFile) {
  const auto missing = copy_golden("missing");
  fs::remove(missing + "/model-00002-of-00002.safetensors");
  auto e = error_of([&] { model::open_hf_checkpoint(missing); });
  EXPECT_NE(e.find("missing shard"), std::string::npos) << e;
  EXPECT_NE(e.find("model-00002-of-00002.safetensors"), std::string::npos) << e;

  const auto shape = copy_golden("shape");
  edit_config(shape, [](nlohmann::json& j) { j["text_config"]["intermediate_size"] = 96; });
  e = error_of([&] {
    const auto c = model::open_hf_checkpoint(shape);
    model::PaliGemma m(c.config);
    model::load_hf_weights(*m, c);
  });
  EXPECT_NE(e.find("layers.0.mlp.down_proj.weight' has shape [32,64], config.json implies [32,96]"), std::string::npos)
      << e;
  EXPECT_NE(e.find("model-00002-of-00002.safetensors"), std::string::npos) << e;

  const auto arch = copy_golden("arch");
  edit_config(arch, [](nlohmann::json& j) {
    j["architectures"] = {"LlavaForConditionalGeneration"};
    j["model_type"] = "llava";
  });
  e = error_of([&] { model::open_hf_checkpoint(arch); });
  EXPECT_NE(e.find("unsupported architecture 'LlavaForConditionalGeneration'"), std::string::npos) << e;
  EXPECT_NE(e.find("config.json"), std::string::npos) << e;

  const auto llama = copy_golden("llama");
  edit_config(llama, [](nlohmann::json& j) { j["text_config"]["model_type"] = "llama"; });
  e = error_of([&] { model::open_hf_checkpoint(llama); });
  EXPECT_NE(e.find("unsupported decoder 'llama'"), std::string::npos) << e;

  // A Gemma 2 config.json over Gemma 1 weights: the norms Gemma 2 adds are missing.
  const auto two = copy_golden("gemma2");
  edit_config(two, [](nlohmann::json& j) { j["text_config"]["model_type"] = "gemma2"; });
  e = error_of([&] {
    const auto c = model::open_hf_checkpoint(two);
    model::PaliGemma m(c.config);
    model::load_hf_weights(*m, c);
  });
  EXPECT_NE(e.find("feedforward_layernorm.weight' is missing from " + two), std::string::npos) << e;
  for (const auto& d : {missing, shape, arch, llama, two}) fs::remove_all(d);
}

TEST(PaliGemma, NewerTransformersNamesMapOntoTheOriginalOnes) {
  EXPECT_EQ(model::paligemma_tensor_name("model.language_model.layers.0.mlp.up_proj.weight"),
            "language_model.model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ(model::paligemma_tensor_name("model.vision_tower.vision_model.post_layernorm.bias"),
            "vision_tower.vision_model.post_layernorm.bias");
  EXPECT_EQ(model::paligemma_tensor_name("model.multi_modal_projector.linear.weight"),
            "multi_modal_projector.linear.weight");
  EXPECT_EQ(model::paligemma_tensor_name("language_model.model.norm.weight"), "language_model.model.norm.weight");
}

TEST(PaliGemma, APublishedConfigLeavesOutWhatTransformersDefaults) {
  // The fields of google/paligemma-3b-pt-224's config.json (no image_size, head_dim, eps or theta).
  const auto j = nlohmann::json::parse(R"({
    "architectures": ["PaliGemmaForConditionalGeneration"], "model_type": "paligemma",
    "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0, "hidden_size": 2048, "projection_dim": 2048,
    "image_token_index": 257152, "ignore_index": -100, "torch_dtype": "float32", "vocab_size": 257216,
    "text_config": {"hidden_size": 2048, "intermediate_size": 16384, "model_type": "gemma",
      "num_attention_heads": 8, "num_hidden_layers": 18, "num_image_tokens": 256, "num_key_value_heads": 1,
      "torch_dtype": "float32", "vocab_size": 257216},
    "vision_config": {"hidden_size": 1152, "intermediate_size": 4304, "model_type": "siglip_vision_model",
      "num_attention_heads": 16, "num_hidden_layers": 27, "num_image_tokens": 256, "patch_size": 14,
      "projection_dim": 2048, "projector_hidden_act": "gelu_fast", "vision_use_head": false}})");
  const auto c = model::PaliGemmaConfig::from_hf(j, "config.json");
  EXPECT_EQ(c.image_size, 224);
  EXPECT_EQ(c.image_tokens(), 256);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.kv_heads, 1);
  EXPECT_DOUBLE_EQ(c.rms_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.image_token_index, 257152);
  EXPECT_EQ(c.feature_scale_dim, 2048);
  auto wrong = j;
  wrong["vision_config"]["num_image_tokens"] = 1024;  // a 448-px checkpoint's tokens without its image_size
  wrong["text_config"].erase("num_image_tokens");
  EXPECT_EQ(model::PaliGemmaConfig::from_hf(wrong, "config.json").image_size, 448);
  wrong["vision_config"]["image_size"] = 224;
  EXPECT_THROW(model::PaliGemmaConfig::from_hf(wrong, "config.json"), Error);
}

namespace {

torch::Tensor golden_logits(model::PaliGemmaImpl& m) {
  torch::NoGradGuard no_grad;
  const auto valid = golden("attention_mask").gt(0);
  return m.forward(golden("pixel_values"), golden("input_ids"), valid, golden("token_type_ids").eq(0),
                   golden("position_ids"));
}

std::map<std::string, torch::Tensor> base_weights(model::PaliGemmaImpl& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters())
    if (p.key().rfind("lora.", 0) != 0) out[p.key()] = p.value().detach().clone();
  return out;
}

}  // namespace

TEST(PaliGemma, LoraAdaptersStartAsNothingTurnOffSaveAndMerge) {
  auto m = load_tiny();
  const auto before = golden_logits(*m);
  m->add_lora({/*rank=*/4, /*alpha=*/8});
  EXPECT_EQ(m->lora_tensors().size(), 2u * 7 * 2) << "7 projections x 2 layers, A and B";
  EXPECT_TRUE(torch::equal(golden_logits(*m), before)) << "B starts at zero";
  for (const auto& p : m->named_parameters())
    EXPECT_EQ(p.value().requires_grad(), p.key().rfind("lora.", 0) == 0) << p.key();
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : m->lora_tensors()) t.normal_(0, 0.3);
  }
  const auto adapted = golden_logits(*m);
  EXPECT_GT((adapted - before).abs().max().item<double>(), 0.1);
  {
    model::AdaptersOff off(*m);
    EXPECT_TRUE(torch::equal(golden_logits(*m), before)) << "adapters off: the base model";
  }
  EXPECT_TRUE(torch::equal(golden_logits(*m), adapted)) << "back on after the scope";

  const auto file =
      (fs::temp_directory_path() / ("lriad_paligemma_lora_" + std::to_string(getpid()) + ".safetensors")).string();
  model::save_lora(*m, file);
  EXPECT_EQ(io::read_safetensors_header(file).metadata.at("rank"), "4");
  auto again = load_tiny();
  again->add_lora({4, 8});
  model::load_lora(*again, file);
  EXPECT_TRUE(torch::equal(golden_logits(*again), adapted));
  auto other = load_tiny();
  other->add_lora({2, 8});
  const auto e = error_of([&] { model::load_lora(*other, file); });
  EXPECT_NE(e.find(file), std::string::npos) << e;
  EXPECT_NE(e.find("has shape [4,32], the model's is [2,32]"), std::string::npos) << e;
  auto scaled = load_tiny();
  scaled->add_lora({4, 16});  // the same shapes, another scale
  const auto a = error_of([&] { model::load_lora(*scaled, file); });
  EXPECT_NE(a.find(file), std::string::npos) << a;
  EXPECT_NE(a.find("alpha"), std::string::npos) << a;

  m->merge_lora();
  EXPECT_FALSE(m->has_lora());
  for (const auto& p : m->named_parameters()) EXPECT_NE(p.key().rfind("lora.", 0), 0u) << p.key();
  EXPECT_LT((golden_logits(*m) - adapted).abs().max().item<double>(), 1e-4) << "merged weights give the adapted logits";
  fs::remove(file);
}

TEST(PaliGemma, GrpoWithLoraTrainsTheAdaptersAndLeavesTheBaseAlone) {
  auto m = load_tiny();
  m->add_lora({4, 8});
  const auto base = base_weights(*m);
  std::vector<torch::Tensor> adapters;
  for (const auto& [name, t] : m->lora_tensors()) adapters.push_back(t);
  torch::optim::Adam opt(adapters, torch::optim::AdamOptions(0.02));
  const auto pixels = golden("pixel_values");
  const train::IdRows prompts = {as_vector(golden("prompt_ids_0")), as_vector(golden("prompt_ids_1"))};
  // A reward that varies within a group: the share of a completion's tokens in the lower half of
  // the vocabulary.
  auto reward = [](size_t, const std::vector<int64_t>& c) {
    double low = 0;
    for (auto id : c) low += id < 96;
    return c.empty() ? 0.0 : low / double(c.size());
  };
  train::PaliGemmaGrpoOptions options;
  options.group = 4;
  options.max_new = 6;
  options.loss.beta = 0.04;
  auto gen = at::detail::createCPUGenerator(7);
  std::vector<train::PaliGemmaGrpoStats> steps;
  for (int s = 0; s < 3; ++s)
    steps.push_back(train::paligemma_grpo_step(*m, opt, pixels, prompts, reward, options, gen));
  EXPECT_EQ(steps[0].completions.size(), 8u);
  EXPECT_EQ(steps[0].kl_mean, 0.0) << "before the first update the policy is the base";
  EXPECT_GT(steps[1].kl_mean, 0.0) << "after it, the adapters moved the policy away from the base";
  double moved = 0;
  for (const auto& [name, t] : m->lora_tensors())
    if (name.find("lora_B") != std::string::npos) moved = std::max(moved, t.abs().max().item<double>());
  EXPECT_GT(moved, 0.0) << "the B matrices left zero";
  for (const auto& [name, t] : base_weights(*m)) EXPECT_TRUE(torch::equal(t, base.at(name))) << name << " changed";
}

TEST(PaliGemma, Bf16WeightsGiveTheReferenceLogitsToBf16Precision) {
  const auto ckpt = model::open_hf_checkpoint(kGolden);
  model::PaliGemma m(ckpt.config);
  m->to(torch::kBFloat16);
  model::load_hf_weights(*m, ckpt);
  const auto logits = golden_logits(*m);
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
  const auto valid = golden("attention_mask").gt(0);
  const auto want = golden("logits_pads_hidden");
  const double diff = (logits - want).abs().amax(-1).masked_select(valid).max().item<double>();
  const double agree =
      logits.argmax(-1).eq(want.argmax(-1)).masked_select(valid).to(torch::kFloat32).mean().item<double>();
  // bf16 keeps about 3 significant digits per operation; over the model's layers that leaves the
  // logits (up to 4.7 here) within 11% of their largest: measured 0.505 on an AMD EPYC with AVX2 and
  // no native bf16, under 0.5 on a CPU with it. A wrong weight or layout is off by whole units.
  const double largest = want.abs().max().item<double>();
  EXPECT_LT(diff, 0.15 * largest) << "bf16 keeps about 3 significant digits";
  EXPECT_GT(diff, 1e-4) << "the forward pass really ran in bf16";
  EXPECT_GE(agree, 0.9) << "the most likely token mostly agrees";
}

TEST(PaliGemma, RecomputedBlocksGiveTheSameGradients) {
  auto m = load_tiny();
  m->add_lora({4, 8, {"q_proj", "v_proj", "up_proj", "down_proj", "fc1"}, /*vision=*/true});
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : m->lora_tensors()) t.normal_(0, 0.3);
  }
  const auto valid = golden("attention_mask").gt(0);
  // Whether the autograd graph behind `t` holds a recomputation node (model/recompute.h).
  auto recomputed = [](const torch::Tensor& t) {
    std::vector<std::shared_ptr<torch::autograd::Node>> todo = {t.grad_fn()};
    std::set<torch::autograd::Node*> seen;
    while (!todo.empty()) {
      auto n = todo.back();
      todo.pop_back();
      if (!n || !seen.insert(n.get()).second) continue;
      if (n->name().find("RecomputeFunction") != std::string::npos) return true;
      for (const auto& e : n->next_edges()) todo.push_back(e.function);
    }
    return false;
  };
  auto grads = [&](bool recompute) {
    m->recompute_blocks = recompute;
    m->zero_grad();
    const auto logits = m->forward(golden("pixel_values"), golden("input_ids"), valid, golden("token_type_ids").eq(0),
                                   golden("position_ids"));
    EXPECT_EQ(recomputed(logits), recompute) << "the blocks are recomputed exactly when asked";
    torch::log_softmax(logits, -1).select(-1, 7).masked_select(valid).sum().backward();
    std::vector<torch::Tensor> out;
    for (const auto& [name, t] : m->lora_tensors()) out.push_back(t.grad().clone());
    return out;
  };
  const auto plain = grads(false), again = grads(true);
  ASSERT_EQ(plain.size(), again.size());
  ASSERT_EQ(plain.size(), 2u * (2 * 4 + 2 * 3)) << "text q, v, up, down and vision q, v, fc1 per layer";
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_GT(plain[i].abs().max().item<double>(), 0.0) << i;
    EXPECT_LT((plain[i] - again[i]).abs().max().item<double>(), 1e-5) << i;
  }
}

TEST(PaliGemma, CachedDecodingGivesTheLogitsOfTheWholeSequence) {
  auto m = load_tiny();
  torch::NoGradGuard no_grad;
  const auto pixels = golden("pixel_values").narrow(0, 1, 1);
  const auto prompt = as_vector(golden("prompt_ids_1"));
  auto gen = at::detail::createCPUGenerator(3);
  const auto group = train::paligemma_sample_group(*m, pixels, prompt, 3, 6, 1.5, gen);
  ASSERT_EQ(group.size(), 3u);
  EXPECT_NE(group[0], group[1]) << "the rows of a group sample on their own";
  // Row by row: feeding a completion through the cache gives, at every step, the last logits of
  // the whole sequence run at once (the prompt attending to all of itself, the rest causal).
  for (const auto& c : group) {
    ASSERT_FALSE(c.empty());
    torch::Tensor step_logits;
    auto cache = m->prefill(pixels, prompt, 1, int64_t(c.size()) + 1, &step_logits);
    std::vector<int64_t> seq = prompt;
    for (size_t t = 0; t < c.size(); ++t) {
      const int64_t L = int64_t(seq.size()), P = int64_t(prompt.size());
      const auto valid = torch::ones({1, L}, torch::kBool);
      const auto whole = m->forward(pixels, torch::tensor(seq, torch::kInt64).view({1, L}), valid,
                                    torch::arange(L).lt(P).view({1, L}), model::paligemma_positions(valid));
      EXPECT_LT((whole[0][L - 1] - step_logits[0]).abs().max().item<double>(), 1e-4) << "step " << t;
      EXPECT_NE(c[t], m->config.image_token_index);
      seq.push_back(c[t]);
      step_logits = m->step(torch::tensor({c[t]}, torch::kInt64), cache);
    }
  }
}

namespace {

// The golden pixels are (u8 / 255 - 0.5) / 0.5 of random bytes at the model's side: written back
// as those bytes, the image needs no resizing and gives the same pixels.
std::string golden_png() {
  const auto px = golden("pixel_values")[0];  // (3,56,56)
  const auto u8 = ((px * 0.5 + 0.5) * 255).round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  cv::Mat rgb(56, 56, CV_8UC3, u8.data_ptr<uint8_t>()), bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  const auto png =
      (fs::temp_directory_path() / ("lriad_paligemma_golden0_" + std::to_string(getpid()) + ".png")).string();
  EXPECT_TRUE(cv::imwrite(png, bgr));
  return png;
}

}  // namespace

TEST(PaliGemma, GenerateCommandAnswersLikeTheReference) {
  const auto png = golden_png();
  EXPECT_LT((model::siglip_pixels(data::read_image(png), 56) - golden("pixel_values").narrow(0, 0, 1))
                .abs()
                .max()
                .item<double>(),
            1e-6);
  nlohmann::json j;
  std::ifstream(kGolden + "/reference.json") >> j;
  const std::string prefix = j.at("training_batch").at("prefixes").at(0);
  const auto r = test::run_command(std::string(LRIAD_BIN) + " model generate --hf " + kGolden + " --image " + png +
                                   " --prompt '" + prefix + "' --max-new 8");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, j.at("generation").at("greedy_0_text").get<std::string>() + "\n");
  const auto bad = test::run_command(std::string(LRIAD_BIN) + " model generate --hf /nonexistent --image " + png, true);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("not a folder: /nonexistent"), std::string::npos) << bad.out;
  fs::remove(png);
}

TEST(PaliGemma, ImportMakesARunThatInfoAndGenerateRead) {
  const std::string lriad = LRIAD_BIN;
  const auto out = (fs::temp_directory_path() / ("lriad_paligemma_run_" + std::to_string(getpid()))).string();
  fs::remove_all(out);
  auto r = test::run_command(lriad + " model import --hf " + kGolden + " --out " + out, true);
  ASSERT_EQ(r.code, 0) << r.out;
  int64_t stored = 0;  // every tensor of the golden checkpoint, counted from its shards' headers
  for (const char* shard : {"/model-00001-of-00002.safetensors", "/model-00002-of-00002.safetensors"})
    for (const auto& [name, t] : io::read_safetensors_header(kGolden + shard).tensors) {
      int64_t n = 1;
      for (auto d : t.shape) n *= d;
      stored += n;
    }
  r = test::run_command(lriad + " model info --run " + out + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["parameters"]["total"].get<int64_t>(), stored);
  EXPECT_GT(info["parameters"]["vision_tower"].get<int64_t>(), 0);
  EXPECT_GT(info["parameters"]["language_model"].get<int64_t>(), 0);
  EXPECT_EQ(info["vocab_size"], 192);
  EXPECT_EQ(info["image_tokens"], 16);
  EXPECT_EQ(info["metadata"]["format"], "lriad-paligemma");
  EXPECT_EQ(info["dtypes"].size(), 1u);
  EXPECT_EQ(info["dtypes"]["F32"].get<int64_t>(), stored);

  nlohmann::json j;
  std::ifstream(kGolden + "/reference.json") >> j;
  const std::string prefix = j.at("training_batch").at("prefixes").at(0);
  const auto png = golden_png();
  r = test::run_command(lriad + " model generate --run " + out + " --image " + png + " --prompt '" + prefix +
                        "' --max-new 8");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, j.at("generation").at("greedy_0_text").get<std::string>() + "\n");

  // predict asks the imported model as it was downloaded (tests/test_pretrained.cpp fine-tunes it).
  r = test::run_command(lriad + " predict --run " + out + " --category fabric " + png, true);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("verdict:"), std::string::npos) << r.out;
  r = test::run_command(lriad + " model import --hf " + kGolden + " --out " + out, true);
  EXPECT_NE(r.code, 0) << "an existing run is not replaced without --overwrite";
  r = test::run_command(lriad + " model import --hf " + kGolden + " --out " + out + " --overwrite --dtype bf16", true);
  ASSERT_EQ(r.code, 0) << r.out;
  r = test::run_command(lriad + " model info --run " + out + " --json");
  EXPECT_EQ(nlohmann::json::parse(r.out)["dtypes"]["BF16"].get<int64_t>(), stored);
  fs::remove_all(out);
  fs::remove(png);
}

TEST(PaliGemma, BenchMeasuresAGrpoStepOfTheCheckpoint) {
  const auto r = test::run_command(std::string(LRIAD_BIN) + " bench paligemma --hf " + kGolden +
                                   " --repeats 1 --max-new 4 --group 2 --lora-rank 2 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parameters"], 48824) << "every weight of the golden checkpoint";
  // rank x (in + out) for q (32->32), k and v (32->8), o (32->32), gate and up (32->64), down (64->32); 2 layers
  const int rank = 2, per_layer = rank * (64 + 40 + 40 + 64 + 96 + 96 + 96);
  EXPECT_EQ(j["adapter_parameters"], 2 * per_layer);
  EXPECT_GT(j["step_s"].get<double>(), 0.0);
  EXPECT_GT(j["sample_s"].get<double>(), 0.0);
  EXPECT_GT(j["peak_rss_mib"].get<double>(), 0.0);
  EXPECT_TRUE(j["peak_cuda_mib"].is_null());
}

// PaliGemma 2 (a Gemma 2 decoder: extra norms, soft-capped scores and logits, sliding-window layers)
// against tests/golden/paligemma2_tiny, made by the same script (--gemma2); its SEMANTICS.md says
// what each step does and where it comes from. Its caps and window are small enough that each
// changes the logits (the script reports by how much).
TEST(PaliGemma2, TinyCheckpointMatchesTheReferenceLogitsAndGreedyTokens) {
  auto m = load_tiny(kGolden2);
  ASSERT_TRUE(m->config.gemma2);
  EXPECT_EQ(m->config.feature_scale_dim, m->config.hidden);
  {  // a converted PaliGemma 2 config.json may carry PaliGemmaConfig's default top-level 2048: not used
    nlohmann::json j;
    std::ifstream(kGolden2 + "/config.json") >> j;
    j["hidden_size"] = 2048;
    EXPECT_EQ(model::PaliGemmaConfig::from_hf(j, "config.json").feature_scale_dim, 32);
  }
  EXPECT_GT(m->config.sliding_window, 0);
  EXPECT_GT(m->config.attn_softcap, 0);
  EXPECT_GT(m->config.final_softcap, 0);
  torch::NoGradGuard no_grad;
  const auto valid = golden("attention_mask", kGolden2).gt(0);
  const auto logits = m->forward(golden("pixel_values", kGolden2), golden("input_ids", kGolden2), valid,
                                 golden("token_type_ids", kGolden2).eq(0), golden("position_ids", kGolden2));
  const auto want = golden("logits_pads_hidden", kGolden2);
  ASSERT_EQ(logits.sizes(), want.sizes());
  EXPECT_LT((logits - want).abs().amax(-1).masked_select(valid).max().item<double>(), 1e-4);
  const auto pixels = golden("pixel_values", kGolden2);
  for (int row = 0; row < 2; ++row) {
    const auto prompt = as_vector(golden("prompt_ids_" + std::to_string(row), kGolden2));
    const auto want_ids = as_vector(golden("greedy_" + std::to_string(row), kGolden2));
    EXPECT_EQ(model::greedy_generate(*m, pixels.narrow(0, row, 1), prompt, int(want_ids.size()), false), want_ids)
        << "row " << row << " (through the KV cache, sliding layers included)";
  }
}
