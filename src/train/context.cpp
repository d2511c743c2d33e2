// The training context (trainer_internal.h): inputs, prompts and targets of the draws, validation.
#include "trainer_internal.h"

#include <spdlog/spdlog.h>

#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "lriad/model/generate.h"
#include "lriad/model/weights.h"
#include "lriad/model/policy_input.h"
#include "lriad/model/precision.h"
#include "lriad/model/verdict.h"
#include "lriad/text/answer.h"
#include "lriad/text/prompt.h"

namespace lriad::train {
namespace detail {

double Context::class_weight(const std::string& cls) const {
  if (dynamic_weights) {
    const auto w = dynamic_weights->weights();
    auto it = w.find(cls);
    return it == w.end() ? 1.0 : it->second;
  }
  auto it = static_weights.find(cls);
  return it == static_weights.end() ? 1.0 : it->second;
}

std::vector<int64_t> Context::prompt(const std::string& text, bool keep) {
  auto it = prompt_cache.find(text);
  if (it != prompt_cache.end()) return it->second;
  std::vector<int64_t> ids;
  for (int id : tokenizer->encode(text)) ids.push_back(id);
  if (keep) prompt_cache[text] = ids;
  return ids;
}

std::optional<double> Context::level(const std::string& category) const {
  if (!normal_reference || !levels) return std::nullopt;
  return levels->level(category);
}

PreparedBatch Context::prepare(std::vector<TrainItem> items) {
  std::vector<torch::Tensor> images;
  std::vector<reference::MapPart> parts;  // each map's part largest at its peak
  for (const auto& it : items) {
    parts.push_back(it.part);
    images.push_back(it.input.defined() ? it.input : input_of(it, &parts.back()));  // (C,S,S); the gate made some
  }
  PreparedBatch b;
  b.images = torch::stack(images);  // (B,C,S,S), C = model.image_channels()
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& cat = items[i].category;
    b.facts.push_back(facts_of(images[i], cat, parts[i], items[i].image, items[i].reference_bank));
    // run_training checks first that every category has a level, so an opened chain always has facts.
    if (config.model.opens_chains() && !b.facts.back())
      throw Error("internal: no evidence facts for an opened chain of category '" + cat + "'");
    b.openings.push_back(model::chain_opening(cat, config.model, b.facts.back() ? &*b.facts.back() : nullptr));
  }
  b.items = std::move(items);
  return b;
}

torch::Tensor Context::input_of(const TrainItem& item, reference::MapPart* at_peak) {
  std::call_once(inputs_made, [this] { inputs = std::make_unique<InputMaker>(config.model, normal_reference.get()); });
  return (*inputs)(item, at_peak);
}

EncodedBatch Context::encode(PreparedBatch prepared) {
  EncodedBatch b;
  for (size_t i = 0; i < prepared.items.size(); ++i) {
    const std::string& cat = prepared.items[i].category;
    const auto& f = prepared.facts[i];
    if (!pretrained()) {
      b.prompts.push_back(
          prompt(model::policy_prompt(cat, config.model, f ? &*f : nullptr), prepared.openings[i].empty()));
      continue;
    }
    // PaliGemma's layout: <image> x N, BOS, the prompt and "\n"; lriad's opening of the chain, then the
    // policy's part of it.
    const auto ids =
        prompt(model::pretrained_prompt(cat, config.model, f ? &*f : nullptr), prepared.openings[i].empty());
    b.prompts.push_back(model::paligemma_prompt(pali->config, std::vector<int>(ids.begin(), ids.end())));
  }
  if (pretrained()) {
    // From the image at its model side (TrainItem::image), as eval makes them (eval/evaluator.cpp).
    std::vector<torch::Tensor> pixels;
    for (const auto& item : prepared.items)
      pixels.push_back(model::siglip_pixels(item.image, pali->config.image_size));  // (1,3,S',S')
    b.images = torch::cat(pixels).to(device, pali->embed->weight.scalar_type());
  } else {
    b.images = prepared.images.to(device);
  }
  b.items = std::move(prepared.items);
  b.facts = std::move(prepared.facts);
  b.openings = std::move(prepared.openings);
  return b;
}

std::vector<TrainItem> stage_items(const Context& ctx, const std::string& stage, int step) {
  // Each stage draws from its own stream of (step, index) keys.
  uint64_t base = 0;
  int count = ctx.config.sft.batch_size;
  if (stage == "grpo") {
    base = uint64_t(1) << 40;
    count = ctx.config.grpo.batch_size;
  } else if (stage == "vision") {
    base = uint64_t(2) << 40;
    count = ctx.config.vision_warmup.batch_size;
  }
  const int per_rank = count / ctx.world();  // run_training checks that the batch sizes divide
  std::vector<TrainItem> items;
  for (int i = ctx.rank() * per_rank; i < (ctx.rank() + 1) * per_rank; ++i)
    items.push_back(ctx.source->draw(base + uint64_t(step), i));
  return items;
}

std::optional<text::EvidenceFacts> Context::facts_of(const torch::Tensor& input, const std::string& category,
                                                     reference::MapPart part, const cv::Mat& side, int bank) const {
  const auto at = level(category);
  if (!at || input.size(0) < 4) return std::nullopt;  // no level to state a ratio to: the short template
  return record.facts(input, *at, part, side, normal_reference.get(), category, bank);
}

std::vector<int64_t> Context::completion_ids(const TrainItem& item, int variant,
                                             const text::EvidenceFacts* facts) const {
  text::CotSpec spec;
  spec.evidence = facts;
  spec.category = item.category;
  spec.anomalous = item.anomalous;
  spec.defect_type = chain_type(item, facts);
  spec.region = item.region;
  spec.variant = variant;
  std::string target = text::build_completion(spec);
  if (facts && config.model.opens_chains()) {  // the prompt ends with the opening: the policy learns the rest
    spec.variant = 0;
    target = text::build_completion(spec);
    const std::string opening = text::grounded_opening(spec.category, *facts);
    if (target.compare(0, opening.size(), opening) != 0)
      throw Error("internal: a grounded chain does not start with its opening: " + target);
    target.erase(0, opening.size());
  }
  std::vector<int64_t> ids;
  for (int id : tokenizer->encode(target)) ids.push_back(id);
  ids.push_back(tokenizer->eos_id());
  return ids;
}

std::string Context::chain_type(const TrainItem& item, const text::EvidenceFacts* facts) const {
  return text::chain_defect_type(item.anomalous, item.defect_type, facts, config.model.names_look_family());
}

std::vector<rl::GroupSample> Context::group_samples(const EncodedBatch& batch) const {
  std::vector<rl::GroupSample> samples;
  for (size_t b = 0; b < batch.items.size(); ++b) {
    const auto& item = batch.items[b];
    const auto& f = batch.facts[b];
    rl::RewardTarget target{item.anomalous, chain_type(item, f ? &*f : nullptr), item.category, {}};
    if (f) {  // where the evidence is: the region reward
      target.evidence_cells.push_back(f->where);
      if (f->also) target.evidence_cells.push_back(*f->also);
    }
    samples.push_back({target, class_weight(item.cls())});
  }
  return samples;
}

void write_completions(const Context& ctx, int step, const std::vector<TrainItem>& items,
                       const std::vector<std::string>& texts, const std::vector<rl::RewardBreakdown>& breakdown,
                       const std::vector<double>& advantages, const std::vector<bool>& truncated) {
  const size_t G = items.empty() ? 1 : texts.size() / items.size();
  std::string lines;
  for (size_t n = 0; n < texts.size(); ++n) {
    const TrainItem& item = items[n / G];
    const nlohmann::json l = {{"image", item.source},
                              {"category", item.category},
                              {"label", item.anomalous ? "anomalous" : "normal"},
                              {"defect_type", item.defect_type},
                              {"completion", texts[n]},
                              {"rewards", breakdown[n].parts},
                              {"reward", breakdown[n].total},
                              {"advantage", advantages[n]},
                              {"truncated", bool(truncated[n])}};
    lines += l.dump() + "\n";
  }
  char name[64];
  std::snprintf(name, sizeof(name), "/step_%05d.jsonl", step + 1);
  io::write_file_atomic(ctx.run.completions() + name, lines);
}

std::string Context::decode(const torch::Tensor& row, int64_t length) const {
  const auto r = row.to(torch::kCPU, torch::kInt64).contiguous();
  return tokenizer->decode_completion(r.data_ptr<int64_t>(), std::min(length, r.size(0)));
}

void Context::save_weights(const std::string& path, const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> meta = extra;
  if (pretrained()) {
    meta["base"] = config.pretrained.base;
    model::save_lora(*pali, path, meta);  // its own format (lriad-lora)
    return;
  }
  meta["format"] = kPolicyFormat;
  meta["format_version"] = kPolicyFormatVersion;
  model::save_weights(*policy, path, meta);
}

std::vector<torch::Tensor> Context::trainable() {
  if (!pretrained()) return policy->parameters();
  std::vector<torch::Tensor> out;
  for (const auto& [name, t] : pali->lora_tensors()) out.push_back(t);
  return out;
}

void Context::log_metrics(const nlohmann::json& line) {
  if (!writer()) return;
  metrics << line.dump() << "\n";
  metrics.flush();
}

torch::Tensor decision_probs(const Context& ctx, const torch::Tensor& logits, const torch::Tensor& tokens,
                             const torch::Tensor& mask, const std::vector<std::string>& categories) {
  return model::decision_probs(logits, tokens, mask, categories, ctx.decisions,
                               model::verdict_probs(logits, tokens, mask, ctx.verdict));
}

void set_lr(torch::optim::AdamW& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

namespace {

// Each item's greedy chain of thought, its opening included.
std::vector<std::string> greedy_chains(Context& ctx, const EncodedBatch& b) {
  if (ctx.pretrained()) return pretrained_greedy(ctx, b);
  model::GenerateOptions go;
  go.max_new_tokens = ctx.config.sampling.max_new_tokens;
  go.sampling.greedy = true;
  go.eos_id = ctx.tokenizer->eos_id();
  go.pad_id = ctx.tokenizer->pad_id();
  model::Generation gen;
  {
    model::AutocastGuard autocast(ctx.device, model::use_bf16(ctx.config));
    gen = model::generate(ctx.policy, b.images, b.prompts, go);
  }
  const auto lengths = gen.lengths.cpu();
  std::vector<std::string> out;
  for (size_t i = 0; i < b.items.size(); ++i)
    out.push_back(b.openings[i] + ctx.decode(gen.tokens[long(i)], lengths[long(i)].item<int64_t>()));
  return out;
}

}  // namespace

ValidationResult validate(Context& ctx) {
  const auto& items = ctx.source->validation();
  if (items.empty()) return {};
  torch::NoGradGuard no_grad;
  if (ctx.pretrained())
    ctx.pali->eval();
  else
    ctx.policy->eval();
  std::vector<ValidationChain> chains;
  const size_t chunk = 32;
  for (size_t start = 0; start < items.size(); start += chunk) {
    std::vector<TrainItem> part(items.begin() + long(start),
                                items.begin() + long(std::min(items.size(), start + chunk)));
    EncodedBatch b = ctx.encode(ctx.prepare(part));
    const auto greedy = greedy_chains(ctx, b);
    for (size_t i = 0; i < b.items.size(); ++i) {
      const auto& f = b.facts[i];
      chains.push_back({b.items[i].category, b.items[i].cls(), b.items[i].anomalous,
                        ctx.chain_type(b.items[i], f ? &*f : nullptr), greedy[i]});
    }
  }
  return score_validation(chains, ctx.defect_types);
}

}  // namespace detail

}  // namespace lriad::train
