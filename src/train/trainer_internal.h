// Shared state of the training stages (trainer.cpp orchestrates, sft_step.cpp and grpo_step.cpp
// run one step each). Not installed: only src/train uses it.
#pragma once
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lriad/model/paligemma.h"
#include "lriad/model/policy_input.h"
#include "lriad/model/policy.h"
#include "lriad/model/verdict.h"
#include "lriad/rl/class_weights.h"
#include "lriad/rl/rewards.h"
#include "lriad/text/evidence.h"
#include "lriad/train/baseline.h"
#include "lriad/train/input_maker.h"
#include "lriad/text/tokenizer.h"
#include "lriad/train/checkpoint.h"
#include "lriad/train/distributed.h"
#include "lriad/train/grpo.h"
#include "lriad/train/source.h"
#include "lriad/train/trainer.h"

namespace lriad::train::detail {

struct TrainerState;  // run_state.h

// A step's items with their image tensors, made on the CPU (by the prefetcher's thread).
struct PreparedBatch {
  std::vector<TrainItem> items;
  torch::Tensor images;  // (B,C,S,S) CPU float, C = model.image_channels()
  // Measured once per item: its input's evidence facts (Context::facts_of; nullopt without a
  // reference) and the chain's opening lriad writes from them ("" without model.prompt_evidence).
  std::vector<std::optional<text::EvidenceFacts>> facts;
  std::vector<std::string> openings;
};

// Items encoded for the policy. Shapes: B items, C completion tokens.
struct EncodedBatch {
  // (B,C,S,S) on the device; with a pretrained PaliGemma its pixel values (B,3,S',S') at its image
  // side and dtype (model::siglip_pixels of TrainItem::image, the image at its model side)
  torch::Tensor images;
  model::TokenRows prompts;  // B prompt token lists
  std::vector<TrainItem> items;
  std::vector<std::optional<text::EvidenceFacts>> facts;  // as PreparedBatch's
  std::vector<std::string> openings;                      // a completion reads as openings[b] + its tokens
};

struct Context {
  RunConfig config;
  RunFiles run;
  // The ranks of a data-parallel run (train/distributed.h; one process: world 1, every call a no-op).
  // Each rank trains on its share of every batch; rank 0 alone writes the run directory.
  std::unique_ptr<Distributed> dist;
  bool writer() const { return !dist || dist->main(); }
  int world() const { return dist ? dist->world() : 1; }
  int rank() const { return dist ? dist->rank() : 0; }
  torch::Device device{torch::kCPU};
  std::shared_ptr<text::Tokenizer> tokenizer;
  model::Policy policy{nullptr};
  model::Policy ref_policy{nullptr};  // the KL reference policy (GRPO with beta > 0); not the normal reference
  // pretrained.base: a PaliGemma whose LoRA adapters train, instead of `policy` (then null). Its KL
  // reference is itself with the adapters off.
  model::PaliGemma pali{nullptr};
  bool pretrained() const { return !pali.is_empty(); }
  // The weights training saves at `path` (the policy's; a PaliGemma's adapters), with the run
  // format's metadata and `extra`.
  void save_weights(const std::string& path, const std::map<std::string, std::string>& extra);
  // What the optimizers train (the policy's parameters; a PaliGemma's adapters).
  std::vector<torch::Tensor> trainable();
  torch::nn::Linear vision_probe{nullptr};  // SFT's auxiliary image-level head on the vision tokens
  std::unique_ptr<TrainingSource> source;
  std::unique_ptr<reference::NormalReference> normal_reference;  // model.reference "knn"
  std::optional<BaselineThresholds> levels;  // each category's normal level (baseline.json), with a reference
  // policy_input.json as this run wrote it; its states_parts and reads_lines say how the chains read
  // the evidence (InputRecord::facts): a resumed run keeps what it began with, as eval reads it.
  model::InputRecord record;
  std::unique_ptr<InputMaker> inputs;                        // made at the first input, once the reference is there
  std::once_flag inputs_made;                                // prepare() runs on the prefetcher's thread too
  std::vector<std::string> defect_types;                     // known names for parsing answers
  std::map<std::string, std::vector<int64_t>> prompt_cache;  // by the prompt's text
  model::VerdictIds verdict;                                 // <answer> and the first pieces of the verdict words
  model::DecisionPoints decisions;  // where the chains of thought of each category commit to a verdict
  std::ofstream metrics;

  // Class weights of the focal reward.
  std::map<std::string, double> static_weights;
  std::unique_ptr<rl::DynamicClassWeights> dynamic_weights;
  double class_weight(const std::string& cls) const;

