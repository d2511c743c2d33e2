// A run's checks before its first step: the fine comparison's side (trainer.h), the sequence
// lengths and the evidence of the normal draws, the evidence check and gate (trainer_internal.h).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include "lriad/data/image_io.h"
#include "lriad/io/error.h"
#include "lriad/model/policy_input.h"
#include "lriad/text/prompt.h"
#include "lriad/train/baseline.h"
#include "lriad/train/evidence_check.h"
#include "lriad/train/source.h"
#include "lriad/train/trainer.h"
#include "trainer_internal.h"

namespace lriad::train {

void fit_fine_size(RunConfig& config) {
  if (config.model.reference != "knn" || config.model.reference_fine_size <= config.model.image_size) return;
  const data::Dataset ds = list_training_dataset(config.data);
  int largest = 0;
  for (const auto& cat : ds.categories) {
    int seen = 0;
    for (const auto& s : ds.select(cat, data::Split::Train)) {
      if (s.label != data::Label::Normal) continue;
      if (seen++ == 16) break;
      try {
        const auto info = data::read_image_info(s.image_path);
        largest = std::max({largest, info.width, info.height});
      } catch (const Error&) {
        // the source names an unreadable file (or skips it, with data.skip_bad_images) when it loads it
      }
    }
  }
  const int fitted = model::fitted_fine_size(config.model, largest);
  if (fitted == config.model.reference_fine_size) return;
  spdlog::info(
      "model.reference_fine_size {} lowered to {}: the training images are at most {} px, and comparing at more "
      "pixels only enlarges them",
      config.model.reference_fine_size, fitted, largest);
  config.model.reference_fine_size = fitted;
}

namespace detail {

// The longest prompt and SFT target must fit the model, and GRPO must be able to sample a whole
// completion; otherwise training fails late or (GRPO) silently learns nothing.
void check_lengths(Context& ctx) {
  size_t prompt = 0, completion = 0;
  for (const auto& cat : ctx.source->categories()) {
    prompt = std::max(prompt, ctx.prompt(text::build_prompt(cat)).size());
    for (int v = 0; v < text::kCotVariants; ++v) {
      TrainItem item;
      item.category = cat;
      completion = std::max(completion, ctx.completion_ids(item, v).size());
      item.anomalous = true;
      for (const auto& type : ctx.defect_types) {
        item.defect_type = type;
        for (int r = 0; r < text::kRegionCount; ++r) {
          item.region = text::Region(r);
          completion = std::max(completion, ctx.completion_ids(item, v).size());
        }
      }
      if (ctx.levels) {  // grounded chains: the longest region pair, ratio and descriptions
        text::EvidenceFacts f;
        f.above = true;
        f.where = text::Region::UpperLeft;
        f.also = text::Region::LowerLeft;
        f.ratio = 99;
        // Each look's family (model.family_from_look), as is (0), as background where normal images
        // show the part (1), and holding colours no normal image shows (2: a tint's longer words).
        for (int look = 0; look < 3; ++look)
          for (auto e : {text::EvidenceFacts::Extent::Compact, text::EvidenceFacts::Extent::Thin,
                         text::EvidenceFacts::Extent::Large})
            for (auto t : {text::EvidenceFacts::Tone::Darker, text::EvidenceFacts::Tone::Brighter})
              for (int part = -1; part < reference::kMapParts; ++part) {
                f.absent = look == 1;
                f.new_colour = look == 2;
                f.extent = e;
                f.tone = t;
                f.part = part < 0 ? std::nullopt : std::optional<reference::MapPart>(reference::MapPart(part));
                if (ctx.config.model.opens_chains())
                  prompt = std::max(prompt, ctx.prompt(model::policy_prompt(cat, ctx.config.model, &f), false).size());
                item.anomalous = false;
                completion = std::max(completion, ctx.completion_ids(item, v, &f).size());
                item.anomalous = true;
                for (const auto& type : ctx.defect_types) {
                  item.defect_type = type;
                  completion = std::max(completion, ctx.completion_ids(item, v, &f).size());
                }
              }
      }
    }
  }
  const auto& m = ctx.config.model;
  const size_t need =
      size_t(m.image_tokens()) + prompt + std::max(completion, size_t(ctx.config.sampling.max_new_tokens));
  // lriad's own policy's length; a pretrained PaliGemma's positions are checked by the model itself.
  if (ctx.config.pretrained.base.empty() && need > size_t(m.max_seq_len))
    throw Error(
        "model.max_seq_len " + std::to_string(m.max_seq_len) + " is too short: " + std::to_string(m.image_tokens()) +
            " image tokens + " + std::to_string(prompt) + " prompt tokens + " +
            std::to_string(std::max(completion, size_t(ctx.config.sampling.max_new_tokens))) + " completion tokens",
        "--set model.max_seq_len=" + std::to_string(need));
  if (ctx.config.grpo.steps > 0 && completion > size_t(ctx.config.sampling.max_new_tokens))
    spdlog::warn(
        "sampling.max_new_tokens {} cannot hold the longest chain of thought ({} tokens with eos): GRPO will "
        "see truncated completions{} (--set sampling.max_new_tokens={})",
        ctx.config.sampling.max_new_tokens, completion,
        ctx.config.grpo.mask_truncated_completions ? ", which grpo.mask_truncated_completions excludes from the loss"
                                                   : "",
        completion + 4);
  spdlog::debug("longest prompt {} tokens, longest target {} tokens", prompt, completion);
}

std::map<std::string, std::vector<double>> normal_draw_peaks(Context& ctx) {
  std::map<std::string, std::vector<double>> peaks;
  for (const auto& item : ctx.source->normal_items())
    peaks[item.category].push_back(evidence_peak(ctx.input_of(item)));  // (4,S,S), cached for training
  return peaks;
}

// The evidence: every training normal's map against the bank its draws use (kept cached for
// training), and from those the normal level per category. Then, before the first step of a new
// run, the evidence check (is a synthetic anomaly above that level at all? where it is not, its
// label is noise and training stays at chance), and the evidence gate built on the same levels.
void prepare_evidence(Context& ctx, bool log_check, const std::map<std::string, std::vector<double>>* normal_peaks) {
  const auto& dc = ctx.config.data;
  const bool gate_on = dc.evidence_gate_quantile > 0 && dc.anomaly_ratio > 0;
  if (!log_check && !gate_on) return;
  // 1. The normal draws' peaks.
  const auto peaks = normal_peaks ? *normal_peaks : normal_draw_peaks(ctx);
  const double q = gate_on ? dc.evidence_gate_quantile : kBaselineQuantile;
  Context* c = &ctx;  // the gate keeps it: the context outlives the source's draws
  const auto input = [c](const TrainItem& t, reference::MapPart* part) { return c->input_of(t, part); };
  // 2. The raw synthetic anomalies against those levels (before the gate changes the draws).
  if (log_check) {
    const int steps = std::max(1, std::min(ctx.config.sft.steps, 200 / std::max(1, ctx.config.sft.batch_size)));
    const auto t0 = std::chrono::steady_clock::now();
    const auto masks = [c](const TrainItem& t) {
      return c->record.masks(c->normal_reference.get(), t.image, t.category, t.reference_bank);
    };
    const EvidenceCheck check = check_evidence(*ctx.source, peaks, input, steps, ctx.config.sft.batch_size, q, masks);
    spdlog::info(
        "evidence check on the synthetic anomalies of {} training draws ({:.1f} s):", steps * ctx.config.sft.batch_size,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    for (const auto& line : describe(check)) spdlog::info("  {}", line);
  }
  if (!gate_on) return;
  // 3. The gate.
  EvidenceGate gate;
  gate.attempts = dc.evidence_gate_attempts;
  gate.input = input;
  std::string shown;
  for (const auto& [cat, p] : peaks) {
    gate.level[cat] = quantile(p, q);
    shown += fmt::format("{}{} {:.2f}", shown.empty() ? "" : ", ", cat, gate.level[cat]);
  }
  ctx.source->set_evidence_gate(std::move(gate));
  spdlog::info(
      "evidence gate: synthetic anomalies must peak above the normal draws' {:.0f}% level ({}), else are "
      "redrawn up to {} times",
      100 * q, shown, dc.evidence_gate_attempts);
}

}  // namespace detail

}  // namespace lriad::train
