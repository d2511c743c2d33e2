// Run configuration: loading, overrides, validation with reasons, saving.
#include "lriad/io/config.h"

#include <fstream>
#include <limits>
#include <sstream>

#include <spdlog/spdlog.h>

#include "lriad/io/config_visit.h"
#include "lriad/io/fs.h"
#include "lriad/io/install.h"

namespace lriad {
namespace {

[[noreturn]] void invalid(const std::string& key, const std::string& why) {
  throw Error("invalid config value " + key + ": " + why);
}

void check_positive(const std::string& key, double v) {
  if (!(v > 0)) invalid(key, "must be > 0, got " + std::to_string(v));
}

void validate_model(const ModelConfig& m) {
  for (auto [key, v] : {std::pair{"image_size", m.image_size},
                        {"patch_size", m.patch_size},
                        {"vision_dim", m.vision_dim},
                        {"vision_layers", m.vision_layers},
                        {"vision_heads", m.vision_heads},
                        {"vision_mlp_ratio", m.vision_mlp_ratio},
                        {"dim", m.dim},
                        {"layers", m.layers},
                        {"heads", m.heads},
                        {"kv_heads", m.kv_heads},
                        {"max_seq_len", m.max_seq_len}})
    check_positive(std::string("model.") + key, v);
  if (m.image_size % m.patch_size != 0)
    invalid("model.patch_size", "image_size " + std::to_string(m.image_size) + " is not a multiple of patch_size " +
                                    std::to_string(m.patch_size));
  if (m.vision_dim % m.vision_heads != 0) invalid("model.vision_heads", "must divide vision_dim");
  if (m.dim % m.heads != 0) invalid("model.heads", "must divide dim " + std::to_string(m.dim));
  if (m.head_dim() % 2 != 0) invalid("model.heads", "dim / heads must be even for rotary embeddings");
  if (m.heads % m.kv_heads != 0) invalid("model.kv_heads", "must divide heads (grouped-query attention)");
  if (m.mlp_hidden < 0) invalid("model.mlp_hidden", "must be >= 0 (0 = automatic)");
  if (m.vocab_size < 0) invalid("model.vocab_size", "must be >= 0 (0 = from the tokenizer)");
  if (m.vision_stem != "patch" && m.vision_stem != "conv")
    invalid("model.vision_stem", "must be 'patch' or 'conv', got '" + m.vision_stem + "'");
  if (m.vision_stem == "conv" && (m.patch_size < 2 || (m.patch_size & (m.patch_size - 1)) != 0))
    invalid("model.patch_size", "a conv stem needs a power of two >= 2, got " + std::to_string(m.patch_size));
  if (m.reference != "none" && m.reference != "knn")
    invalid("model.reference", "must be 'none' or 'knn', got '" + m.reference + "'");
  if (m.reference_patch < 1 || m.reference_patch > m.image_size)
    invalid("model.reference_patch", "must be between 1 and model.image_size");
  if (m.reference_bank < 16) invalid("model.reference_bank", "must be at least 16");
  if (m.reference_rotations < 0 || m.reference_rotations > 35)
    invalid("model.reference_rotations", "must be between 0 and 35");
  if (m.reference_shift < 0 || m.reference_shift > m.image_size / 4)
    invalid("model.reference_shift",
            "must be between 0 and model.image_size / 4, got " + std::to_string(m.reference_shift));
  if (m.reference_fine_size != 0 && (m.reference_fine_size < m.image_size || m.reference_fine_size > 1024))
    invalid("model.reference_fine_size",
            "must be 0 (off) or between model.image_size and 1024, got " + std::to_string(m.reference_fine_size));
  if (!(m.reference_fine_sigma > 0 && m.reference_fine_sigma <= 64))
    invalid("model.reference_fine_sigma", "must be in (0, 64] pixels");
  if (!(m.reference_scale_quantile > 0 && m.reference_scale_quantile < 1))
    invalid("model.reference_scale_quantile", "must be in (0, 1) (0.5 = the median)");
  if (m.reference_fine_shift < 0 || m.reference_fine_shift > 16)
    invalid("model.reference_fine_shift", "must be between 0 and 16, got " + std::to_string(m.reference_fine_shift));
  if (m.reference_region_size != 0 && (m.reference_region_size < 3 || m.reference_region_size > m.image_size))
    invalid("model.reference_region_size",
            "must be 0 (off) or between 3 and model.image_size, got " + std::to_string(m.reference_region_size));
  if (m.reference_neighbours < 0) invalid("model.reference_neighbours", "must be >= 0 (0 = every normal image)");
  if (m.vision_positions != "sincos" && m.vision_positions != "learned")
    invalid("model.vision_positions", "must be 'sincos' or 'learned', got '" + m.vision_positions + "'");
  // Counted in 64 bits: (image_size / patch_size)^2 overflows int for sides above 46340. Once
  // max_seq_len exceeds it, image_tokens() fits in int everywhere else.
  const int64_t side = m.image_size / m.patch_size;
  const int64_t image_tokens = side * side + (m.reference == "knn" ? 1 : 0);
  if (m.max_seq_len <= image_tokens)
    invalid("model.max_seq_len", "must exceed the " + std::to_string(image_tokens) + " image tokens");
  if (m.mlp_hidden == 0 && (8 * int64_t{m.dim} + 2) / 3 + 31 > std::numeric_limits<int>::max())
    invalid("model.dim", "too large for the automatic mlp_hidden (8/3 * dim)");
  check_positive("model.rope_theta", m.rope_theta);
  check_positive("model.norm_eps", m.norm_eps);
  check_positive("model.init_std", m.init_std);
}

void check_unit(const std::string& key, double v, bool allow_one = true) {
  if (!(v >= 0 && (allow_one ? v <= 1 : v < 1)))
    invalid(key, std::string("must be in [0, ") + (allow_one ? "1]" : "1)") + ", got " + std::to_string(v));
}

void validate_data(const DataConfig& d) {
  if (d.format.empty()) invalid("data.format", "must be set");
  check_unit("data.anomaly_ratio", d.anomaly_ratio);
  check_unit("data.train_from_test", d.train_from_test, false);
  check_unit("data.val_fraction", d.val_fraction, false);
  check_unit("data.donor_other_category", d.donor_other_category);
  check_unit("data.evidence_gate_quantile", d.evidence_gate_quantile);
  if (d.evidence_gate_attempts < 1 || d.evidence_gate_attempts > 32)
    invalid("data.evidence_gate_attempts", "must be in [1, 32] (the first draw is an attempt)");
  double total = 0;
  for (const auto& [kind, w] : d.anomaly_mix) {
    if (!(w >= 0)) invalid("data.anomaly_mix." + kind, "weights must be >= 0");
    total += w;
  }
  if (d.anomaly_ratio > 0 && !(total > 0))
    invalid("data.anomaly_mix", "needs at least one positive weight when anomaly_ratio > 0");
}

void validate_training(const RunConfig& c) {
  const SftConfig& s = c.sft;
  const GrpoConfig& g = c.grpo;
  const VisionWarmupConfig& w = c.vision_warmup;
  if (w.steps < 0) invalid("vision_warmup.steps", "must be >= 0 (0 skips the vision warm-up)");
  if (w.steps > 0) {
    check_positive("vision_warmup.batch_size", w.batch_size);
    check_positive("vision_warmup.lr", w.lr);
  }
  if (s.steps < 0) invalid("sft.steps", "must be >= 0 (0 skips supervised warm start)");
  if (s.steps > 0) check_positive("sft.batch_size", s.batch_size);
  check_positive("sft.lr", s.lr);
  if (g.steps < 0) invalid("grpo.steps", "must be >= 0 (0 skips GRPO)");
  check_positive("grpo.batch_size", g.batch_size);
  if (g.num_generations < 2)
    invalid("grpo.num_generations", "GRPO needs at least 2 generations per prompt to compute advantages, got " +
                                        std::to_string(g.num_generations));
  check_positive("grpo.lr", g.lr);
  if (g.beta < 0)
    invalid("grpo.beta", "must be >= 0 (0 = no KL term, no reference model), got " + std::to_string(g.beta));
  if (!(g.epsilon > 0 && g.epsilon < 1)) invalid("grpo.epsilon", "must be in (0, 1)");
  if (g.epsilon_high < 0) invalid("grpo.epsilon_high", "must be >= 0 (0 = epsilon)");
  check_positive("grpo.num_iterations", g.num_iterations);
  if (g.loss_type != "grpo" && g.loss_type != "dr_grpo" && g.loss_type != "dapo")
    invalid("grpo.loss_type", "must be grpo, dr_grpo or dapo, got '" + g.loss_type + "'");
  if (g.scale_rewards != "group" && g.scale_rewards != "batch" && g.scale_rewards != "none")
    invalid("grpo.scale_rewards", "must be group, batch or none, got '" + g.scale_rewards + "'");
  check_positive("grpo.temperature", g.temperature);
  if (g.micro_batch < 0) invalid("grpo.micro_batch", "must be >= 0 (0 = every completion of a step in one pass)");
  const RewardConfig& r = c.reward;
  for (auto [key, v] : {std::pair{"format", r.format},
                        {"accuracy", r.accuracy},
                        {"defect_type", r.defect_type},
                        {"consistency", r.consistency},
                        {"object", r.object},
                        {"region", r.region},
                        {"focal", r.focal},
                        {"focal_gamma", r.focal_gamma},
                        {"weight_power", r.weight_power},
                        {"dynamic_difficulty", r.dynamic_difficulty}})
    if (v < 0) invalid(std::string("reward.") + key, "must be >= 0");
  if (r.class_weights != "dynamic" && r.class_weights != "static" && r.class_weights != "none")
    invalid("reward.class_weights", "must be dynamic, static or none, got '" + r.class_weights + "'");
  check_positive("reward.dynamic_every", r.dynamic_every);
  check_unit("reward.dynamic_momentum", r.dynamic_momentum, false);
  if (!(r.anomaly_share >= 0 && r.anomaly_share < 1))
    invalid("reward.anomaly_share", "must be in (0, 1), or 0 for the share the dataset shows");
  for (auto [key, v] : {std::pair{"log_every", c.train.log_every},
                        {"log_completions_every", c.train.log_completions_every},
                        {"eval_every", c.train.eval_every},
                        {"save_every", c.train.save_every},
                        {"val_size", c.train.val_size},
                        {"max_consecutive_skips", c.train.max_consecutive_skips}})
    check_positive(std::string("train.") + key, v);
  if (c.train.prefetch < -1 || c.train.prefetch > 64) invalid("train.prefetch", "must be -1 (auto), 0 (off) or 1..64");
}

}  // namespace

int ModelConfig::mlp_width() const {
  if (mlp_hidden > 0) return mlp_hidden;
  const int64_t raw = (8 * int64_t{dim} + 2) / 3;  // 8 * dim overflows int above 2^28
  return static_cast<int>((raw + 31) / 32 * 32);   // fits: validate() checks it
}

void RunConfig::validate() const {
  if (device != "cpu" && device != "cuda") invalid("device", "must be 'cpu' or 'cuda', got '" + device + "'");
  if (precision != "auto" && precision != "fp32" && precision != "bf16")
    invalid("precision", "must be auto, fp32 or bf16, got '" + precision + "'");
  validate_model(model);
  if (tokenizer.vocab_size < 16) invalid("tokenizer.vocab_size", "must be >= 16");
  if (sampling.top_k < 0) invalid("sampling.top_k", "must be >= 0 (0 = disabled)");
  if (!(sampling.top_p > 0 && sampling.top_p <= 1))
    invalid("sampling.top_p", "must be in (0, 1], got " + std::to_string(sampling.top_p));
  check_positive("sampling.max_new_tokens", sampling.max_new_tokens);
  validate_data(data);
  validate_training(*this);
  const PretrainedConfig& p = pretrained;
  if (p.dtype != "fp32" && p.dtype != "bf16")
    invalid("pretrained.dtype", "must be fp32 or bf16, got '" + p.dtype + "'");
  check_positive("pretrained.lora_rank", p.lora_rank);
  check_positive("pretrained.lora_alpha", p.lora_alpha);
  if (p.lora_targets.empty()) invalid("pretrained.lora_targets", "needs at least one projection name");
  if (!p.base.empty() && vision_warmup.steps > 0)
    invalid("vision_warmup.steps", "must be 0 with pretrained.base: a pretrained PaliGemma has no warm-up stage");
}

nlohmann::json with_moved_keys(nlohmann::json j, const std::string& source) {
  if (!j.is_object()) return j;  // config_from_json says what is wrong with it
  for (const auto& m : kMovedKeys) {
    if (!j.contains(m.from_section) || !j[m.from_section].is_object() || !j[m.from_section].contains(m.from_key))
      continue;
    const std::string from = std::string(m.from_section) + "." + m.from_key;
    const std::string to = std::string(m.to_section) + "." + m.to_key;
    auto& to_section = j[m.to_section];
    if (to_section.is_null()) to_section = nlohmann::json::object();
    if (to_section.is_object() && to_section.contains(m.to_key))
      throw Error(source + ": config keys " + from + " and " + to + " are one setting, given twice",
                  "keep " + to + " (" + from + " is its old name)");
    if (to_section.is_object()) to_section[m.to_key] = j[m.from_section][m.from_key];
    j[m.from_section].erase(m.from_key);
    spdlog::debug("{}: read {} as {} (its new name)", source, from, to);
  }
  return j;
}

RunConfig config_from_json(const nlohmann::json& j, const std::string& source) {
  RunConfig c;
  io::config_from_json(c, with_moved_keys(j, source), source);
  return c;
}

RunConfig load_config(const std::string& name_or_path, const std::vector<std::string>& overrides) {
  if (name_or_path.empty()) return parse_config("{}", "config", overrides);
  const std::string path = io::find_config(name_or_path);  // a file, or a shipped config's name
  spdlog::info("config: {}{}", path, path == name_or_path ? "" : " ('" + name_or_path + "')");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open config file " + path, "check its permissions");
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, overrides);
}

RunConfig parse_config(const std::string& json_text, const std::string& source,
                       const std::vector<std::string>& overrides) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw Error("config file " + source + " is not valid JSON: " + e.what());
  }
  for (const auto& o : overrides) io::merge_json(j, io::parse_override(o));
  RunConfig c = config_from_json(j, source);
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  return c;
}

nlohmann::json to_json(const RunConfig& config) { return io::config_to_json(config); }

void save_config(const RunConfig& config, const std::string& path) {
  io::write_file_atomic(path, to_json(config).dump(2) + "\n");
}

}  // namespace lriad