  // The token ids of a prompt's text, kept by text when `keep` (the few fixed prompts; not those
  // that hold an image's own opening).
  std::vector<int64_t> prompt(const std::string& text, bool keep = true);
  // The category's normal level the evidence facts are stated against; nullopt without a
  // reference or normal peaks.
  std::optional<double> level(const std::string& category) const;
  // Image tensors of `items` (with the deviation channel when the model has a reference), their
  // evidence facts and the chains' openings; thread-safe.
  PreparedBatch prepare(std::vector<TrainItem> items);
  // The policy input of one item (C,S,S), thread-safe (train/input_maker.h: normal images' inputs
  // kept, synthetic anomalies' maps updated from their normal image's).
  // With `at_peak`, the part of its map largest at the peak.
  torch::Tensor input_of(const TrainItem& item, reference::MapPart* at_peak = nullptr);
  EncodedBatch encode(PreparedBatch batch);  // to the device, with the prompts (model::policy_prompt of the facts)
  EncodedBatch encode(std::vector<TrainItem> items) { return encode(prepare(std::move(items))); }
  // The SFT target of an item (+ eos): grounded in `facts` (its input's evidence) when given; with
  // model.prompt_evidence only what follows the chain's opening (which the prompt holds).
  std::vector<int64_t> completion_ids(const TrainItem& item, int variant,
                                      const text::EvidenceFacts* facts = nullptr) const;
  // The defect type an anomalous item's chain names and GRPO's defect-type reward expects: with
  // model.family_from_look and its input's facts, the family its look suggests (text::look_family;
  // "" below the level: no family), else the item's label. "" for a normal item.
  std::string chain_type(const TrainItem& item, const text::EvidenceFacts* facts) const;
  // GRPO's samples of a batch: each item's reward target (label, the type its chain names, category,
  // the evidence's cells) and its class weight.
  std::vector<rl::GroupSample> group_samples(const EncodedBatch& batch) const;
  // The evidence facts of one input (C,S,S) of `category` against its normal level (the evidence
  // baseline's threshold), as the run's record reads them (InputRecord::facts, with the image it was
  // made from, and its absent pixels against `bank`); nullopt without a reference.
  std::optional<text::EvidenceFacts> facts_of(const torch::Tensor& input, const std::string& category,
                                              reference::MapPart part, const cv::Mat& side, int bank) const;
  std::string decode(const torch::Tensor& row, int64_t length) const;  // stops at eos
  void log_metrics(const nlohmann::json& line);
};

struct StepMetrics {
  nlohmann::json json;  // the metrics.jsonl line (without stage/step)
  bool finite = true;
  std::string nonfinite;  // the term that was not finite ("loss" or "gradient") when the update was skipped
};

// The items a stage trains on at `step` (a pure function of the seed, stage and step): this rank's
// share of the batch, the contiguous block [rank * n / world, (rank + 1) * n / world).
std::vector<TrainItem> stage_items(const Context& ctx, const std::string& stage, int step);

// One optimizer step of each stage on the batch of stage_items(ctx, stage, step); `step` counts
// from 0 within the stage.
StepMetrics sft_step(Context& ctx, torch::optim::AdamW& optimizer, int step, PreparedBatch prepared);
StepMetrics vision_step(Context& ctx, torch::optim::AdamW& optimizer, int step, PreparedBatch prepared);
// Image-level anomaly logit from vision tokens (B,N,D): log-mean-exp of the probe's patch logits,
// a smooth max (one anomalous patch suffices). -> (B)
torch::Tensor probe_logits(torch::nn::Linear& probe, const torch::Tensor& tokens);
StepMetrics grpo_step(Context& ctx, torch::optim::AdamW& optimizer, int step, PreparedBatch prepared,
                      bool log_completions);

// With pretrained.base (pretrained.cpp): the PaliGemma and its adapters (resumed, or fresh), the
// same stages' steps on it, and its greedy chains (openings included) of a batch.
void make_pretrained_policy(Context& ctx, const TrainOptions& o, const TrainerState& state);
StepMetrics pretrained_sft_step(Context& ctx, torch::optim::AdamW& optimizer, int step, PreparedBatch prepared);
StepMetrics pretrained_grpo_step(Context& ctx, torch::optim::AdamW& optimizer, int step, PreparedBatch prepared,
                                 bool log_completions);
std::vector<std::string> pretrained_greedy(Context& ctx, const EncodedBatch& batch);

// completions/step_NNNNN.jsonl (step counted from 0): each of the rows' completion (row n of item n / G)
// with its rewards, advantage and whether it was cut at max_new_tokens.
void write_completions(const Context& ctx, int step, const std::vector<TrainItem>& items,
                       const std::vector<std::string>& texts, const std::vector<rl::RewardBreakdown>& breakdown,
                       const std::vector<double>& advantages, const std::vector<bool>& truncated);

// Greedy generation on the validation items.
ValidationResult validate(Context& ctx);

// Probability of each verdict where the chain of thought commits to one (model::decision_probs;
// rows of `categories`), else at the position after <answer>: logits (N,C,V), tokens (N,C)
// -> (N,2) [p(normal), p(anomalous)], or -1 where the completion has neither.
torch::Tensor decision_probs(const Context& ctx, const torch::Tensor& logits, const torch::Tensor& tokens,
                             const torch::Tensor& mask, const std::vector<std::string>& categories);

void set_lr(torch::optim::AdamW& optimizer, double lr);

// Before the first step (setup.cpp). The longest prompt and SFT target must fit the model, and GRPO
// must be able to sample a whole completion: throws (or warns) otherwise.
void check_lengths(Context& ctx);
// Every training normal's evidence peak as its draws give it (TrainingSource::normal_items), per
// category; the inputs stay cached for training.
std::map<std::string, std::vector<double>> normal_draw_peaks(Context& ctx);
// The normal draws' evidence levels (from `normal_peaks` when given, else made); with `log_check` the
// evidence check of the synthetic anomalies is logged; with data.evidence_gate_quantile the evidence
// gate is set on the source.
void prepare_evidence(Context& ctx, bool log_check,
                      const std::map<std::string, std::vector<double>>* normal_peaks = nullptr);

}  // namespace lriad::train::detail
